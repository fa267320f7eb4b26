"""`make bench`: PeerGuard vs a bare describe script vs Cloud Custodian, side by side.

    python -m tests.bench.run [--c7n PATH/TO/custodian] [--sizes 10,50,200] [--repeats 3]

Each size is a ring of N peerings (tests/bench/ring.py) with planted defects, served by one
loopback moto server. API calls are counted on the server for every tool alike. Wall times
are medians of `--repeats` runs, tools interleaved (in alternating order, after a garbage
collection, so neither the machine's drift nor one tool's garbage lands on another). The
ratio to the bare script is given twice: of the medians, and the median of the ratios of
runs made side by side (the steadier figure on a shared machine). The markdown table is
printed and written to bench-results/bench.md. Exit 1 when PeerGuard misses a planted
defect or reports anything else.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from peerguard.domain.checks import CheckContext, resolve
from peerguard.usecases.pipeline import audit
from peerguard_lab.emulator import REGION, Emulator
from tests.bench.announce import measure as measure_announce
from tests.bench.announce import table as announce_table
from tests.bench.change import (
    ChangeRow,
    change_table,
    import_items,
    import_table,
    measure_change,
    measure_imports,
)
from tests.bench.counting import RequestCounter, WsgiApp
from tests.bench.ring import Expected, Ring, build_ring

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "bench.md"
C7N_POLICY = """\
policies:
  - name: peering-missing-route
    resource: aws.peering-connection
    filters:
      - missing-route
"""
BARE = "bare describe script"
DESCRIBES = (
    ("describe_vpcs", "Vpcs"),
    ("describe_subnets", "Subnets"),
    ("describe_route_tables", "RouteTables"),
    ("describe_vpc_peering_connections", "VpcPeeringConnections"),
)


@dataclass
class Run:
    seconds: float
    calls: Counter[str]
    found: set[Expected] | None = None  # None: the tool judges nothing
    reported: int = 0  # what the tool reported in all (findings or resources)
    note: str = ""
    cpu: float = 0.0  # CPU seconds of the tool itself (not of the moto server)


@dataclass
class Row:
    size: int
    tool: str
    runs: list[Run] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def median_cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)

    def paired_ratio(self, base: Row) -> float:
        """Median of this tool's run time over the base's run time in the same repeat."""
        return statistics.median(
            a.seconds / b.seconds for a, b in zip(self.runs, base.runs, strict=True)
        )


# -- the three tools -----------------------------------------------------------


def peerguard(emu: Emulator, ring: Ring) -> Run:
    started, cpu = time.perf_counter(), time.thread_time()
    result = audit(emu.clients(), [REGION], CheckContext(), resolve(None))
    seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
    got = {(f.check_id, f.resource_id, f.peering_connection_id or "") for f in result.findings}
    note = f"{result.api_calls} calls (client)"
    return Run(seconds, Counter(), got, len(result.findings), note, cpu)


def bare(emu: Emulator, ring: Ring) -> Run:
    """The same calls PeerGuard makes (account id, four paginated describes), nothing else."""
    started, cpu = time.perf_counter(), time.thread_time()
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    session.client("sts", endpoint_url=emu.url).get_caller_identity()
    ec2 = session.client("ec2", endpoint_url=emu.url)
    items = 0
    for op, key in DESCRIBES:
        for page in ec2.get_paginator(op).paginate():
            items += len(page[key])
    seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
    return Run(seconds, Counter(), None, 0, f"{items} items read", cpu)


def custodian(binary: str) -> Callable[[Emulator, Ring], Run]:
    def run(emu: Emulator, ring: Ring) -> Run:
        with tempfile.TemporaryDirectory(prefix="peerguard-bench-c7n-") as tmp:
            policy = Path(tmp, "policy.yml")
            policy.write_text(C7N_POLICY)
            out = Path(tmp, "out")
            env = dict(os.environ, AWS_ENDPOINT_URL=emu.url, AWS_DEFAULT_REGION=REGION)
            cmd = [binary, "run", "--cache-period", "0", "-s", str(out), "-r", REGION, str(policy)]
            started, cpu = time.perf_counter(), _children_cpu()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
            seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
            resources_file = out / "peering-missing-route" / "resources.json"
            pcx = (
                {r["VpcPeeringConnectionId"] for r in json.loads(resources_file.read_text())}
                if resources_file.exists()
                else set()
            )
        # missing-route names peerings, not route tables: a defect counts as found when its
        # peering is returned.
        found = {e for e in ring.expected if e[2] in pcx}
        crash = [ln.strip() for ln in proc.stderr.splitlines() if ln.startswith("KeyError")]
        note = f"exit {proc.returncode}, {len(pcx)} peerings returned"
        if crash:
            note += f", crashed: {crash[0]}"
        elif not resources_file.exists():
            note += ", no resources.json"
        return Run(seconds, Counter(), found, len(pcx), note, cpu)

    return run


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- measuring -----------------------------------------------------------------


def measure(
    emu: Emulator,
    counter: RequestCounter,
    sizes: list[int],
    repeats: int,
    tools: dict[str, Callable[[Emulator, Ring], Run]],
    after_each: Callable[[Emulator, Ring], None] | None = None,
) -> tuple[list[Row], dict[int, Ring]]:
    """Time every tool on a ring of each size; `after_each` runs on each ring when done."""
    rows: list[Row] = []
    rings: dict[int, Ring] = {}
    for size in sizes:
        emu.reset()
        started = time.perf_counter()
        ring = build_ring(emu.session().client("ec2", endpoint_url=emu.url), size)
        rings[size] = ring
        print(f"ring of {size} built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        by_tool = {name: Row(size, name) for name in tools}
        for tool in tools.values():
            tool(emu, ring)  # warm-up, not timed: first imports, OS file cache
        # The moto server lives in this process: its state (the ring) would be traversed by
        # every garbage collection of every tool. Freeze it, as if the server ran elsewhere.
        gc.collect()
        gc.freeze()
        order = list(tools.items())
        for repeat in range(repeats):
            # Interleaved, so drift hits every tool alike; the order alternates (A B C, C B A)
            # so no tool always follows the same one.
            for name, tool in order if repeat % 2 == 0 else reversed(order):
                gc.collect()  # the previous tool's garbage is not this tool's to collect
                before = counter.snapshot()
                run = tool(emu, ring)
                run.calls = counter.since(before)
                by_tool[name].runs.append(run)
        rows += by_tool.values()
        if after_each is not None:
            after_each(emu, ring)
        gc.unfreeze()  # the next size starts from an emptied server
    return rows, rings


def startup_seconds(binary: str, repeats: int) -> float:
    """Interpreter + import time of `custodian version`, to read c7n's wall time against."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([binary, "version"], capture_output=True, check=False, timeout=120)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


