"""Flow-log test data: peerings to filter on, and record lines written the way AWS writes them.

web = side("web", "10.0.0.0/16", "2600:1f18:a:100::/56")
db = side("db", "10.1.0.0/16", "10.2.0.0/16")       # a secondary block
pcx = crossing("pcx-web-db", web, db)
v2(src="10.0.1.5", dst="10.1.2.7", dport=5432)       # one default-format line
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from pathlib import Path

from peerguard.domain.flows.crossing import Crossing, Side
from peerguard.domain.flows.formats import V2_FIELDS

ACCOUNT = "111111111111"
REGION = "us-east-1"
T0 = 1_717_200_000  # 2024-06-01T00:00:00Z, a window boundary for 15-minute windows
V2_HEADER = " ".join(V2_FIELDS)


def side(name: str, *cidrs: str, owner: str = ACCOUNT, region: str = REGION) -> Side:
    return Side(f"vpc-{name}", owner, region, tuple(cidrs))


def crossing(pcx_id: str, requester: Side, accepter: Side, home: Side | None = None) -> Crossing:
    return Crossing(pcx_id, requester, accepter, home or accepter)


def v2(
    src: str = "-",
    dst: str = "-",
    sport: int | str = 40000,
    dport: int | str = 443,
    *,
    protocol: int | str = 6,
    packets: int | str = 10,
    bytes: int | str = 1000,
    start: int | str = T0 + 10,
    end: int | str | None = None,
    action: str = "ACCEPT",
    status: str = "OK",
    eni: str = "eni-0123456789abcdef0",
) -> str:
    end = end if end is not None else (int(start) + 60 if str(start).isdigit() else "-")
    fields = (2, ACCOUNT, eni, src, dst, sport, dport, protocol, packets, bytes, start, end)
    return " ".join(str(f) for f in fields) + f" {action} {status}"


def nodata(start: int = T0 + 10, status: str = "NODATA") -> str:
    return f"2 {ACCOUNT} eni-0123456789abcdef0 - - - - - - - {start} {start + 60} - {status}"


def custom(fields: Iterable[str], **values: object) -> str:
    """A line of a custom format: each field's value by name (hyphens as underscores)."""
    return " ".join(str(values.get(f.replace("-", "_"), "-")) for f in fields)


def write(path: Path, lines: Iterable[str], *, header: str | None = None) -> Path:
    """A log file: gzip when the name ends in .gz, with an S3-style header line if given."""
    text = "".join(f"{line}\n" for line in ([header] if header else []) + list(lines))
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path
