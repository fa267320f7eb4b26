"""`make bench`: many accounts audited at once (the pool) beside one after the other.

    python -m tests.bench.accounts [--sizes 10,50] [--workers 8] [--latency-ms 20] [--repeats 3]

Each size is an organization of N accounts in one loopback moto server (tests/integration/
orgnet.py: a ring of 2N cross-account peerings, defects planted on the accepter sides).
PeerGuard audits every account through the member role, first with one worker (sequential)
and then with the pool, interleaved `--repeats` times; wall times are medians. API calls are
counted per account on the client (botocore before-call hooks) and in all on the server.
`--latency-ms` adds that much to every request on the server, as a network round trip to
AWS would (moto on loopback answers in well under a millisecond, where AWS takes tens): the
pool's gain is in overlapping those waits, so it is measured with and without them. The
markdown table is printed and written to bench-results/accounts.md. Exit 1 when a planted
defect is missed or anything else is reported.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from peerguard.domain.checks import CheckContext, resolve
from peerguard.usecases.accounts import AccountsAudit, audit_accounts
from peerguard_lab.emulator import REGION, Emulator
from tests.bench.counting import RequestCounter, WsgiApp
from tests.integration.orgnet import CHECKS, ROLE, Org, build_org

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "accounts.md"


class Latency:
    """WSGI middleware: every request waits `seconds` before moto answers it."""

    def __init__(self, app: WsgiApp, seconds: float = 0.0) -> None:
        self.app, self.seconds = app, seconds

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if self.seconds and not environ.get("PATH_INFO", "").startswith("/moto-api"):
            time.sleep(self.seconds)
        return self.app(environ, start_response)


def run_once(emu: Emulator, org: Org, workers: int) -> tuple[float, AccountsAudit]:
    gc.collect()
    started = time.perf_counter()
    report = audit_accounts(
        emu.clients(),
        org.accounts,
        ROLE,
        [REGION],
        CheckContext(),
        resolve(CHECKS),
        max_workers=workers,
    )
    return time.perf_counter() - started, report


def verdict(org: Org, report: AccountsAudit) -> tuple[set[Any], set[Any]]:
    got = {(f.check_id, f.resource_id, f.account_id) for f in report.findings}
    return org.planted - got, got - org.planted


def _median(xs: Iterable[float]) -> float:
    return statistics.median(list(xs))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.accounts", description=__doc__)
    p.add_argument("--sizes", default="10,50", help="organization sizes (accounts)")
    p.add_argument("--workers", type=int, default=8, help="the pool's size")
    p.add_argument("--latency-ms", default="0,20", help="added to every request (comma list)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    latencies = [float(x) for x in args.latency_ms.split(",") if x.strip()]
    started = time.perf_counter()
    wrappers: dict[str, Any] = {}

    def middleware(app: WsgiApp) -> WsgiApp:
        wrappers["latency"] = Latency(app)
        wrappers["counter"] = RequestCounter(wrappers["latency"])
        return wrappers["counter"]

    lines = [
        "| accounts | peerings | latency/request | sequential (1 worker) | pool "
        f"({args.workers} workers) | speed-up | calls per account (min-max) | calls in all "
        "(server) | defects found / planted | false |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ok = True
    with Emulator() as emu:
        emu.wrap_app(middleware)
        latency: Latency = wrappers["latency"]
        counter: RequestCounter = wrappers["counter"]
        for size in sizes:
            emu.reset()
            latency.seconds = 0.0
            t = time.perf_counter()
            org = build_org(size, lambda a: emu.session_for(a).client("ec2", endpoint_url=emu.url))
            print(
                f"{size} accounts, {len(org.peerings)} peerings, {len(org.planted)} defects: "
                f"built in {time.perf_counter() - t:.0f} s",
                file=sys.stderr,
            )
            for ms in latencies:
                latency.seconds = ms / 1000
                seq: list[float] = []
                pool: list[float] = []
                server_calls = 0
                last: AccountsAudit | None = None
                for i in range(args.repeats):
                    # interleaved, alternating which goes first
                    order = [(1, seq), (args.workers, pool)]
                    for workers, times in order if i % 2 == 0 else order[::-1]:
                        before = counter.snapshot()
                        seconds, report = run_once(emu, org, workers)
                        times.append(seconds)
                        server_calls = sum(counter.since(before).values())
                        missed, false = verdict(org, report)
                        ok = ok and not missed and not false and not report.failures
                        last = report
                assert last is not None
                calls = last.calls_per_account.values()
                missed, false = verdict(org, last)
                s, q = _median(seq), _median(pool)
                lines.append(
                    f"| {size} | {len(org.peerings)} | {ms:g} ms | {s:.2f} s | {q:.2f} s | "
                    f"{s / q:.1f}x | {min(calls)}-{max(calls)} | {server_calls} | "
                    f"{len(org.planted) - len(missed)} / {len(org.planted)} | {len(false)} |"
                )
                print(lines[-1], file=sys.stderr)
    lines.append("")
    lines.append(
        f"- medians of {args.repeats} runs each, sequential and pool interleaved; moto 5.2.5 "
        f"loopback server, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; whole benchmark {time.perf_counter() - started:.0f} s. "
        "Command: python -m tests.bench.accounts "
        + " ".join(argv if argv is not None else sys.argv[1:])
    )
    text = "\n".join(lines) + "\n"
    print(text)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
