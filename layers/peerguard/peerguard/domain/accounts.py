"""Several accounts in one picture. Pure.

An audit of one account that read the far sides of its peerings (through the member role)
judges that account's resources, and the far sides as they concern its own peerings: the
far account's other peerings are for that account's own audit to judge, so what they
raise is left out here (`in_view`). An audit of many accounts merges the audits of each:
a peering seen from both sides is one peering, each finding is reported once, and a
peering one audit verified from both sides is not "unverified" because another could not
(`merge`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from peerguard.domain.findings import Finding, sort_findings
from peerguard.domain.model import PeeringConnection, Snapshot

UNVERIFIED = "route.peer_side_unverified"


def home_peerings(snap: Snapshot) -> set[str]:
    """The peerings with a side in the audited account."""
    return {
        p.pcx_id
        for p in snap.peerings.values()
        if any(s.owner_id == snap.account_id for s in p.sides)
    }


def far_accounts(snap: Snapshot) -> set[str]:
    """The other accounts whose far sides were read."""
    return {acct for acct, _ in snap.readable} - {snap.account_id}


def in_view(snap: Snapshot, findings: Iterable[Finding]) -> list[Finding]:
    """The findings an audit of `snap.account_id` reports: all of its own, and those on a
    far side read through the member role that concern one of its peerings (or the far
    VPC as a whole). Without a far side read, every finding is kept as it was."""
    found = list(findings)
    far = far_accounts(snap)
    if not far:
        return found
    ours = home_peerings(snap)
    far_vpcs = {s.vpc_id for p in snap.peerings.values() if p.pcx_id in ours for s in p.sides} - {
        v.vpc_id for v in snap.vpcs.values() if v.owner_id == snap.account_id
    }
    return [
        f
        for f in found
        if f.account_id not in far
        or f.peering_connection_id in ours
        or (f.peering_connection_id is None and f.vpc_id in far_vpcs)
    ]


def verified_peerings(snap: Snapshot) -> set[str]:
    """Peerings both of whose sides this snapshot read."""
    return {p.pcx_id for p in snap.peerings.values() if all(snap.side_visible(s) for s in p.sides)}


def identity(f: Finding) -> tuple[str, str, str]:
    """One problem on one resource, whichever account's audit saw it (resource ids are
    unique across accounts; a peering-level finding may be filed under either side)."""
    return f.check_id, f.resource_id, f.key


def merge(audits: Sequence[tuple[Snapshot, Sequence[Finding]]]) -> list[Finding]:
    """Each finding once. Where two audits report the same one, the audit of the account it
    belongs to wins (it alone may fix it, so its remediation says what will happen); a
    peering some audit verified from both sides is not reported unverified."""
    verified = set().union(*(verified_peerings(s) for s, _ in audits)) if audits else set()
    best: dict[tuple[str, str, str], tuple[int, Finding]] = {}
    for snap, findings in audits:
        for f in findings:
            if f.check_id == UNVERIFIED and f.peering_connection_id in verified:
                continue
            rank = 0 if f.account_id == snap.account_id else 1
            key = identity(f)
            if key not in best or rank < best[key][0]:
                best[key] = (rank, f)
    return sort_findings([f for _, f in best.values()])


def merged_peerings(snaps: Iterable[Snapshot]) -> dict[str, PeeringConnection]:
    """Every peering any audit saw, once."""
    out: dict[str, PeeringConnection] = {}
    for snap in snaps:
        for pcx_id, p in snap.peerings.items():
            out.setdefault(pcx_id, p)
    return out