# -- reporting -----------------------------------------------------------------


def _calls(c: Counter[str]) -> str:
    return ", ".join(f"{k.split(':')[1]} {n}" for k, n in sorted(c.items()))


def table(rows: list[Row], rings: dict[int, Ring], repeats: int) -> tuple[str, bool]:
    ok = True
    lines = [
        f"| peerings | tool | wall time (median of {repeats}) | vs bare: medians | vs bare: "
        "side by side | own CPU (median) | CPU vs bare | API calls (server-side) | expected "
        "findings | found | missed | false | notes |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    base = {r.size: r for r in rows if r.tool == BARE}
    for row in rows:
        last = row.runs[-1]
        expected = rings[row.size].expected
        calls = sum(last.calls.values())
        ratio = paired = cpu_ratio = "-"
        if row.size in base:
            ratio = f"{row.median / base[row.size].median:.2f}x"
            paired = f"{row.paired_ratio(base[row.size]):.2f}x"
            cpu_ratio = f"{row.median_cpu / base[row.size].median_cpu:.2f}x"
        if last.found is None:
            judged = ["-", "-", "-", "-"]
        else:
            missed = len(expected - last.found)
            false = last.reported - len(last.found & expected)
            judged = [str(len(expected)), str(len(last.found & expected)), str(missed), str(false)]
            if row.tool == "PeerGuard" and (missed or false):
                ok = False
        note = f"{last.note}; {_calls(last.calls)}"
        lines.append(
            f"| {row.size} | {row.tool} | {row.median:.3f} s | {ratio} | {paired} "
            f"| {row.median_cpu:.3f} s | {cpu_ratio} | {calls} | "
            + " | ".join(judged)
            + f" | {note} |"
        )
    return "\n".join(lines), ok


def targets(rows: list[Row]) -> list[str]:
    pg = {r.size: r for r in rows if r.tool == "PeerGuard"}
    base = {r.size: r for r in rows if r.tool == BARE}
    worst = max(pg[s].paired_ratio(base[s]) for s in pg)
    worst_of_medians = max(pg[s].median / base[s].median for s in pg)
    calls = {s: sum(pg[s].runs[-1].calls.values()) for s in pg}
    same = calls == {s: sum(base[s].runs[-1].calls.values()) for s in base}
    flat = len(set(calls.values())) == 1
    return [
        f"- PeerGuard / bare script wall time, worst size, side by side: {worst:.2f}x "
        f"(target <= 1.2x: {'met' if worst <= 1.2 else 'NOT met'}); ratio of medians "
        f"{worst_of_medians:.2f}x. Both run in this process with warm imports, build a new "
        "boto3 session and its STS and EC2 clients per run, and call GetCallerIdentity once. "
        "Own CPU is the tool's thread (in-process tools) or the whole subprocess (Custodian, "
        "interpreter start included): the moto server's work, the same for all, is left out, "
        "so it is the steadier measure of what each tool costs on a busy machine.",
        f"- PeerGuard API calls per size: {calls} "
        f"({'same as' if same else 'differs from'} the bare script; "
        f"{'flat' if flat else 'grows'} with peerings)",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.run", description=__doc__)
    p.add_argument("--c7n", help="path to Cloud Custodian's `custodian` (skipped when absent)")
    p.add_argument("--sizes", default="10,50,200", help="ring sizes (peerings), comma-separated")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per tool and size")
    p.add_argument(
        "--change-sizes",
        default="10,200",
        help="ring sizes for the change-auditor invocation (a subset of --sizes; '' = skip)",
    )
    p.add_argument(
        "--announce-sizes",
        default="100,100000",
        help="state-table sizes (items) for the announce benchmark ('' = skip)",
    )
    p.add_argument("--output", type=Path, default=RESULTS, help="markdown file to write")
    args = p.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
        change_sizes = [int(s) for s in args.change_sizes.split(",") if s.strip()]
    except ValueError:
        p.error(
            f"bad --sizes {args.sizes!r} or --change-sizes {args.change_sizes!r} "
            "(expected integers like 10,50,200)"
        )
    if not set(change_sizes) <= set(sizes):
        p.error(f"--change-sizes {args.change_sizes!r} must be among --sizes {args.sizes!r}")
    if args.repeats < 1:
        p.error(f"bad --repeats {args.repeats} (expected 1 or more)")
    tools: dict[str, Callable[[Emulator, Ring], Run]] = {
        "PeerGuard": peerguard,
        BARE: bare,
    }
    c7n = args.c7n and (shutil.which(args.c7n) or (args.c7n if Path(args.c7n).exists() else None))
    if args.c7n and not c7n:
        p.error(f"custodian not found at {args.c7n!r}")
    if c7n:
        tools["Cloud Custodian 0.9.53"] = custodian(c7n)

    started = time.perf_counter()
    counters: list[RequestCounter] = []

    def counting(app: WsgiApp) -> RequestCounter:
        counters.append(RequestCounter(app))
        return counters[0]

    change_rows: list[ChangeRow] = []

    def change_auditor(emu: Emulator, ring: Ring) -> None:
        if ring.size in change_sizes:
            change_rows.append(measure_change(emu, counters[0], ring, args.repeats))

    with Emulator() as emu:
        emu.wrap_app(counting)
        rows, rings = measure(emu, counters[0], sizes, args.repeats, tools, change_auditor)
        c7n_start = startup_seconds(c7n, args.repeats) if c7n else None
    c7n_python = str(Path(c7n).parent / "python") if c7n else None
    imports = measure_imports(import_items(sys.executable, c7n_python), args.repeats)
    text, ok = table(rows, rings, args.repeats)
    notes = targets(rows)
    if c7n_start is not None:
        notes.append(
            f"- Cloud Custodian runs as a subprocess: its wall time includes "
            f"{c7n_start:.2f} s of interpreter start and imports (`custodian version`)."
        )
    notes.append(
        f"- moto 5.2.5 loopback server, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; whole benchmark "
        f"{time.perf_counter() - started:.0f} s."
    )
    sections = [
        "## Full audit: PeerGuard vs bare script vs Cloud Custodian",
        text,
        "\n".join(notes),
    ]
    if change_rows:
        change_text, change_notes = change_table(change_rows, args.repeats)
        sections += ["## One change-auditor invocation", change_text, "\n".join(change_notes)]
    sections += [
        "## Cold-start import time of each handler",
        import_table(imports, args.repeats),
        "- `python -X importtime -c <statement>`, the cumulative time of the top-level "
        "import; every interpreter reads its bytecode from one cache compiled by a warm-up "
        "run. Cloud Custodian's figure is for reference (its CLI imports more).",
    ]
    if args.announce_sizes.strip():
        announced = [
            measure_announce(int(n) - 5, args.repeats) for n in args.announce_sizes.split(",")
        ]
        sections += ["## One announce against a growing state table", announce_table(announced)]
    report = "\n\n".join(sections) + "\n"
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"written to {args.output}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
