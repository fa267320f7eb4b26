"""Network ACLs on the path of a peering route.

A subnet s whose table sends a peer subnet t's range through the peering needs four ACL
legs to let a connection from s to t work, because ACLs are stateless: s's ACL outbound
to t, t's ACL inbound from s, and for the replies t's ACL outbound to s and s's ACL inbound
from t. Each leg is evaluated as AWS does (`peerguard.domain.paths`). A leg that denies
all traffic for some of the other subnet's addresses blocks those connections outright.
And when s can open tcp connections to t (s's ACL lets some port out by a rule that is
not a reply rule, tcp N-65535 with N >= 1024, and t's ACL lets it in), the replies travel
to s's ephemeral ports (tcp 1024-65535): a reply leg that denies the ports clients
actually use (any of 32768-65535, `paths.CLIENT_PORTS`) drops them. A deny of a few lower
ports (an inbound deny of 3389 from anywhere) is not reported: no common client replies
there. Reply rules are not requests: the usual tight pair (in: tcp 5432 from the app; out:
tcp 1024-65535 to it) does not make the database a client of the app.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from peerguard.domain.catalogue import check, entry
from peerguard.domain.checks.context import CheckContext
from peerguard.domain.checks.routes import carrying_routes
from peerguard.domain.findings import Finding, Severity
from peerguard.domain.model import (
    ACTIVE,
    ALL_PORTS,
    TCP,
    NetworkAcl,
    NetworkAclEntry,
    PeeringConnection,
    PeeringSide,
    Snapshot,
    Subnet,
    net,
    span,
)
from peerguard.domain.paths import (
    CLIENT_PORTS,
    EPHEMERAL,
    Blocked,
    allowed_ports,
    blocked,
    denied_ports,
    every_protocol,
    intersect,
)

ACL = "AWS::EC2::NetworkAcl"
READ_ACLS = (
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeNetworkAcls",
)


@dataclass
class _Block:
    """One ACL leg that blocks traffic of one peering, over every subnet pair it affects."""

    acl: NetworkAcl
    pcx: PeeringConnection
    egress: bool
    replies: bool  # only the replies (the ephemeral range) are denied
    local: set[str] = field(default_factory=set)  # this ACL's subnets on the path
    remote: dict[str, str] = field(default_factory=dict)  # blocked range -> the peer subnet
    rules: set[int | None] = field(default_factory=set)
    ports: set[str] = field(default_factory=set)  # the reply ports denied


def _legs_of(
    snap: Snapshot,
    pcx: PeeringConnection,
    src: PeeringSide,
    dst: PeeringSide,
) -> Iterator[tuple[Subnet, str, NetworkAcl, Subnet, str, NetworkAcl]]:
    """(s, s range, s's ACL, t, t range, t's ACL) for each source subnet range whose table
    sends some of peer subnet t's range through `pcx` (same IP version)."""
    for rt, sources in snap.subnets_by_table(src.vpc_id):
        if not any(r.target == pcx.pcx_id for r in rt.routes):
            continue
        for t in snap.subnets_in(dst.vpc_id):
            t_acl = snap.acl_of(t)
            if t_acl is None:
                continue
            for t_cidr in t.all_cidrs:
                if not carrying_routes(rt, t_cidr, pcx.pcx_id):
                    continue
                for s in sources:
                    s_acl = snap.acl_of(s)
                    if s_acl is None:
                        continue
                    for s_cidr in s.all_cidrs:
                        if net(s_cidr).version == net(t_cidr).version:
                            yield s, s_cidr, s_acl, t, t_cidr, t_acl


def _rules_text(acl: NetworkAcl, rules: set[int | None]) -> str:
    named = sorted(n for n in rules if n is not None)
    entries: dict[int, NetworkAclEntry] = {e.rule_number: e for e in acl.entries}
    parts = [entries[n].text for n in named if n in entries]
    if None in rules:
        parts.append("no rule allowing it, so the * rule denies it")
    return "; ".join(parts)


