"""`peerguard path`: read the regions asked for (and the two ends' interfaces), then trace.

The trace itself is pure (`peerguard.domain.reachability`); this only reads. Interfaces
are read only here, and only those of the two ends, so a path query costs the snapshot
plus one filtered DescribeNetworkInterfaces per region.
"""

from __future__ import annotations

from collections.abc import Iterable

from peerguard.aws.clients import Clients
from peerguard.aws.reader import Reader
from peerguard.domain.model import Snapshot
from peerguard.domain.reachability import PathResult, parse_end, path


def trace_path(
    clients: Clients, regions: Iterable[str], source: str, destination: str
) -> tuple[PathResult, Snapshot]:
    """The path from `source` to `destination` (as `parse_end` reads them). ValueError:
    bad input, or an end that is nowhere read."""
    regions = list(regions)
    src_t = parse_end(source, destination=False)
    dst_t = parse_end(destination, destination=True)
    reader = Reader(clients)
    snap = reader.full(regions)
    hosts = (src_t.host, dst_t.host)
    enis, warnings = reader.interfaces(
        regions,
        eni_ids=[h for h in hosts if h.startswith("eni-")],
        instance_ids=[h for h in hosts if h.startswith("i-")],
        addresses=[h for h in hosts if not h.startswith(("eni-", "i-", "subnet-"))],
    )
    snap = snap.model_copy(
        update={"network_interfaces": enis, "warnings": (*snap.warnings, *warnings)}
    )
    return path(snap, source, destination), snap
