"""Generated VPC flow log records for the flow benchmark (default format, version 2).

A fixed population of hosts talks for one hour (four 15-minute windows), whatever the
number of records: more records mean busier hosts, not more of them, so the number of
aggregates stays the same and memory can be compared across sizes. About 60 % of the
records cross one of three peerings (a secondary block and IPv6 among them), half of
those are replies from a service port to an ephemeral one; the rest is traffic inside a
VPC or to the internet, and 0.5 % are NODATA.

Only the standard library is used: flowlogs-reader's virtualenv imports the peerings'
ranges from JSON, not from peerguard.
"""

from __future__ import annotations

import gzip
import random
from pathlib import Path
from typing import TextIO

from peerguard.domain.flows.crossing import Crossing, Side, ranges

ACCOUNT = "111111111111"
REGION = "us-east-1"
T0 = 1_717_200_000  # 2024-06-01T00:00:00Z
SPAN = 3600
HEADER = (
    "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes "
    "start end action log-status\n"
)


def peerings() -> tuple[Crossing, ...]:
    web = Side(
        "vpc-web", "111111111111", "us-east-1", ("10.0.0.0/16", "10.2.0.0/16", "2600:1f18:a::/56")
    )
    db = Side("vpc-db", "111111111111", "us-east-1", ("10.1.0.0/16", "2600:1f18:b::/56"))
    ops = Side("vpc-ops", "222222222222", "us-west-2", ("172.31.0.0/16",))
    return (
        Crossing("pcx-web-db", web, db, web),
        Crossing("pcx-ops-web", ops, web, web),
        Crossing("pcx-ops-db", ops, db, db),
    )


def range_rows(cs: tuple[Crossing, ...]) -> list[list[object]]:
    """The peerings' ranges as plain lists (what the flowlogs-reader side filters on)."""
    return [
        [r.peering_id, r.direction.value, r.family, r.src_lo, r.src_hi, r.dst_lo, r.dst_hi]
        for r in ranges(cs)
    ]


def _write(n: int, out: TextIO, seed: int) -> None:
    rnd = random.Random(seed)
    clients = [f"10.0.{i}.{j}" for i in range(4) for j in range(10, 60)]
    clients += [f"10.2.0.{j}" for j in range(10, 30)] + [f"172.31.1.{j}" for j in range(10, 20)]
    servers = [
        (f"10.1.{i}.{j}", rnd.choice((443, 5432, 6379, 8080)))
        for i in range(2)
        for j in range(10, 35)
    ]
    servers += [(f"172.31.5.{j}", 443) for j in range(10, 20)]
    v6_clients = [f"2600:1f18:a:{k:x}::{j:x}" for k in range(2) for j in range(1, 20)]
    v6_servers = [(f"2600:1f18:b:1::{j:x}", 443) for j in range(1, 10)]
    other = [f"10.0.9.{j}" for j in range(1, 200)] + [
        f"52.95.{i}.{j}" for i in range(4) for j in range(1, 50)
    ]
    peers = {c: rnd.sample(servers, 6) for c in clients}
    peers6 = {c: rnd.sample(v6_servers, 3) for c in v6_clients}
    eni = "eni-0a1b2c3d4e5f60718"
    write = out.write
    write(HEADER)
    for k in range(n):
        t = T0 + (k * SPAN) // n
        r = rnd.random()
        if r < 0.005:
            write(f"2 111111111111 {eni} - - - - - - - {t} {t + 60} - NODATA\n")
            continue
        if r < 0.6:
            c = rnd.choice(clients)
            s, port = rnd.choice(peers[c])
        elif r < 0.62:
            c = rnd.choice(v6_clients)
            s, port = rnd.choice(peers6[c])
        else:
            c, s, port = rnd.choice(other), rnd.choice(other), rnd.choice((443, 80, 22, 3306))
        eph = rnd.randint(32768, 60999)
        if rnd.random() < 0.5:
            src, dst, sp, dp = c, s, eph, port
        else:
            src, dst, sp, dp = s, c, port, eph
        action = "ACCEPT" if rnd.random() < 0.97 else "REJECT"
        pk = rnd.randint(1, 40)
        write(
            f"2 111111111111 {eni} {src} {dst} {sp} {dp} 6 {pk} {pk * rnd.randint(60, 1400)} "
            f"{t} {t + 60} {action} OK\n"
        )


def generate(n: int, path: Path, seed: int = 7) -> Path:
    """`n` records in `path` (gzip when it ends in .gz), with an S3-style header line."""
    if path.suffix == ".gz":
        with gzip.open(path, "wt", compresslevel=6) as f:
            _write(n, f, seed)
    else:
        with open(path, "w") as f:
            _write(n, f, seed)
    return path
