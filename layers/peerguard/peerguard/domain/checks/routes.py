"""Checks on the routes that use peering connections."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from peerguard.domain.catalogue import check, entry
from peerguard.domain.checks.context import CheckContext
from peerguard.domain.checks.peering import describe, pcx_finding
from peerguard.domain.findings import Finding, Remediation, Severity
from peerguard.domain.model import (
    ACTIVE,
    DEAD_STATES,
    PeeringConnection,
    PeeringSide,
    Route,
    RouteTable,
    Snapshot,
    Subnet,
    net,
    overlaps,
    within,
)

RTB = "AWS::EC2::RouteTable"
READ_ROUTES = (
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
)


def route_finding(
    check_id: str,
    snap: Snapshot,
    rt: RouteTable,
    pcx_id: str | None,
    detail: str,
    *,
    key: str,
    remediation: Remediation | None = None,
) -> Finding:
    vpc = snap.vpcs.get(rt.vpc_id)
    return entry(check_id).finding(
        resource_id=rt.route_table_id,
        account_id=table_owner(snap, rt),
        region=vpc.region if vpc else "",
        vpc_id=rt.vpc_id,
        peering_connection_id=pcx_id,
        detail=detail,
        remediation=remediation,
        key=key,
    )


def table_owner(snap: Snapshot, rt: RouteTable) -> str:
    """The account a route table belongs to."""
    vpc = snap.vpcs.get(rt.vpc_id)
    return rt.owner_id or (vpc.owner_id if vpc else snap.account_id)


def own_visible_tables(snap: Snapshot) -> Iterator[RouteTable]:
    for rt in snap.route_tables.values():
        vpc = snap.vpcs.get(rt.vpc_id)
        if vpc is not None and (vpc.region, "route_tables") not in snap.partial:
            yield rt


def carrying_routes(rt: RouteTable, prefix: str, pcx_id: str) -> list[Route]:
    """The routes of `rt` that send some of the traffic to `prefix` through `pcx_id`."""
    out = [r for r in rt.more_specific_than(prefix) if r.target == pcx_id]
    match = rt.lookup(prefix)
    if match is not None and match.target == pcx_id and match.state != "blackhole":
        out.append(match)
    return out


def block_containing(cidrs: tuple[str, ...], prefix: str) -> str:
    """The VPC CIDR block holding `prefix` (the natural return-route destination)."""
    return next((c for c in cidrs if within(prefix, c)), prefix)


@dataclass
class _Gap:
    """One route table that should send `destination` back through one peering."""

    rt: RouteTable
    pcx: PeeringConnection
    destination: str
    vpc_wide: bool  # the forward route covers a whole block: the return is a whole block
    sources: set[str] = field(default_factory=set)  # subnets that get no replies
    peers: set[str] = field(default_factory=set)  # subnets (using rt) that they talk to
    found_instead: set[str] = field(default_factory=set)


# Default routes to these targets cannot carry traffic to a peer VPC's private range (no
# edge-to-edge routing), so a more specific mirror route next to them changes nothing else.
_INTERNET_TARGETS = ("igw-", "eigw-", "nat-")


def route_conflicts(route: Route, destination: str, pcx_id: str) -> bool:
    """Would adding `destination` via `pcx_id` change where this route's traffic goes?"""
    if not route.is_cidr or route.target == pcx_id or not overlaps(route.destination, destination):
        return False
    is_default = net(route.destination).prefixlen == 0
    return not (is_default and route.target.startswith(_INTERNET_TARGETS))


def _create_route(snap: Snapshot, rt: RouteTable, destination: str, pcx_id: str) -> Remediation:
    conflicts = [r for r in rt.routes if route_conflicts(r, destination, pcx_id)]
    kwarg = "DestinationIpv6CidrBlock" if ":" in destination else "DestinationCidrBlock"
    params = {
        "RouteTableId": rt.route_table_id,
        kwarg: destination,
        "VpcPeeringConnectionId": pcx_id,
    }
    owner = table_owner(snap, rt)
    if owner != snap.account_id:  # a far side read through the member role
        return Remediation(
            action="CreateRoute",
            parameters=params,
            automatic=False,
            reason=f"the table is in account {owner}: PeerGuard never changes another "
            "account (PeerGuard deployed there, or its owner, adds it)",
        )
    if conflicts:
        why = ", ".join(f"{r.destination} -> {r.target}" for r in conflicts)
        return Remediation(
            action="CreateRoute",
            parameters=params,
            automatic=False,
            reason=f"the table already routes overlapping destinations elsewhere ({why})",
        )
    return Remediation(action="CreateRoute", parameters=params, automatic=True)


