"""The flow benchmark's other side: flowlogs-reader 5.0.1 doing PeerGuard's aggregation.

    .venv-flowlogs/bin/python tests/bench/flows_reader.py FILE RANGES.json SINCE UNTIL

Runs in flowlogs-reader's own virtualenv (standard library and flowlogs_reader only). It
reads the file the way flowlogs-reader's S3 reader reads an object (csv.DictReader on the
header line, field names with underscores, one `FlowRecord` per row) and makes the same
aggregates as the engine: records between the two sides of a peering, per (peering,
direction, 15-minute window, source, destination, service port, protocol, action,
reply). Prints one JSON line: what it found, its CPU time and peak RSS.
"""

from __future__ import annotations

import calendar
import csv
import gzip
import ipaddress
import json
import resource
import sys
import time
from typing import Any

V6_OFFSET = 1 << 63
EPHEMERAL_FROM = 32768
WINDOW = 900


def key(address: str) -> tuple[int, int] | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    return (4, int(ip)) if ip.version == 4 else (6, (int(ip) >> 64) - V6_OFFSET)


def aggregate(
    records: Any, ranges: list[list[Any]], since: int, until: int
) -> dict[tuple[Any, ...], list[int]]:
    """Sum FlowRecord-like objects crossing the ranges, as the engine does (v2 fields)."""
    out: dict[tuple[Any, ...], list[int]] = {}
    keys: dict[str, tuple[int, int] | None] = {}
    for rec in records:
        if rec.log_status != "OK" or rec.srcaddr is None or rec.dstaddr is None:
            continue
        t = calendar.timegm(rec.start.utctimetuple())
        if not since <= t < until:
            continue
        s = keys.get(rec.srcaddr) or keys.setdefault(rec.srcaddr, key(rec.srcaddr))
        d = keys.get(rec.dstaddr) or keys.setdefault(rec.dstaddr, key(rec.dstaddr))
        if s is None or d is None or s[0] != d[0]:
            continue
        reply = rec.srcport < EPHEMERAL_FROM <= rec.dstport
        port = rec.srcport if reply else rec.dstport
        for pcx, direction, fam, slo, shi, dlo, dhi in ranges:
            if fam == s[0] and slo <= s[1] <= shi and dlo <= d[1] <= dhi:
                k = (pcx, direction, t - t % WINDOW, rec.srcaddr, rec.dstaddr, port,
                     rec.protocol, rec.action, reply)  # fmt: skip
                acc = out.get(k)
                if acc is None:
                    acc = out[k] = [0, 0, 0]
                acc[0] += rec.packets or 0
                acc[1] += rec.bytes or 0
                acc[2] += 1
    return out


def main(argv: list[str]) -> int:
    from flowlogs_reader import FlowRecord  # only in flowlogs-reader's virtualenv

    path, ranges_file, since, until = argv[0], argv[1], int(argv[2]), int(argv[3])
    with open(ranges_file) as f:
        ranges = json.load(f)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0, wall0 = time.process_time(), time.perf_counter()
    opener: Any = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        reader = csv.DictReader(f, delimiter=" ")  # as S3FlowLogsReader._read_file does
        reader.fieldnames = [name.replace("-", "_") for name in reader.fieldnames or []]
        aggs = aggregate((FlowRecord(row) for row in reader), ranges, since, until)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    totals = [sum(v[i] for v in aggs.values()) for i in range(3)]
    print(
        json.dumps(
            {
                "groups": len(aggs),
                "packets": totals[0],
                "bytes": totals[1],
                "records": totals[2],
                "cpu": cpu,
                "wall": wall,
                "rss_before_kb": rss_before,
                "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