@check(
    "nacl.blocks_peer",
    Severity.MEDIUM,
    "Network ACL blocks traffic that a peering route sends",
    risk="The route sends traffic through the peering, but the subnet's or the peer "
    "subnet's network ACL drops it, or drops the replies (ACLs are stateless): "
    "connections time out, whatever the security groups allow.",
    fix="Allow the peer's range in the ACL in both directions (and tcp 1024-65535 for "
    "replies), above any deny that matches it; or remove the route if the traffic is "
    "unwanted.",
    resource_type=ACL,
    iam_actions=READ_ACLS,
)
def blocks_peer(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    if snap.network_acls is None:
        return
    found: dict[tuple[str, str, bool, bool], _Block] = {}
    # Subnets share ACLs and ranges: every leg is evaluated once.
    cache: dict[tuple[str, bool, str, str], list[Blocked]] = {}
    ports: dict[tuple[str, bool, str], list[tuple[int, int]]] = {}
    entries: dict[tuple[str, bool], list[NetworkAclEntry]] = {}

    def ordered(acl: NetworkAcl, egress: bool) -> list[NetworkAclEntry]:
        key = (acl.acl_id, egress)
        if key not in entries:
            entries[key] = acl.direction(egress)
        return entries[key]

    def leg(acl: NetworkAcl, egress: bool, rng: str, kind: str) -> list[Blocked]:
        key = (acl.acl_id, egress, rng, kind)
        if key not in cache:
            these = ordered(acl, egress)
            if kind == "all":
                cache[key] = blocked(these, span(rng), every_protocol(these))
            else:
                gaps = denied_ports(these, span(rng), TCP, EPHEMERAL)
                cache[key] = [g for g in gaps if intersect(g.ports, [CLIENT_PORTS])]
        return cache[key]

    def tcp_through(acl: NetworkAcl, egress: bool, rng: str) -> list[tuple[int, int]]:
        """The tcp ports a request may use on this leg (out: not by a reply rule)."""
        key = (acl.acl_id, egress, rng)
        if key not in ports:
            these = ordered(acl, egress)
            ports[key] = allowed_ports(these, span(rng), TCP, ALL_PORTS, requests_only=egress)
        return ports[key]

    def note(
        acl: NetworkAcl,
        pcx: PeeringConnection,
        egress: bool,
        replies: bool,
        local: Subnet,
        remote: Subnet,
        parts: list[Blocked],
    ) -> None:
        b = found.setdefault(
            (acl.acl_id, pcx.pcx_id, egress, replies), _Block(acl, pcx, egress, replies)
        )
        b.local.add(local.subnet_id)
        for part in parts:
            b.remote[part.text] = remote.subnet_id
            b.rules |= part.by
            if part.ports:
                b.ports.add(part.ports_text)

    for pcx in snap.peerings.values():
        if pcx.status != ACTIVE:
            continue
        if not (snap.side_visible(pcx.requester) and snap.side_visible(pcx.accepter)):
            continue
        if any((side.region, "network_acls") in snap.partial for side in pcx.sides):
            continue
        for src, dst in ((pcx.requester, pcx.accepter), (pcx.accepter, pcx.requester)):
            for s, s_cidr, s_acl, t, t_cidr, t_acl in _legs_of(snap, pcx, src, dst):
                # (acl, outbound?, the other end's range, the subnets on each end)
                legs = (
                    (s_acl, True, t_cidr, s, t),  # the request leaves s
                    (t_acl, False, s_cidr, t, s),  # and enters t
                    (t_acl, True, s_cidr, t, s),  # the reply leaves t
                    (s_acl, False, t_cidr, s, t),  # and enters s
                )
                for acl, egress, rng, here, there in legs:
                    parts = leg(acl, egress, rng, "all")
                    if parts:
                        note(acl, pcx, egress, False, here, there, parts)
                # Replies to s's tcp requests go to its ephemeral ports.
                if not intersect(
                    tcp_through(s_acl, True, t_cidr), tcp_through(t_acl, False, s_cidr)
                ):
                    continue
                for acl, egress, rng, here, there in legs[2:]:
                    if leg(acl, egress, rng, "all"):
                        continue  # already reported as blocking everything
                    parts = leg(acl, egress, rng, "ephemeral")
                    if parts:
                        note(acl, pcx, egress, True, here, there, parts)

    for _, b in sorted(found.items()):
        yield _finding(snap, b)


def _finding(snap: Snapshot, b: _Block) -> Finding:
    way, to = ("outbound", "to") if b.egress else ("inbound", "from")
    remote = ", ".join(f"{rng} ({sid})" for rng, sid in sorted(b.remote.items()))
    side = b.pcx.side_of(b.acl.vpc_id)
    vpc = snap.vpcs.get(b.acl.vpc_id)
    where = f"{b.acl.acl_id} (on {', '.join(sorted(b.local))} in {b.acl.vpc_id})"
    why = _rules_text(b.acl, b.rules)
    if b.replies:
        # Outbound: this side answers connections the peer opens; inbound: this side opens
        # them and the answers come back in.
        opener, server = (remote, "these subnets") if b.egress else ("these subnets", remote)
        detail = (
            f"{where} denies {way} tcp {'; '.join(sorted(b.ports))} {to} {remote} ({why}). "
            f"Tcp connections that {opener} open{'s' if opener != 'these subnets' else ''} "
            f"to {server} through {b.pcx.pcx_id} get through both ACLs, but their replies go "
            "to those ports (clients use 32768-65535; AWS advises allowing 1024-65535) and "
            "are dropped."
        )
    else:
        detail = (
            f"{where} denies all {way} traffic {to} {remote}, which {b.pcx.pcx_id} routes "
            f"between the subnets ({why}): no connection through the peering works for "
            "those addresses."
        )
    return entry("nacl.blocks_peer").finding(
        resource_id=b.acl.acl_id,
        account_id=b.acl.owner_id or (side.owner_id if side else snap.account_id),
        region=vpc.region if vpc else (side.region if side else ""),
        vpc_id=b.acl.vpc_id,
        peering_connection_id=b.pcx.pcx_id,
        detail=detail,
        key=f"{b.pcx.pcx_id}|{'out' if b.egress else 'in'}|{'replies' if b.replies else 'all'}",
        extra={
            "direction": "outbound" if b.egress else "inbound",
            "blocked": "replies" if b.replies else "all",
            "peer_ranges": sorted(b.remote),
        },
    )