@check(
    "route.missing_reciprocal",
    Severity.HIGH,
    "Peering route has no return route",
    risk="Requests leave through the peering but replies are dropped: connections time out.",
    fix="Add the mirror route via the same pcx to the table that lacks it: the peer VPC's "
    "CIDR block when the forward route covers a whole block, else only the peer subnet's range.",
    resource_type=RTB,
    iam_actions=READ_ROUTES,
    automatic_fix="adds the mirror route via the same pcx, in fix mode, where no other route "
    "conflicts",
)
def missing_reciprocal(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    gaps: dict[tuple[str, str, str], _Gap] = {}
    for pcx in snap.peerings.values():
        if pcx.status != ACTIVE:
            continue
        if not (snap.side_visible(pcx.requester) and snap.side_visible(pcx.accepter)):
            continue  # route.peer_side_unverified says so
        for src, dst in ((pcx.requester, pcx.accepter), (pcx.accepter, pcx.requester)):
            _collect_gaps(snap, pcx, src, dst, gaps)
    _merge_subsumed(gaps)
    for (_, _, destination), gap in sorted(gaps.items()):
        yield route_finding(
            "route.missing_reciprocal",
            snap,
            gap.rt,
            gap.pcx.pcx_id,
            _gap_detail(gap),
            key=f"{gap.pcx.pcx_id}|{destination}",
            remediation=_create_route(snap, gap.rt, destination, gap.pcx.pcx_id),
        )


def _gap_detail(gap: _Gap) -> str:
    src_vpc = gap.pcx.other(gap.rt.vpc_id).vpc_id
    pcx_id = gap.pcx.pcx_id
    if gap.vpc_wide:
        scope = (
            f"Their route covers a whole CIDR block of {gap.rt.vpc_id}, so the mirror route "
            f"is {src_vpc}'s block {gap.destination}."
        )
    else:
        scope = (
            f"Their route covers only part of {gap.rt.vpc_id}, so the mirror route is the "
            f"source subnet's own range {gap.destination}, not the whole of {src_vpc}."
        )
    instead = (
        f" Traffic to them goes to {', '.join(sorted(gap.found_instead))} instead."
        if gap.found_instead
        else ""
    )
    return (
        f"{gap.rt.route_table_id} (used by {', '.join(sorted(gap.peers))} in "
        f"{gap.rt.vpc_id}) has no return route to {gap.destination} via {pcx_id}, "
        f"but {', '.join(sorted(gap.sources))} of {src_vpc} route to those subnets "
        f"through {pcx_id}, so their replies are dropped.{instead} {scope}"
    )


def _collect_gaps(
    snap: Snapshot,
    pcx: PeeringConnection,
    src: PeeringSide,
    dst: PeeringSide,
    gaps: dict[tuple[str, str, str], _Gap],
) -> None:
    """The return routes owed for traffic that `src`'s subnets send through `pcx` to `dst`.

    Each (source subnet s, destination subnet t) pair that s's table sends through the
    peering needs t's table to route all of s back through it. The return destination
    mirrors the forward route's granularity, so a fix never widens reachability: the
    source VPC's block containing s when a forward route covers a whole block of the
    destination VPC, else s's own range. Routing depends on tables, not subnets, so
    subnets are taken table by table.
    """
    pcx_id = pcx.pcx_id
    src_blocks, dst_blocks = snap.vpc_cidrs(src), snap.vpc_cidrs(dst)
    dst_groups = snap.subnets_by_table(dst.vpc_id)
    returns: dict[tuple[str, str], bool] = {}  # (table, source range) -> routes it all back
    for rt_s, sources in snap.subnets_by_table(src.vpc_id):
        if not any(r.target == pcx_id for r in rt_s.routes):
            continue  # this table sends nothing through the peering
        for rt_t, peers in dst_groups:
            for t, t_cidr, vpc_wide in _reached(rt_s, peers, pcx_id, dst_blocks):
                for s, s_cidr in _ranges(sources, net(t_cidr).version):
                    key = (rt_t.route_table_id, s_cidr)
                    if key not in returns:
                        returns[key] = rt_t.routes_whole(s_cidr, pcx_id)
                    if returns[key]:
                        continue
                    dest = block_containing(src_blocks, s_cidr) if vpc_wide else s_cidr
                    gap = gaps.setdefault(
                        (rt_t.route_table_id, pcx_id, dest), _Gap(rt_t, pcx, dest, vpc_wide)
                    )
                    gap.vpc_wide |= vpc_wide
                    gap.sources.add(s.subnet_id)
                    gap.peers.add(t.subnet_id)
                    wrong = rt_t.lookup(s_cidr)
                    if wrong is not None and wrong.target not in (pcx_id, "local"):
                        gap.found_instead.add(wrong.target)


def _reached(
    rt: RouteTable, subnets: list[Subnet], pcx_id: str, blocks: tuple[str, ...]
) -> Iterator[tuple[Subnet, str, bool]]:
    """(subnet, range, whole block?) for each subnet range `rt` sends some traffic to through
    `pcx_id`; whole block = a route carrying it covers one of `blocks` entirely."""
    for t in subnets:
        for t_cidr in t.all_cidrs:
            forward = carrying_routes(rt, t_cidr, pcx_id)
            if forward:
                yield t, t_cidr, any(within(b, r.destination) for r in forward for b in blocks)


def _ranges(subnets: list[Subnet], version: int) -> Iterator[tuple[Subnet, str]]:
    """(subnet, range) for each range of the given IP version."""
    for s in subnets:
        for cidr in s.all_cidrs:
            if net(cidr).version == version:
                yield s, cidr


def _merge_subsumed(gaps: dict[tuple[str, str, str], _Gap]) -> None:
    """Fold a subnet-sized gap into a whole-block gap of the same table and peering that
    contains it: the block's route returns that subnet's replies as well."""
    blocks: dict[tuple[str, str], list[_Gap]] = {}
    for gap in gaps.values():
        if gap.vpc_wide:
            blocks.setdefault((gap.rt.route_table_id, gap.pcx.pcx_id), []).append(gap)
    for key, gap in list(gaps.items()):
        wider = [
            b
            for b in blocks.get((gap.rt.route_table_id, gap.pcx.pcx_id), [])
            if b is not gap and within(gap.destination, b.destination)
        ]
        if wider and not gap.vpc_wide:
            wider[0].sources |= gap.sources
            wider[0].peers |= gap.peers
            wider[0].found_instead |= gap.found_instead
            del gaps[key]


@check(
    "route.blackhole",
    Severity.MEDIUM,
    "Route through a peering that no longer exists",
    risk="Traffic to that range is silently dropped; a stale route also blocks a new one "
    "for the same range.",
    fix="Delete the route (and re-create it via a live peering if the range is still needed).",
    resource_type=RTB,
    iam_actions=READ_ROUTES,
    automatic_fix="deletes the dead route, in fix mode",
)
def blackhole(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    for rt in own_visible_tables(snap):
        for r in rt.routes:
            if r.peering_id is None:
                continue
            pcx = snap.peerings.get(r.target)
            region = snap.region_of(rt.vpc_id)
            if pcx is None and (region, "peerings") in snap.partial:
                continue  # could not look it up: unknown is not gone
            if pcx is not None and pcx.status not in DEAD_STATES and r.state != "blackhole":
                continue
            status = pcx.status if pcx else "unknown (not found)"
            yield route_finding(
                "route.blackhole",
                snap,
                rt,
                r.target,
                f"{rt.route_table_id} in {rt.vpc_id} routes {r.destination} to {r.target}, "
                f"whose status is {status}: that traffic is dropped.",
                key=r.destination,
                remediation=Remediation(
                    action="DeleteRoute",
                    parameters={
                        "RouteTableId": rt.route_table_id,
                        r.destination_kwarg: r.destination,
                    },
                    automatic=True,
                ),
            )


@check(
    "route.outside_peer_cidr",
    Severity.MEDIUM,
    "Peering route to a range the peer VPC does not own",
    risk="Peering is not transitive and has no edge-to-edge routing: traffic to a third "
    "VPC, the internet or on-premises through the peer is dropped.",
    fix="Route only the peer VPC's own CIDR blocks through the peering; reach other networks "
    "with their own peering, a Transit Gateway or PrivateLink.",
    resource_type=RTB,
    iam_actions=READ_ROUTES,
)
def outside_peer_cidr(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    for rt, r, pcx in _live_peering_routes(snap):
        if pcx.side_of(rt.vpc_id) is None:
            why = f"{pcx.pcx_id} does not connect {rt.vpc_id} at all"
        else:
            peer = snap.peer_cidrs(pcx, rt.vpc_id)
            if any(within(r.destination, c) for c in peer):
                continue
            why = (
                f"{r.destination} is not inside the peer VPC {pcx.other(rt.vpc_id).vpc_id}'s "
                f"CIDR blocks ({', '.join(peer) or 'unknown'}); peering is not transitive"
            )
        yield route_finding(
            "route.outside_peer_cidr",
            snap,
            rt,
            pcx.pcx_id,
            f"{rt.route_table_id} in {rt.vpc_id} routes {r.destination} via {pcx.pcx_id}, but "
            f"{why}, so that traffic is dropped.",
            key=r.destination,
        )


def _live_peering_routes(snap: Snapshot) -> Iterator[tuple[RouteTable, Route, PeeringConnection]]:
    for rt in own_visible_tables(snap):
        for r in rt.routes:
            pcx = snap.peerings.get(r.target) if r.peering_id else None
            if pcx is not None and pcx.status == ACTIVE and r.is_cidr:
                yield rt, r, pcx


@check(
    "route.shadowed",
    Severity.LOW,
    "A more specific route hides part of a peering route",
    risk="Part of the peer VPC is reached through another target, which is easy to miss "
    "when debugging.",
    fix="Check the more specific route is intended; remove it or narrow the peering route.",
    resource_type=RTB,
    iam_actions=READ_ROUTES,
)
def shadowed(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    for rt, r, pcx in _live_peering_routes(snap):
        if pcx.side_of(rt.vpc_id) is None:
            continue
        peer = snap.peer_cidrs(pcx, rt.vpc_id)
        hiding = [
            m
            for m in rt.more_specific_than(r.destination)
            if m.target != pcx.pcx_id and any(overlaps(m.destination, c) for c in peer)
        ]
        if hiding:
            desc = ", ".join(f"{m.destination} -> {m.target}" for m in hiding)
            yield route_finding(
                "route.shadowed",
                snap,
                rt,
                pcx.pcx_id,
                f"{rt.route_table_id} routes {r.destination} via {pcx.pcx_id}, but more "
                f"specific routes send part of it elsewhere: {desc}.",
                key=r.destination,
            )


@check(
    "route.peer_side_unverified",
    Severity.INFO,
    "Other side of the peering could not be read",
    risk="Return routes on the other side cannot be verified from this account.",
    fix="Deploy PeerGuard in the peer account/region, or audit with access to it.",
    resource_type="AWS::EC2::VPCPeeringConnection",
    iam_actions=("ec2:DescribeVpcPeeringConnections",),
)
def peer_side_unverified(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    for pcx in snap.peerings.values():
        if pcx.status != ACTIVE:
            continue
        ours = [s for s in pcx.sides if snap.side_visible(s)]
        hidden = [s for s in pcx.sides if not snap.side_visible(s)]
        if not ours or not hidden:
            continue
        other = hidden[0]
        why = snap.unread_reason(other.owner_id, other.region)
        yield pcx_finding(
            "route.peer_side_unverified",
            snap,
            pcx,
            ours[0],
            f"{describe(pcx)}: the side {other.vpc_id} in account {other.owner_id}, "
            f"region {other.region} was not read, so its return routes are unverified"
            + (f": {why}." if why else "."),
            extra={"reason": why} if why else None,
        )
