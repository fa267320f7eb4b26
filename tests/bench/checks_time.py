"""Time the checks alone on a ring snapshot built in pure Python (no moto, no I/O).

    python -m tests.bench.checks_time [--size 200] [--repeats 5] [--profile] [--dump FILE]

The snapshot has the topology of tests/bench/ring.py (two subnets and tables per VPC, a
main table, a deleted chord peering per 10, one transitive route per 10). Prints the
median seconds per check; `--dump` writes the findings as JSON so two versions of the
code can be compared for identical results.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import statistics
import sys
import time
from pathlib import Path

from peerguard.domain.checks import REGISTRY, CheckContext, run_checks
from peerguard.domain.model import Snapshot
from tests.bench.ring import cidr
from tests.unit.netbuilder import Net


def ring_snapshot(size: int) -> Snapshot:
    net = Net()
    vpcs = [net.vpc(f"v{i}", cidr(i)) for i in range(size)]
    tables = []
    for i, vpc in enumerate(vpcs):
        pair = []
        for k in (1, 2):
            rt = net.table(vpc)
            net.subnet(vpc, f"10.{i}.{k}.0/24", table=rt)
            pair.append(rt)
        tables.append(pair)
    ring = [net.peer(vpcs[i], vpcs[(i + 1) % size]) for i in range(size)]
    missing = {(i + 1) % size: i for i in range(0, size, 10)}
    for i in range(size):
        nxt, prev = (i + 1) % size, (i - 1) % size
        for n, rt in enumerate(tables[i]):
            net.route(rt, cidr(nxt), ring[i])
            if not (n == 1 and missing.get(i) == prev):
                net.route(rt, cidr(prev), ring[prev])
    for j in range(3, size, 10):
        other = (j + 5) % size
        chord = net.peer(vpcs[j], vpcs[other], status="deleted", pcx_id=f"pcx-chord-{j}")
        net.route(tables[j][0], cidr(other), chord)
        net.route(tables[other][0], cidr(j), chord)
    for m in range(6, size, 10):
        net.route(tables[m][0], cidr((m + 2) % size), ring[m])
    return net.snapshot()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.checks_time", description=__doc__)
    p.add_argument("--size", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--profile", action="store_true", help="cProfile one run of all checks")
    p.add_argument("--dump", type=Path, help="write the findings as JSON to this file")
    args = p.parse_args(argv)
    ctx = CheckContext()
    times: dict[str, list[float]] = {c: [] for c in REGISTRY}
    totals = []
    for _ in range(args.repeats):
        snap = ring_snapshot(args.size)  # fresh: no cached state carried between runs
        started = time.perf_counter()
        for check_id, c in REGISTRY.items():
            t0 = time.perf_counter()
            c.run(snap, ctx)
            times[check_id].append(time.perf_counter() - t0)
        totals.append(time.perf_counter() - started)
    for check_id, ts in sorted(times.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"{statistics.median(ts) * 1000:9.2f} ms  {check_id}")
    print(f"{statistics.median(totals) * 1000:9.2f} ms  all checks ({args.size} peerings)")
    print(f"{totals[0] * 1000:9.2f} ms  all checks, first run (cold CIDR caches)")
    if args.profile:
        snap = ring_snapshot(args.size)
        prof = cProfile.Profile()
        prof.runcall(run_checks, snap, ctx)
        pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
    if args.dump:
        found = run_checks(ring_snapshot(args.size), ctx)
        args.dump.write_text(json.dumps([f.model_dump(mode="json") for f in found], indent=1))
        print(f"{len(found)} findings written to {args.dump}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
