"""`peerguard peerings`: every peering at a glance, each side summarised. Pure.

Per side: the VPC (Name tag, CIDR blocks, account, region), how many of its subnets route
through the peering, what its security groups let in from the peer, what its network ACLs
do to the peer's range, the DNS option, flow-log coverage; per peering, the findings of
the audit that concern it, by severity. A side PeerGuard did not read says "unknown".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from peerguard.domain.checks.flowlogs import coverage_gap, routed_subnets
from peerguard.domain.findings import Finding, Severity
from peerguard.domain.model import ACTIVE, PeeringConnection, PeeringSide, Snapshot, span
from peerguard.domain.paths import decisions, every_protocol

UNKNOWN = "unknown"


@dataclass(frozen=True)
class SideView:
    vpc_id: str
    name: str
    cidr_blocks: tuple[str, ...]
    account_id: str
    region: str
    readable: bool
    routes: str  # all subnets | n of m subnets | none | unknown
    routed_subnets: int | None
    subnets: int | None
    sg_exposure: str  # none | scoped ports | all traffic | unknown
    nacl: str  # allows all | restricted | blocks all | unknown
    dns_resolution_from_remote: bool | None
    flow_logs: str  # all traffic | partial | none | unknown
    flow_logs_detail: str


@dataclass(frozen=True)
class PeeringView:
    peering_connection_id: str
    name: str
    status: str
    status_message: str
    requester: SideView
    accepter: SideView
    findings: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        for side in ("requester", "accepter"):
            body[side]["cidr_blocks"] = list(body[side]["cidr_blocks"])
        return body


def summarise(snap: Snapshot, findings: Iterable[Finding]) -> list[PeeringView]:
    """One view per peering in the snapshot, ordered by id."""
    by_pcx: dict[str, Counter[str]] = {}
    for f in findings:
        ids = {f.peering_connection_id, *f.extra.get("peering_connection_ids", ())} - {None}
        for pcx_id in ids:
            by_pcx.setdefault(str(pcx_id), Counter())[f.severity.value] += 1
    out = []
    for pcx in sorted(snap.peerings.values(), key=lambda p: p.pcx_id):
        counts = by_pcx.get(pcx.pcx_id, Counter())
        out.append(
            PeeringView(
                peering_connection_id=pcx.pcx_id,
                name=pcx.tags.get("Name", ""),
                status=pcx.status,
                status_message=pcx.status_message,
                requester=_side(snap, pcx, pcx.requester),
                accepter=_side(snap, pcx, pcx.accepter),
                findings={s.value: counts.get(s.value, 0) for s in reversed(Severity)},
            )
        )
    return out


def _side(snap: Snapshot, pcx: PeeringConnection, side: PeeringSide) -> SideView:
    vpc = snap.vpcs.get(side.vpc_id)
    readable = snap.side_visible(side)
    name = vpc.tags.get("Name", "") if vpc else ""
    unknown = SideView(
        vpc_id=side.vpc_id,
        name=name,
        cidr_blocks=snap.vpc_cidrs(side),
        account_id=side.owner_id,
        region=side.region,
        readable=readable,
        routes=UNKNOWN,
        routed_subnets=None,
        subnets=None,
        sg_exposure=UNKNOWN,
        nacl=UNKNOWN,
        dns_resolution_from_remote=side.allow_dns_from_remote,
        flow_logs=UNKNOWN,
        flow_logs_detail="",
    )
    if not readable or vpc is None:
        return unknown
    peer_blocks = snap.peer_cidrs(pcx, side.vpc_id)
    subnets = snap.subnets_in(side.vpc_id)
    routed = routed_subnets(snap, side.vpc_id, {pcx.pcx_id})
    if not routed:
        routes = "none"
    elif len(routed) == len(subnets):
        routes = "all subnets"
    else:
        routes = f"{len(routed)} of {len(subnets)} subnets"
    if routed and pcx.status != ACTIVE:
        routes += f" (carrying nothing: {pcx.status})"
    flow, detail = _flow_logs(snap, pcx, side)
    return replace(
        unknown,
        routes=routes,
        routed_subnets=len(routed),
        subnets=len(subnets),
        sg_exposure=_exposure(snap, side, pcx),
        nacl=_nacl(snap, side, peer_blocks),
        flow_logs=flow,
        flow_logs_detail=detail,
    )


def _exposure(snap: Snapshot, side: PeeringSide, pcx: PeeringConnection) -> str:
    """What the side's security groups let in from the peer: ingress rules whose CIDR
    overlaps a peer block, or that reference a group of the peer VPC."""
    if snap.security_groups is None or (side.region, "security_groups") in snap.partial:
        return UNKNOWN
    peer = pcx.other(side.vpc_id)
    blocks = [span(b) for b in snap.peer_cidrs(pcx, side.vpc_id)]
    found = "none"
    for g in snap.security_groups.values():
        if g.vpc_id != side.vpc_id:
            continue
        for r in g.ingress:
            from_peer = (r.cidr is not None and any(span(r.cidr).overlaps(b) for b in blocks)) or (
                r.referenced_group_id is not None
                and (r.referenced_vpc_id or snap.group_vpc(r.referenced_group_id)) == peer.vpc_id
            )
            if from_peer and r.all_traffic:
                return "all traffic"
            if from_peer:
                found = "scoped ports"
    return found


def _nacl(snap: Snapshot, side: PeeringSide, peer_blocks: tuple[str, ...]) -> str:
    """What the ACLs of the side's subnets do to the peer's range, both ways, worst first:
    blocks all (some ACL lets nothing of it through one way), restricted, allows all."""
    if snap.network_acls is None or (side.region, "network_acls") in snap.partial:
        return UNKNOWN
    acls = {a.acl_id: a for s in snap.subnets_in(side.vpc_id) if (a := snap.acl_of(s))}
    verdict = "allows all"
    for acl in acls.values():
        for egress in (False, True):
            entries = acl.direction(egress)
            for block in peer_blocks:
                cells = [
                    e
                    for proto, ports in every_protocol(entries)
                    for _, _, e in decisions(entries, span(block), proto, ports)
                ]
                allowed = [e for e in cells if e is not None and e.allow]
                if not allowed:
                    return "blocks all"
                if len(allowed) < len(cells):
                    verdict = "restricted"
    return verdict


def _flow_logs(snap: Snapshot, pcx: PeeringConnection, side: PeeringSide) -> tuple[str, str]:
    vpc = snap.vpcs[side.vpc_id]
    if snap.flow_logs is None or (side.region, "flow_logs") in snap.partial:
        return UNKNOWN, ""
    gap = coverage_gap(snap, vpc, {pcx.pcx_id})
    if not gap:
        return "all traffic", ""
    resources = [vpc.vpc_id, *(s.subnet_id for s in snap.subnets_in(vpc.vpc_id))]
    if not any(snap.flow_logs_on(r) for r in resources):
        return "none", gap
    return "partial", gap
