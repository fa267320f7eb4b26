"""Checks on the security groups of peered VPCs: what a peer, or the whole internet, may reach.

Only groups of VPCs with an active peering are judged (peering is what makes a broad rule
reach another VPC), except for stale references, which exist precisely because a peering
went away. Each finding names the group (`resource_id`), the rule (`rule_id`, in the detail
and in the proposed call) and, where there is one, the peering concerned.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from peerguard.domain.catalogue import check, entry
from peerguard.domain.checks.context import ADMIN_PORTS, CheckContext
from peerguard.domain.findings import Finding, Remediation, Severity
from peerguard.domain.model import (
    ALL_PORTS,
    TCP,
    UDP,
    ActivePeer,
    SecurityGroup,
    SecurityGroupRule,
    Snapshot,
    StaleReference,
    is_world,
    span,
)
from peerguard.domain.paths import uncovered

SG = "AWS::EC2::SecurityGroup"
READ_SG = (
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeVpcs",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules",
)
# 3389 (RDP) listens on udp too; SSH and the databases are tcp only.
_ADMIN_PROTOCOLS = {22: (TCP,), 3389: (TCP, UDP)}
MAX_PEERS_NAMED = 3


# -- shared helpers -------------------------------------------------------------------------


def ip_permission(group: SecurityGroup, rule: SecurityGroupRule) -> dict[str, Any]:
    """The rule as one IpPermissions item: what Authorize/Revoke calls take (its undo)."""
    p: dict[str, Any] = {"IpProtocol": rule.protocol}
    if not rule.all_traffic:
        if rule.from_port is not None:
            p["FromPort"] = rule.from_port
        if rule.to_port is not None:
            p["ToPort"] = rule.to_port
    desc = {"Description": rule.description} if rule.description else {}
    if rule.cidr and ":" in rule.cidr:
        p["Ipv6Ranges"] = [{"CidrIpv6": rule.cidr, **desc}]
    elif rule.cidr:
        p["IpRanges"] = [{"CidrIp": rule.cidr, **desc}]
    elif rule.prefix_list_id:
        p["PrefixListIds"] = [{"PrefixListId": rule.prefix_list_id, **desc}]
    elif rule.referenced_group_id:
        pair: dict[str, Any] = {"GroupId": rule.referenced_group_id, **desc}
        if rule.referenced_owner_id and rule.referenced_owner_id != group.owner_id:
            pair["UserId"] = rule.referenced_owner_id
        p["UserIdGroupPairs"] = [pair]
    return p


def revoke(
    group: SecurityGroup, rule: SecurityGroupRule, *, automatic: bool, reason: str = ""
) -> Remediation:
    """The call that removes exactly this rule: by its id, or by its permission when the id
    was not read (then never automatically: a permission can match a re-added sibling)."""
    action = "RevokeSecurityGroupEgress" if rule.egress else "RevokeSecurityGroupIngress"
    if rule.rule_id is None:
        return Remediation(
            action=action,
            parameters={"GroupId": group.group_id, "IpPermissions": [ip_permission(group, rule)]},
            automatic=False,
            reason="the rule's id was not read (ec2:DescribeSecurityGroupRules): "
            "it is revoked by rule id only",
        )
    if rule.egress and automatic:
        automatic, reason = False, "PeerGuard revokes ingress rules only"
    return Remediation(
        action=action,
        parameters={"GroupId": group.group_id, "SecurityGroupRuleIds": [rule.rule_id]},
        automatic=automatic,
        reason="" if automatic else reason,
    )


CROSS_ACCOUNT_BY_HAND = "revoking a rule another account's group relies on is left to a person"
NARROW_BY_HAND = (
    "narrowing a rule the peers may rely on is left to a person: replace it with the "
    "sources and ports they need, then revoke this one"
)


def sg_finding(
    check_id: str,
    snap: Snapshot,
    group: SecurityGroup,
    rule: SecurityGroupRule,
    detail: str,
    *,
    peering_id: str | None = None,
    remediation: Remediation | None = None,
    extra: dict[str, Any] | None = None,
) -> Finding:
    return entry(check_id).finding(
        resource_id=group.group_id,
        account_id=group.owner_id or snap.account_id,
        region=group.region,
        vpc_id=group.vpc_id,
        peering_connection_id=peering_id,
        detail=detail,
        remediation=remediation,
        key=rule.key(),
        extra={"rule_id": rule.rule_id, **(extra or {})},
    )


def groups_of_peered_vpcs(snap: Snapshot) -> Iterator[tuple[SecurityGroup, list[ActivePeer]]]:
    """Every group read in full whose VPC has an active peering, with its peers."""
    for g in sorted((snap.security_groups or {}).values(), key=lambda g: g.group_id):
        if (g.region, "security_groups") in snap.partial:
            continue
        peers = snap.active_peers(g.vpc_id)
        if peers:
            yield g, peers


@dataclass
class _Hit:
    """One rule, and the peer blocks it covers."""

    rule: SecurityGroupRule
    covers: list[tuple[ActivePeer, str]] = field(default_factory=list)
    partners: set[str] = field(default_factory=set)

    def add(self, peer: ActivePeer, block: str) -> None:
        if (peer, block) not in self.covers:
            self.covers.append((peer, block))

    @property
    def first_pcx(self) -> str:
        return self.covers[0][0].pcx_id

    def extra(self) -> dict[str, Any]:
        return {
            "peer_vpc_ids": sorted({p.vpc_id for p, _ in self.covers}),
            "peering_connection_ids": sorted({p.pcx_id for p, _ in self.covers}),
        }

    def peers_text(self) -> str:
        named = [f"{p.vpc_id}'s block {b} (via {p.pcx_id})" for p, b in self.covers]
        more = len(named) - MAX_PEERS_NAMED
        text = ", ".join(named[:MAX_PEERS_NAMED])
        return f"{text} and {more} more" if more > 0 else text


def _covering(
    rules: Iterable[SecurityGroupRule], peers: list[ActivePeer]
) -> Iterator[tuple[ActivePeer, str, list[SecurityGroupRule]]]:
    """(peer, block, the rules whose source covers that whole block) for every peer block."""
    spans = [(r, span(r.cidr)) for r in rules if r.cidr]
    for peer in peers:
        for block in peer.blocks:
            b = span(block)
            yield peer, block, [r for r, s in spans if b.within(s)]


def own_blocks(snap: Snapshot, vpc_id: str) -> tuple[str, ...]:
    vpc = snap.vpcs.get(vpc_id)
    if vpc is not None and vpc.all_cidrs:
        return vpc.all_cidrs
    for p in snap.peerings_of(vpc_id):
        side = p.side_of(vpc_id)
        if side is not None and side.all_cidrs:
            return side.all_cidrs
    return ()


def _rule_text(rule: SecurityGroupRule) -> str:
    """'ingress rule sgr-1 allows tcp port 5432 from security group sg-2 of account ...'"""
    way, to = ("egress", "to") if rule.egress else ("ingress", "from")
    return f"{way} rule {rule.name} allows {rule.what} {to} {rule.source}"


# -- sg.peer_all_traffic --------------------------------------------------------------------


@check(
    "sg.peer_all_traffic",
    Severity.HIGH,
    "Security group lets a whole peer VPC in on every port",
    risk="Any host of the peer VPC, compromised or misconfigured, reaches every port of this "
    "group's members: the isolation separate VPCs were for is gone.",
    fix="Allow only the ports the peer needs, from the peer's subnets or security groups "
    "that need them, then revoke the broad rule.",
    resource_type=SG,
    iam_actions=READ_SG,
)
def peer_all_traffic(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    for g, peers in groups_of_peered_vpcs(snap):
        rules = [r for r in g.ingress if r.cidr and not is_world(r.cidr)]
        hits: dict[str, _Hit] = {}
        for peer, block, covering in _covering(rules, peers):
            every = [r for r in covering if r.all_traffic]
            tcp = [r for r in covering if r.proto == TCP and r.ports == ALL_PORTS]
            udp = [r for r in covering if r.proto == UDP and r.ports == ALL_PORTS]
            for r in every:
                hits.setdefault(r.key(), _Hit(r)).add(peer, block)
            if tcp and udp:  # every port of tcp and of udp, in two rules (or more)
                for r, partners in [(r, udp) for r in tcp] + [(r, tcp) for r in udp]:
                    hit = hits.setdefault(r.key(), _Hit(r))
                    hit.add(peer, block)
                    hit.partners |= {p.name for p in partners}
        for hit in sorted(hits.values(), key=lambda h: h.rule.key()):
            r = hit.rule
            with_partner = (
                f" (and {', '.join(sorted(hit.partners))} the other protocol's every port)"
                if hit.partners
                else ""
            )
            yield sg_finding(
                "sg.peer_all_traffic",
                snap,
                g,
                r,
                f"{g.label} in {g.vpc_id}: ingress rule {r.name} allows {r.what} from "
                f"{r.cidr}{with_partner}, which covers the whole of peer VPC "
                f"{hit.peers_text()}. Every host there reaches every port of this group's "
                "members.",
                peering_id=hit.first_pcx,
                remediation=revoke(g, r, automatic=False, reason=NARROW_BY_HAND),
                extra=hit.extra(),
            )


# -- sg.peer_supernet -------------------------------------------------------------------------


@check(
    "sg.peer_supernet",
    Severity.MEDIUM,
    "Security group admits a supernet of a peer VPC",
    risk="The rule admits the peer and every other network inside its range (other VPCs, "
    "transit gateway attachments, VPNs, future peers), none of which it was written for.",
    fix="Replace the supernet with the peer VPC's own CIDR blocks (or its security groups).",
    resource_type=SG,
    iam_actions=READ_SG,
)
def peer_supernet(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    for g, peers in groups_of_peered_vpcs(snap):
        rules = [r for r in g.ingress if r.cidr and not is_world(r.cidr)]
        if not rules:
            continue
        known = [span(c) for c in own_blocks(snap, g.vpc_id)]
        known += [span(b) for p in peers for b in p.blocks]
        hits: dict[str, _Hit] = {}
        for peer, block, covering in _covering(rules, peers):
            for r in covering:
                if span(r.cidr or "").prefixlen < span(block).prefixlen:
                    hits.setdefault(r.key(), _Hit(r)).add(peer, block)
        for hit in sorted(hits.values(), key=lambda h: h.rule.key()):
            r = hit.rule
            more = uncovered(span(r.cidr or ""), known)
            if more == 0:
                continue  # the range is exactly this VPC and its peers
            yield sg_finding(
                "sg.peer_supernet",
                snap,
                g,
                r,
                f"{g.label} in {g.vpc_id}: ingress rule {r.name} allows {r.what} from "
                f"{r.cidr}, which covers peer VPC {hit.peers_text()} and {more:,} more "
                f"addresses that belong neither to {g.vpc_id} nor to any VPC peered with it.",
                peering_id=hit.first_pcx,
                remediation=revoke(g, r, automatic=False, reason=NARROW_BY_HAND),
                extra=hit.extra(),
            )


# -- sg.open_to_world -----------------------------------------------------------------------


def world_exposure(rule: SecurityGroupRule, database_ports: Iterable[int]) -> str:
    """What an ingress rule from 0.0.0.0/0 or ::/0 exposes that matters ('' if nothing):
    'all traffic', 'the admin port 22', 'the admin port 3389 and the database port 5432'."""
    if rule.all_traffic:
        return "all traffic"
    ports = rule.ports
    if ports is None:
        return ""
    lo, hi = ports
    admin = [p for p in ADMIN_PORTS if lo <= p <= hi and rule.proto in _ADMIN_PROTOCOLS[p]]
    db = sorted({p for p in database_ports if lo <= p <= hi and rule.proto == TCP})
    parts = []
    for kind, found in (("admin", admin), ("database", db)):
        if found:
            plural = "s" if len(found) > 1 else ""
            parts.append(f"the {kind} port{plural} {', '.join(map(str, found))}")
    return " and ".join(parts)


@check(
    "sg.open_to_world",
    Severity.HIGH,
    "Security group of a peered VPC is open to the internet on all traffic or admin or "
    "database ports",
    risk="Anyone on the internet can try SSH, RDP or the database on this group's members, "
    "and from there reach every peered VPC.",
    fix="Revoke the rule; reach admin ports through Session Manager, a bastion or a VPN, "
    "and databases from the application's security group only.",
    resource_type=SG,
    iam_actions=READ_SG,
    automatic_fix="revokes exactly that rule (by its rule id), in fix mode",
)
def open_to_world(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    for g, peers in groups_of_peered_vpcs(snap):
        for r in g.ingress:
            if not is_world(r.cidr):
                continue
            exposed = world_exposure(r, ctx.database_ports)
            if not exposed:
                continue
            if r.all_traffic:
                what = "all traffic"
            elif r.ports is not None and r.ports[0] == r.ports[1]:
                what = f"{r.what} ({exposed.removeprefix('the ')})"
            else:
                what = f"{r.what}, including {exposed}"
            yield sg_finding(
                "sg.open_to_world",
                snap,
                g,
                r,
                f"{g.label} in {g.vpc_id} (peered with {len(peers)} VPC"
                f"{'s' if len(peers) > 1 else ''}): ingress rule {r.name} allows {what} "
                f"from {r.cidr}, the whole internet.",
                remediation=revoke(g, r, automatic=True),
                extra={"peering_connection_ids": sorted({p.pcx_id for p in peers})},
            )


# -- sg.stale_peer_reference ------------------------------------------------------------------


def _stale_index(snap: Snapshot) -> dict[tuple[str, bool, str], list[StaleReference]]:
    out: dict[tuple[str, bool, str], list[StaleReference]] = {}
    for s in snap.stale_references:
        out.setdefault((s.group_id, s.egress, s.referenced_group_id), []).append(s)
    return out


def stale_reason(
    snap: Snapshot,
    group: SecurityGroup,
    rule: SecurityGroupRule,
    reported: list[StaleReference],
) -> tuple[str, str | None] | None:
    """(why the reference is stale, the peering concerned), or None when it is live or
    cannot be told (a group of another account that the snapshot cannot see)."""
    ref = rule.referenced_group_id
    if ref is None:
        return None
    listed = next((s for s in reported if s.describes(rule)), None)
    ref_vpc = rule.referenced_vpc_id or snap.group_vpc(ref)
    if ref_vpc == group.vpc_id:
        return None  # a reference inside the VPC: not a peering matter
    if listed is not None:
        pcx = listed.peering_id or rule.referenced_peering_id
        if pcx and listed.peering_status == "active":
            why = f"the referenced group is gone from the peer VPC ({pcx} is still active)"
        elif pcx:
            why = f"peering {pcx} is {listed.peering_status or 'gone'}"
        else:
            why = "its peering or the referenced group is gone"
        return f"EC2 reports the reference stale: {why}", pcx
    if ref_vpc is None:
        owner = rule.referenced_owner_id or group.owner_id
        if owner != snap.account_id or (group.region, "security_groups") in snap.partial:
            return None  # another account's group: EC2's stale list is the only witness
        return f"{ref} no longer exists", rule.referenced_peering_id
    if (group.region, "peerings") in snap.partial:
        return None
    between = snap.peerings_between(group.vpc_id, ref_vpc)
    if any(p.status == "active" for p in between):
        return None
    if between:
        dead = ", ".join(f"{p.pcx_id} is {p.status}" for p in between)
        return (
            f"no active peering joins {group.vpc_id} and {ref_vpc} any more ({dead})",
            between[-1].pcx_id,
        )
    return (
        f"no peering joins {group.vpc_id} and {ref_vpc} (the group is in {ref_vpc})",
        rule.referenced_peering_id,
    )


@check(
    "sg.stale_peer_reference",
    Severity.LOW,
    "Security group rule references a group across a peering that is gone",
    risk="The rule no longer matches anything, but it reads as access that exists; if a "
    "new peering to the same VPC appears, it silently comes back to life.",
    fix="Revoke the stale rule (and re-create it against a live peering if it is needed).",
    resource_type=SG,
    iam_actions=(*READ_SG, "ec2:DescribeStaleSecurityGroups"),
    automatic_fix="revokes exactly that ingress rule (by its rule id), in fix mode",
)
def stale_peer_reference(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    index = _stale_index(snap)
    for g in sorted((snap.security_groups or {}).values(), key=lambda g: g.group_id):
        if g.owner_id != snap.account_id:
            continue
        for r in g.rules:
            if r.referenced_group_id is None:
                continue
            reported = index.get((g.group_id, r.egress, r.referenced_group_id), [])
            verdict = stale_reason(snap, g, r, reported)
            if verdict is None:
                continue
            why, pcx = verdict
            yield sg_finding(
                "sg.stale_peer_reference",
                snap,
                g,
                r,
                f"{g.label} in {g.vpc_id}: {_rule_text(r)}, but {why}: the rule matches nothing.",
                peering_id=pcx,
                remediation=revoke(g, r, automatic=True),
                extra={"referenced_group_id": r.referenced_group_id},
            )


# -- sg.unallowlisted_reference ---------------------------------------------------------------


@check(
    "sg.unallowlisted_reference",
    Severity.MEDIUM,
    "Security group rule references a group of an account not on the allowlist",
    risk="Members of another account's group, which nobody approved, are let in (or out) "
    "across the peering; that account decides who joins its group.",
    fix="Revoke the rule, or add the account to the allowlist if it is trusted.",
    resource_type=SG,
    iam_actions=READ_SG,
    needs_allowlist=True,
)
def unallowlisted_reference(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    if ctx.allowlist.entries is None:
        return
    for g, peers in groups_of_peered_vpcs(snap):
        if g.owner_id != snap.account_id:
            continue  # the allowlist is this account's: a far side's groups answer to theirs
        for r in g.rules:
            owner = r.referenced_owner_id
            if r.referenced_group_id is None or owner in (None, snap.account_id, g.owner_id):
                continue
            ref_vpc = r.referenced_vpc_id or next(
                (p.vpc_id for p in peers if p.owner_id == owner), ""
            )
            if ctx.allowlist.allows(owner, g.region, ref_vpc):
                continue
            pcx = r.referenced_peering_id or next(
                (p.pcx_id for p in peers if p.vpc_id == ref_vpc), None
            )
            yield sg_finding(
                "sg.unallowlisted_reference",
                snap,
                g,
                r,
                f"{g.label} in {g.vpc_id}: {_rule_text(r)}, and account {owner} is not on "
                "the allowlist.",
                peering_id=pcx,
                remediation=revoke(g, r, automatic=False, reason=CROSS_ACCOUNT_BY_HAND),
                extra={"referenced_group_id": r.referenced_group_id, "referenced_owner_id": owner},
            )
