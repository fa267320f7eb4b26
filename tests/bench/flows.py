"""`make bench` (flows): the embedded engine vs flowlogs-reader 5.0.1, side by side.

    python -m tests.bench.flows [--records 1000000,10000000] [--flowlogs-python PATH]
                                [--repeats 3] [--out bench-results/flows.md]

For each size, v2 records (tests/bench/flowgen.py) are written to a temporary directory,
plain and gzip. Each measurement runs in a process of its own, one after the other on the
same files: PeerGuard's engine (DuckDB) on one thread, then on every core, then
flowlogs-reader parsing the same file with its own `FlowRecord` in its own virtualenv and
making the same aggregates in Python. Records per second per core are records divided by
the process's CPU time for the parse+filter+aggregate step (the median of `--repeats` runs
for DuckDB; flowlogs-reader runs once, it is slow); peak RSS is the process's
ru_maxrss, so it includes the interpreter and libraries (shown alone, after imports, as
"at rest"). Both sides must report the same aggregates (count, packets, bytes, records),
or the run fails. The markdown table is printed and written to `--out`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "flows.md"
READER = Path(__file__).with_name("flows_reader.py")


def worker(path: str, threads: int) -> dict[str, Any]:
    """One DuckDB measurement, in this (fresh) process."""
    from peerguard.aws.flows.engine import Engine, LogFile, connect
    from peerguard.domain.flows.aggregates import Window
    from tests.bench.flowgen import SPAN, T0, peerings

    engine = Engine(connect(threads=threads))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0, wall0 = time.process_time(), time.perf_counter()
    aggs = engine.analyse([LogFile(Path(path))], peerings(), Window(900, T0, T0 + SPAN))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    packets, nbytes, records = aggs.totals()
    return {
        "groups": len(aggs.flows),
        "packets": packets,
        "bytes": nbytes,
        "records": records,
        "lines": aggs.counts.lines,
        "cpu": cpu,
        "wall": wall,
        "rss_before_kb": rss_before,
        "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    }


def _run(cmd: list[str]) -> dict[str, Any]:
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def duckdb_run(path: Path, threads: int) -> dict[str, Any]:
    return _run(
        [
            sys.executable,
            "-m",
            "tests.bench.flows",
            "--worker",
            str(path),
            "--threads",
            str(threads),
        ]
    )


def reader_run(python: str, path: Path, ranges: Path) -> dict[str, Any]:
    from tests.bench.flowgen import SPAN, T0

    return _run([python, str(READER), str(path), str(ranges), str(T0), str(T0 + SPAN)])


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_cpu = sorted(runs, key=lambda r: r["cpu"])
    mid = dict(by_cpu[len(by_cpu) // 2])
    mid["wall"] = statistics.median(r["wall"] for r in runs)
    mid["rss_kb"] = max(r["rss_kb"] for r in runs)
    return mid


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] for k in ("groups", "packets", "bytes", "records"))


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f}"


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds / 1e6:.2f} M/s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.flows", description=__doc__)
    p.add_argument("--records", default="1000000,10000000")
    p.add_argument("--flowlogs-python", default=str(ROOT / ".venv-flowlogs" / "bin" / "python"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.threads)))
        return 0

    from tests.bench.flowgen import generate, peerings, range_rows

    sizes = [int(x) for x in args.records.split(",") if x.strip()]
    have_reader = Path(args.flowlogs_python).exists()
    cores = os.cpu_count() or 1
    rows = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="peerguard-flows-bench-") as tmp:
        ranges = Path(tmp) / "ranges.json"
        ranges.write_text(json.dumps(range_rows(peerings())))
        for n in sizes:
            for suffix in (".log", ".log.gz"):
                path = generate(n, Path(tmp) / f"v2-{n}{suffix}")
                size = path.stat().st_size
                one = _median([duckdb_run(path, 1) for _ in range(args.repeats)])
                every = _median([duckdb_run(path, cores) for _ in range(args.repeats)])
                other = reader_run(args.flowlogs_python, path, ranges) if have_reader else None
                if other is not None and not _same(one, other):
                    ok = False
                    print(
                        f"MISMATCH on {path.name}: duckdb {one} flowlogs-reader {other}",
                        file=sys.stderr,
                    )
                rows.append((n, suffix, size, one, every, other))
                path.unlink()
                print(f"{n:>10,} {suffix:7} done", file=sys.stderr)
    lines = [
        f"Flow engine benchmark: {platform.python_implementation()} "
        f"{platform.python_version()}, {cores} core(s), {platform.machine()}; "
        f"DuckDB medians of {args.repeats} runs, flowlogs-reader 5.0.1 one run; "
        "per core = records / CPU seconds of the parse+filter+aggregate step.",
        "",
        "| records | file | size MB | aggregates | PeerGuard 1 thread: per core | wall s "
        f"| peak RSS MB (at rest) | PeerGuard {cores} threads: wall s | records/s "
        "| flowlogs-reader: per core | wall s | peak RSS MB (at rest) | speed-up per core "
        "| same aggregates |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for n, suffix, size, one, every, other in rows:
        kind = "gzip" if suffix.endswith(".gz") else "plain"
        theirs = ["-", "-", "-", "-", "not run"]
        if other is not None:
            theirs = [
                rate(n, other["cpu"]),
                f"{other['wall']:.1f}",
                f"{mb(other['rss_kb'])} ({mb(other['rss_before_kb'])})",
                f"{other['cpu'] / one['cpu']:.0f}x",
                "yes" if _same(one, other) else "NO",
            ]
        lines.append(
            f"| {n:,} | {kind} | {size / 1e6:.0f} | {one['groups']:,} | {rate(n, one['cpu'])} | "
            f"{one['wall']:.2f} | "
            f"{mb(one['rss_kb'])} ({mb(one['rss_before_kb'])}) | {every['wall']:.2f} | "
            f"{rate(n, every['wall'])} | " + " | ".join(theirs) + " |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
