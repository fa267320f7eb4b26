"""`peerguard path`: read what the two ends need, then trace.

The trace itself is pure (`peerguard.domain.reachability`); this only reads, and only
around the ends: their interfaces (DescribeNetworkInterfaces, filtered), the subnets that
hold them, then a scoped read (`Reader.scoped`) of their VPCs, the peerings of those VPCs
and the VPCs on the other side (what a transitive attempt is judged by), with their route
tables, ACLs and security groups. The cost follows the ends, not the size of the account.
"""

from __future__ import annotations

from collections.abc import Iterable

from peerguard.aws.clients import Clients
from peerguard.aws.reader import Reader
from peerguard.domain.model import Snapshot
from peerguard.domain.reachability import PathResult, parse_end, path
from peerguard.domain.scope import Scope


def trace_path(
    clients: Clients, regions: Iterable[str], source: str, destination: str
) -> tuple[PathResult, Snapshot]:
    """The path from `source` to `destination` (as `parse_end` reads them). ValueError:
    bad input, or an end that is nowhere read."""
    regions = list(regions)
    hosts = (
        parse_end(source, destination=False).host,
        parse_end(destination, destination=True).host,
    )
    reader = Reader(clients)
    enis, warnings = reader.interfaces(
        regions,
        eni_ids=[h for h in hosts if h.startswith("eni-")],
        instance_ids=[h for h in hosts if h.startswith("i-")],
        addresses=[h for h in hosts if _is_address(h)],
    )
    on_interface = {ip for e in enis.values() for ip in e.private_ips}
    where, more = reader.locate(
        regions,
        subnet_ids=[h for h in hosts if h.startswith("subnet-")],
        addresses=[h for h in hosts if _is_address(h) and h not in on_interface],
    )
    for eni in enis.values():
        where.setdefault(eni.region, set()).add(eni.subnet_id)
    parts = [
        reader.scoped(region, Scope(subnet_ids=frozenset(ids)), regions)
        for region, ids in sorted(where.items(), key=lambda kv: regions.index(kv[0]))
    ] or [reader.scoped(regions[0], Scope(), regions)]
    snap = parts[0]
    for part in parts[1:]:
        snap = snap.merged(part)
    snap = snap.model_copy(
        update={"network_interfaces": enis, "warnings": (*snap.warnings, *warnings, *more)}
    )
    return path(snap, source, destination), snap


def _is_address(host: str) -> bool:
    return not host.startswith(("eni-", "i-", "subnet-"))
