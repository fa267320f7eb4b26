"""`peerguard path` on a ring of N peerings, beside what Reachability Analyzer costs.

    python -m tests.bench.path [--size 200] [--repeats 5] [--output FILE]

The account is tests/bench/ring.py's ring (its planted defects included), plus one
interface per subnet, on a loopback moto server. Measured:
- one `peerguard path` query from nothing (what the CLI runs: the two ends' interfaces and
  subnets, a scoped read of their VPCs and their peers, the trace): wall time, median of
  `--repeats`, API calls;
- every neighbour query of the ring at once on one snapshot (each subnet to each subnet of
  both neighbouring VPCs, tcp 443): the pure trace, total and per query;
and checked: the planted missing return routes are the blocking hop of exactly the queries
they break, and no other query is blocked.

Reachability Analyzer's figures are AWS's published ones, not measured here (no AWS
account): $0.10 per analysis, and an analysis takes on the order of minutes; one path per
analysis. The markdown is printed and written to bench-results/path.md; exit 1 when a
verdict is wrong.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

from peerguard.aws.clients import Clients
from peerguard.aws.reader import Reader
from peerguard.domain.reachability import path
from peerguard.usecases.path import trace_path
from peerguard_lab.emulator import REGION, Emulator
from tests.bench.ring import Ring, build_ring

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "path.md"
RA_DOLLARS = 0.10  # per analysis (AWS pricing page, Reachability Analyzer)


def add_interfaces(emu: Emulator, ring: Ring) -> dict[str, str]:
    """One interface (.10) per subnet, in a group of its VPC letting https in from 10/8;
    subnet id -> its address."""
    ec2 = emu.session().client("ec2", endpoint_url=emu.url)
    web = {}
    for vpc in ring.vpcs:
        web[vpc] = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)[
            "GroupId"
        ]
        ec2.authorize_security_group_ingress(
            GroupId=web[vpc],
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                 "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
            ],
        )  # fmt: skip
    out = {}
    for page in ec2.get_paginator("describe_subnets").paginate():
        for sub in page["Subnets"]:
            if sub["VpcId"] not in web:
                continue  # moto's default VPC
            ip = sub["CidrBlock"].replace(".0/24", ".10")
            ec2.create_network_interface(
                SubnetId=sub["SubnetId"], PrivateIpAddress=ip, Groups=[web[sub["VpcId"]]]
            )
            out[sub["SubnetId"]] = ip
    return out


def one_query(emu: Emulator, src: str, dst: str) -> tuple[float, int, dict[str, object]]:
    """What `peerguard path` does, from nothing: seconds, API calls, the JSON."""
    clients = Clients(emu.session(), endpoint_url=emu.url, default_region=REGION)
    started = time.perf_counter()
    result, _ = trace_path(clients, [REGION], src, dst)
    body = json.loads(json.dumps(result.to_json()))
    return time.perf_counter() - started, clients.total_calls, body


def full_read_query(emu: Emulator, src: str, dst: str) -> tuple[float, int]:
    """The same query over a full read of the region (what `audit` reads), for comparison."""
    clients = Clients(emu.session(), endpoint_url=emu.url, default_region=REGION)
    started = time.perf_counter()
    reader = Reader(clients)
    snap = reader.full([REGION])
    enis, _ = reader.interfaces([REGION], addresses=[src, dst.split(":")[0]])
    path(snap.model_copy(update={"network_interfaces": enis}), src, dst)
    return time.perf_counter() - started, clients.total_calls


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.path")
    p.add_argument("--size", type=int, default=200)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--output", default=str(RESULTS))
    args = p.parse_args(argv)
    with Emulator() as emu:
        ring = build_ring(emu.session().client("ec2", endpoint_url=emu.url), args.size)
        addresses = add_interfaces(emu, ring)
        ec2 = emu.session().client("ec2", endpoint_url=emu.url)
        subnets: dict[str, list[str]] = {}
        for page in ec2.get_paginator("describe_subnets").paginate():
            for s in page["Subnets"]:
                if s["SubnetId"] in addresses:
                    subnets.setdefault(s["VpcId"], []).append(s["SubnetId"])
        for v in subnets.values():
            v.sort(key=lambda sid: addresses[sid])
        # One query end to end: VPC 1's first subnet to VPC 2's first interface.
        src = addresses[subnets[ring.vpcs[1]][0]]
        dst = addresses[subnets[ring.vpcs[2]][0]] + ":443"
        runs, full = [], []
        for _ in range(args.repeats):  # interleaved, so the machine's drift lands on both
            runs.append(one_query(emu, src, dst))
            full.append(full_read_query(emu, src, dst))
        cli_seconds = statistics.median(r[0] for r in runs)
        full_seconds, full_calls = statistics.median(f[0] for f in full), full[0][1]
        calls, body = runs[0][1], runs[0][2]
        ok = body["reachable"] is True
        # Every neighbour query on one snapshot.
        clients = Clients(emu.session(), endpoint_url=emu.url, default_region=REGION)
        reader = Reader(clients)
        snap = reader.full([REGION])
        enis, _ = reader.interfaces([REGION], addresses=list(addresses.values()))
        snap = snap.model_copy(update={"network_interfaces": enis})
        queries = []
        n = len(ring.vpcs)
        for i in range(n):
            for j in ((i + 1) % n, (i - 1) % n):
                for a in subnets[ring.vpcs[i]]:
                    for b in subnets[ring.vpcs[j]]:
                        queries.append((i, j, a, b))
        started = time.perf_counter()
        results = [path(snap, a, addresses[b] + ":443") for _, _, a, b in queries]
        trace_seconds = time.perf_counter() - started
        # The planted missing routes: VPC i+1's second table lacks 10.i/16 (i = 0, 10, ...):
        # queries from VPC i to that subnet lose their replies there, and queries from that
        # subnet to VPC i find no route there.
        missing = {ring.tables[(i + 1) % n][1]: i for i in range(0, n, 10)}
        wrong = 0
        for (i, j, a, b), r in zip(queries, results, strict=True):
            want = None
            to_second, from_second = ring.tables[j][1], ring.tables[i][1]
            if b == subnets[ring.vpcs[j]][1] and missing.get(to_second) == i:
                want = ("route-table", to_second, "return")
            if a == subnets[ring.vpcs[i]][1] and missing.get(from_second) == j:
                want = ("route-table", from_second, "forward")
            got = r.blocked_by
            if (None if got is None else (got.component, got.id, got.direction)) != want:
                ok = False
                wrong += 1
                if wrong <= 5:
                    print(f"wrong verdict: VPC {i} -> {b}: {got}", file=sys.stderr)
    blocked = sum(1 for r in results if r.blocked_by is not None)
    per_query_ms = trace_seconds / len(queries) * 1000
    lines = [
        f"# `peerguard path` on a ring of {args.size} peerings",
        "",
        f"Machine: {platform.machine()}, Python {platform.python_version()}; moto server on "
        f"loopback; {args.repeats} repeats (median).",
        "",
        "| what | PeerGuard | Reachability Analyzer (AWS's figures) |",
        "|---|---|---|",
        f"| one path, from nothing (read around the two ends + trace) | {cli_seconds:.2f} s, "
        f"{calls} API calls, $0 | minutes per analysis, ${RA_DOLLARS:.2f} |",
        f"| the same path over a full read of the region (as `audit` reads) | "
        f"{full_seconds:.2f} s, {full_calls} API calls | |",
        f"| every neighbour path of the ring ({len(queries)} queries) on one snapshot | "
        f"{trace_seconds:.2f} s ({per_query_ms:.2f} ms per query), $0 | "
        f"{len(queries)} analyses: ${len(queries) * RA_DOLLARS:,.2f} |",
        "| cross-region | yes (both regions read) | same region only |",
        "",
        f"Blocked queries: {blocked} (by the planted missing routes), verdicts "
        f"{'all right' if ok else 'WRONG'}.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
