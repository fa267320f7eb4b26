"""Checks on the peering connections themselves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from peerguard.domain.catalogue import check, entry
from peerguard.domain.checks.context import CheckContext
from peerguard.domain.findings import Finding, Remediation, Severity
from peerguard.domain.model import (
    ACTIVE,
    DEAD_STATES,
    PENDING_ACCEPTANCE,
    PeeringConnection,
    PeeringSide,
    Snapshot,
    cidr_family_pairs,
)

READ = ("ec2:DescribeVpcPeeringConnections",)
PCX = "AWS::EC2::VPCPeeringConnection"
READ_NET = (
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeVpcs",
    "ec2:DescribeRouteTables",
)


def pcx_finding(
    check_id: str,
    snap: Snapshot,
    pcx: PeeringConnection,
    side: PeeringSide,
    detail: str,
    *,
    severity: Severity | None = None,
    remediation: Remediation | None = None,
    key: str = "",
    extra: dict[str, Any] | None = None,
) -> Finding:
    return entry(check_id).finding(
        resource_id=pcx.pcx_id,
        account_id=side.owner_id,
        region=side.region,
        vpc_id=side.vpc_id,
        peering_connection_id=pcx.pcx_id,
        detail=detail,
        severity=severity,
        remediation=remediation,
        key=key,
        extra=extra,
    )


def own_sides(snap: Snapshot, pcx: PeeringConnection) -> Iterator[PeeringSide]:
    """The sides of `pcx` that belong to the audited account and were read."""
    seen = set()
    for side in pcx.sides:
        ours = side.owner_id == snap.account_id and snap.can_read(side.owner_id, side.region)
        if ours and side.vpc_id not in seen:
            seen.add(side.vpc_id)
            yield side


def home_side(snap: Snapshot, pcx: PeeringConnection) -> PeeringSide:
    """The side a peering-level finding is filed under: a side that was read, accepter
    first. (Not "ours first": with the member role both sides are read, and the audits of
    the two accounts must file the finding under the same side, so it is one finding.)"""
    for side in (pcx.accepter, pcx.requester):
        if snap.can_read(side.owner_id, side.region):
            return side
    return pcx.requester


def describe(pcx: PeeringConnection) -> str:
    r, a = pcx.requester, pcx.accepter
    return (
        f"{pcx.pcx_id} ({r.vpc_id} in {r.owner_id}/{r.region} -> "
        f"{a.vpc_id} in {a.owner_id}/{a.region})"
    )


@check(
    "peering.pending_acceptance",
    Severity.MEDIUM,
    "Peering request waits for this account's acceptance",
    risk="Nothing flows until it is accepted; AWS expires the request after 7 days.",
    fix="Accept it if the requester is expected, or reject it.",
    resource_type=PCX,
    iam_actions=READ,
    automatic_fix="accepted by the acceptance function when the requester is allowlisted "
    "and AutoAcceptPeerings is on",
)
def pending_acceptance(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    for pcx in snap.peerings.values():
        a = pcx.accepter
        if pcx.status != PENDING_ACCEPTANCE or a.owner_id != snap.account_id:
            continue
        if not snap.can_read(a.owner_id, a.region):
            continue
        left = pcx.expiration_time - snap.taken_at if pcx.expiration_time else None
        urgent = left is not None and left < ctx.expiry_warning
        # `left` may be zero or negative (expiring now): still say when.
        expiry = (
            f"; it expires at {pcx.expiration_time:%Y-%m-%d %H:%M} UTC" if left is not None else ""
        )
        yield pcx_finding(
            "peering.pending_acceptance",
            snap,
            pcx,
            a,
            f"{describe(pcx)} is pending acceptance by account {a.owner_id}{expiry}.",
            severity=Severity.HIGH if urgent else None,
            remediation=Remediation(
                action="AcceptVpcPeeringConnection",
                parameters={"VpcPeeringConnectionId": pcx.pcx_id},
                automatic=False,
                reason="accepted automatically only for allowlisted requesters",
            ),
        )


@check(
    "peering.not_allowlisted",
    Severity.HIGH,
    "Peering with an account that is not on the allowlist",
    risk="A network path into this VPC from an account nobody approved.",
    fix="Reject or delete the peering, or add the account to the allowlist.",
    resource_type=PCX,
    iam_actions=READ,
    automatic_fix="a pending request is rejected once it waited RejectUnlistedAfterHours, if set",
    needs_allowlist=True,
)
def not_allowlisted(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    if ctx.allowlist.entries is None:
        return
    for pcx in snap.peerings.values():
        if pcx.status not in (PENDING_ACCEPTANCE, ACTIVE):
            continue
        for side in own_sides(snap, pcx):
            other = pcx.other(side.vpc_id)
            if other.owner_id == snap.account_id or ctx.allowlist.allows(
                other.owner_id, other.region, other.vpc_id
            ):
                continue
            pending = pcx.status == PENDING_ACCEPTANCE and side is pcx.accepter
            yield pcx_finding(
                "peering.not_allowlisted",
                snap,
                pcx,
                side,
                f"{describe(pcx)} is {pcx.status} with account {other.owner_id} "
                f"({other.vpc_id} in {other.region}), which is not on the allowlist.",
                remediation=Remediation(
                    action=(
                        "RejectVpcPeeringConnection" if pending else "DeleteVpcPeeringConnection"
                    ),
                    parameters={"VpcPeeringConnectionId": pcx.pcx_id},
                    automatic=False,
                    reason="rejecting or deleting a peering is left to a person",
                ),
            )


@check(
    "peering.cidr_overlap",
    Severity.HIGH,
    "Peered VPCs have overlapping CIDR blocks",
    risk="AWS refuses peering between overlapping ranges; traffic cannot be routed.",
    fix="Peering cannot work: expose the service with PrivateLink (endpoint service + NLB) "
    "or connect through a Transit Gateway with NAT, or re-address one VPC.",
    resource_type=PCX,
    iam_actions=READ_NET,
)
def cidr_overlap(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    for pcx in snap.peerings.values():
        if pcx.status in DEAD_STATES - {"failed"}:
            continue
        clash = list(cidr_family_pairs(snap.vpc_cidrs(pcx.requester), snap.vpc_cidrs(pcx.accepter)))
        if not clash:
            continue
        pairs = ", ".join(f"{a} ~ {b}" for a, b in clash)
        yield pcx_finding(
            "peering.cidr_overlap",
            snap,
            pcx,
            home_side(snap, pcx),
            f"{describe(pcx)} ({pcx.status}): CIDR blocks overlap ({pairs}). Peering cannot "
            "route overlapping ranges; use PrivateLink or a Transit Gateway design instead.",
        )


@check(
    "peering.failed",
    Severity.LOW,
    "Peering request failed",
    risk="The requested connectivity does not exist.",
    fix="Read the status message; usually overlapping CIDRs or a wrong account/VPC id.",
    resource_type=PCX,
    iam_actions=READ,
)
def failed(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    for pcx in snap.peerings.values():
        if pcx.status == "failed":
            why = f": {pcx.status_message}" if pcx.status_message else ""
            yield pcx_finding(
                "peering.failed", snap, pcx, home_side(snap, pcx), f"{describe(pcx)} failed{why}."
            )


@check(
    "peering.no_routes",
    Severity.LOW,
    "Active peering that no route uses",
    risk="An unused path that still widens what can be reached if someone adds a route.",
    fix="Add routes on both sides, or delete the peering if it is not needed.",
    resource_type=PCX,
    iam_actions=READ_NET,
)
def no_routes(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    used = {r.target for rt in snap.route_tables.values() for r in rt.routes if r.peering_id}
    for pcx in snap.peerings.values():
        if pcx.status != ACTIVE or pcx.pcx_id in used:
            continue
        visible = [s for s in pcx.sides if snap.side_visible(s)]
        if not visible:
            continue
        seen = " and ".join(sorted({s.vpc_id for s in visible}))
        yield pcx_finding(
            "peering.no_routes",
            snap,
            pcx,
            home_side(snap, pcx),
            f"{describe(pcx)} is active but no route table of {seen} routes through it.",
        )


@check(
    "peering.dns_resolution_disabled",
    Severity.LOW,
    "Peer cannot resolve this VPC's public DNS names to private IPs",
    risk="Instances in the peer VPC resolve this VPC's public hostnames to public IPs, so "
    "their traffic leaves the peering.",
    fix="Allow DNS resolution from the remote VPC on this side of the peering.",
    resource_type=PCX,
    iam_actions=(*READ, "ec2:DescribeVpcAttribute"),
    automatic_fix="allows DNS resolution from the remote VPC on this side, in fix mode with "
    "FixPeerDns",
)
def dns_resolution_disabled(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    for pcx in snap.peerings.values():
        if pcx.status != ACTIVE:
            continue
        for side in own_sides(snap, pcx):
            if side.allow_dns_from_remote is not False:
                continue
            vpc = snap.vpcs.get(side.vpc_id)
            # Without DNS hostnames the VPC has no public names to resolve: no risk.
            if vpc is not None and vpc.dns_hostnames is False:
                continue
            role = "Requester" if side is pcx.requester else "Accepter"
            yield pcx_finding(
                "peering.dns_resolution_disabled",
                snap,
                pcx,
                side,
                f"{describe(pcx)}: {side.vpc_id} does not allow DNS resolution from the "
                f"remote VPC ({role}PeeringConnectionOptions.AllowDnsResolutionFromRemoteVpc "
                "is false).",
                key=side.vpc_id,
                remediation=Remediation(
                    action="ModifyVpcPeeringConnectionOptions",
                    parameters={
                        "VpcPeeringConnectionId": pcx.pcx_id,
                        f"{role}PeeringConnectionOptions": {
                            "AllowDnsResolutionFromRemoteVpc": True
                        },
                    },
                    automatic=True,
                ),
            )


@check(
    "peering.quota_near",
    Severity.MEDIUM,
    "Close to a peering or route quota",
    risk="The next peering or route will be refused, usually during an incident or a launch.",
    fix="Request a quota increase (Service Quotas) or consolidate with a Transit Gateway.",
    resource_type="AWS::EC2::VPC",
    iam_actions=READ_NET,
)
def quota_near(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    meta = entry("peering.quota_near")
    counts: dict[str, int] = {}
    for pcx in snap.peerings.values():
        if pcx.status == ACTIVE:
            for side in {pcx.requester.vpc_id, pcx.accepter.vpc_id}:
                counts[side] = counts.get(side, 0) + 1
    for vpc_id, n in sorted(counts.items()):
        vpc = snap.vpcs.get(vpc_id)
        if vpc is None or vpc.owner_id != snap.account_id:
            continue
        if n >= ctx.peering_quota * ctx.quota_ratio:
            yield meta.finding(
                resource_id=vpc_id,
                account_id=vpc.owner_id,
                region=vpc.region,
                vpc_id=vpc_id,
                detail=f"{vpc_id} has {n} active peerings of a quota of {ctx.peering_quota}.",
                key="peerings",
            )
    for rt in snap.route_tables.values():
        n = len(rt.routes)
        vpc = snap.vpcs.get(rt.vpc_id)
        if vpc is not None and n >= ctx.route_quota * ctx.quota_ratio:
            yield meta.finding(
                resource_type="AWS::EC2::RouteTable",
                resource_id=rt.route_table_id,
                account_id=vpc.owner_id,
                region=vpc.region,
                vpc_id=rt.vpc_id,
                detail=f"{rt.route_table_id} has {n} routes of a quota of {ctx.route_quota}.",
                key="routes",
            )
