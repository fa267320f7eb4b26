"""The network as PeerGuard sees it: frozen, validated, free of I/O.

A `Snapshot` is what the readers in `peerguard.aws` build from EC2 describe calls (or
what tests build by hand); checks only ever read it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cached_property, lru_cache
from typing import NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
T = TypeVar("T")

IGNORE_TAG = "peerguard:ignore"
PEER_ROUTES_TAG = "peerguard:peer-routes"

# Peering states (EC2 VpcPeeringConnectionStateReasonCode).
ACTIVE = "active"
PENDING_ACCEPTANCE = "pending-acceptance"
LIVE_STATES = frozenset({"initiating-request", PENDING_ACCEPTANCE, "provisioning", ACTIVE})
DEAD_STATES = frozenset({"deleted", "deleting", "rejected", "expired", "failed"})


@lru_cache(maxsize=16384)
def net(cidr: str) -> IPNetwork:
    """Parse a CIDR block, tolerating host bits (AWS never returns them, users type them).

    Cached: checks compare the same few hundred blocks thousands of times, and parsing
    dominates their cost. Networks are immutable, so sharing them is safe.
    """
    return ipaddress.ip_network(cidr, strict=False)


class Span(NamedTuple):
    """A CIDR block as integers: comparing these is far cheaper than ipaddress's operators."""

    version: int
    first: int
    last: int
    prefixlen: int

    def within(self, outer: Span) -> bool:
        return (
            self.version == outer.version and outer.first <= self.first <= self.last <= outer.last
        )

    def overlaps(self, other: Span) -> bool:
        return (
            self.version == other.version and self.first <= other.last and other.first <= self.last
        )


@lru_cache(maxsize=16384)
def span(cidr: str) -> Span:
    n = net(cidr)
    return Span(n.version, int(n.network_address), int(n.broadcast_address), n.prefixlen)


def overlaps(a: str, b: str) -> bool:
    return span(a).overlaps(span(b))


def within(inner: str, outer: str) -> bool:
    return span(inner).within(span(outer))


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Vpc(_Frozen):
    vpc_id: str
    owner_id: str
    region: str
    cidr_blocks: tuple[str, ...] = ()
    ipv6_cidr_blocks: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)
    # None = not read (DescribeVpcAttribute is one call per VPC, read only where it matters).
    dns_hostnames: bool | None = None

    @property
    def all_cidrs(self) -> tuple[str, ...]:
        return self.cidr_blocks + self.ipv6_cidr_blocks

    @property
    def ignored(self) -> bool:
        return self.tags.get(IGNORE_TAG, "").lower() == "true"


class Subnet(_Frozen):
    subnet_id: str
    vpc_id: str
    cidr_block: str | None = None
    ipv6_cidr_blocks: tuple[str, ...] = ()
    availability_zone: str | None = None

    @property
    def all_cidrs(self) -> tuple[str, ...]:
        return ((self.cidr_block,) if self.cidr_block else ()) + self.ipv6_cidr_blocks


class Route(_Frozen):
    destination: str  # IPv4/IPv6 CIDR, or a prefix list id (pl-...)
    target: str  # the id the route points at: local, igw-, pcx-, tgw-, nat-, eni-, ...
    state: str = "active"  # AWS says "blackhole" for some dead targets (moto never does)
    origin: str = "CreateRoute"

    @property
    def is_cidr(self) -> bool:
        return not self.destination.startswith("pl-")

    @property
    def peering_id(self) -> str | None:
        return self.target if self.target.startswith("pcx-") else None

    @property
    def destination_kwarg(self) -> str:
        """The CreateRoute/DeleteRoute parameter naming this destination."""
        if not self.is_cidr:
            return "DestinationPrefixListId"
        return "DestinationIpv6CidrBlock" if ":" in self.destination else "DestinationCidrBlock"


class RouteTable(_Frozen):
    route_table_id: str
    vpc_id: str
    owner_id: str | None = None
    routes: tuple[Route, ...] = ()
    subnet_ids: tuple[str, ...] = ()  # explicit associations
    is_main: bool = False
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def ignored(self) -> bool:
        return self.tags.get(IGNORE_TAG, "").lower() == "true"

    def lookup(self, prefix: str) -> Route | None:
        """Longest-prefix match for a whole prefix: the most specific CIDR route containing it."""
        best: Route | None = None
        best_len = -1
        for r in self.routes:
            if r.is_cidr:
                d = span(r.destination)
                if d.prefixlen > best_len and span(prefix).within(d):
                    best, best_len = r, d.prefixlen
        return best

    def more_specific_than(self, prefix: str) -> Iterator[Route]:
        """Routes strictly inside `prefix`: they take part of its traffic elsewhere."""
        p = span(prefix)
        for r in self.routes:
            if r.is_cidr:
                d = span(r.destination)
                if d != p and d.within(p):
                    yield r

    def routes_whole(self, prefix: str, target: str) -> bool:
        """True when every address of `prefix` is routed to `target` by this table."""
        match = self.lookup(prefix)
        if match is None or match.target != target or match.state == "blackhole":
            return False
        return all(r.target == target for r in self.more_specific_than(prefix))


class PeeringSide(_Frozen):
    owner_id: str
    vpc_id: str
    region: str
    cidr_blocks: tuple[str, ...] = ()
    ipv6_cidr_blocks: tuple[str, ...] = ()
    # PeeringOptions.AllowDnsResolutionFromRemoteVpc; None when AWS did not say.
    allow_dns_from_remote: bool | None = None

    @property
    def all_cidrs(self) -> tuple[str, ...]:
        return self.cidr_blocks + self.ipv6_cidr_blocks


class PeeringConnection(_Frozen):
    pcx_id: str
    status: str
    status_message: str = ""
    requester: PeeringSide
    accepter: PeeringSide
    expiration_time: datetime | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @property
    def sides(self) -> tuple[PeeringSide, PeeringSide]:
        return (self.requester, self.accepter)

    def other(self, vpc_id: str) -> PeeringSide:
        return self.accepter if self.requester.vpc_id == vpc_id else self.requester

    def side_of(self, vpc_id: str) -> PeeringSide | None:
        return next((s for s in self.sides if s.vpc_id == vpc_id), None)

    @property
    def ignored(self) -> bool:
        return self.tags.get(IGNORE_TAG, "").lower() == "true"


# -- security groups, network ACLs, flow logs ----------------------------------------------

ALL_PROTOCOLS = -1
TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
PORTED = (TCP, UDP)  # the protocols whose rules and entries carry port ranges
ALL_PORTS = (0, 65535)
_PROTOCOL_NUMBERS = {"-1": -1, "all": -1, "tcp": TCP, "udp": UDP, "icmp": ICMP, "icmpv6": ICMPV6}
_PROTOCOL_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp", ICMPV6: "icmpv6"}


@lru_cache(maxsize=512)
def protocol_number(value: str) -> int:
    """ "-1"/"tcp"/"6"/"icmpv6"/"50" -> the IP protocol number (-1: every protocol).

    Security groups say "tcp", network ACLs say "6"; both come here. An unknown name is -2,
    which matches no entry that names a protocol and is never "all"."""
    v = str(value).strip().lower()
    if v in _PROTOCOL_NUMBERS:
        return _PROTOCOL_NUMBERS[v]
    return int(v) if v.lstrip("-").isdigit() else -2


def protocol_name(number: int) -> str:
    if number == ALL_PROTOCOLS:
        return "all traffic"
    return _PROTOCOL_NAMES.get(number, f"protocol {number}")


def port_text(ports: tuple[int, int]) -> str:
    lo, hi = ports
    if (lo, hi) == ALL_PORTS:
        return "every port"
    return f"port {lo}" if lo == hi else f"ports {lo}-{hi}"


def is_world(cidr: str | None) -> bool:
    """0.0.0.0/0 or ::/0 (any spelling a /0 can take)."""
    return cidr is not None and span(cidr).prefixlen == 0


class SecurityGroupRule(_Frozen):
    """One rule with one source or destination, as DescribeSecurityGroupRules returns it.

    `rule_id` is None when the rule was read from DescribeSecurityGroups alone (its
    IpPermissions carry no rule ids): such a rule can be reported, not revoked by id.
    """

    group_id: str
    rule_id: str | None = None
    egress: bool = False
    protocol: str = "-1"  # as AWS spells it: -1, tcp, udp, icmp, icmpv6 or a number
    from_port: int | None = None
    to_port: int | None = None
    cidr: str | None = None  # CidrIpv4 or CidrIpv6
    prefix_list_id: str | None = None
    referenced_group_id: str | None = None
    referenced_owner_id: str | None = None
    referenced_vpc_id: str | None = None
    referenced_peering_id: str | None = None
    referenced_peering_status: str | None = None
    description: str = ""

    @property
    def proto(self) -> int:
        return protocol_number(self.protocol)

    @property
    def all_traffic(self) -> bool:
        return self.proto == ALL_PROTOCOLS

    @property
    def ports(self) -> tuple[int, int] | None:
        """The port range of a tcp/udp rule (every port for all traffic); None otherwise."""
        if self.all_traffic:
            return ALL_PORTS
        if self.proto not in PORTED:
            return None
        lo = 0 if self.from_port is None or self.from_port < 0 else self.from_port
        hi = 65535 if self.to_port is None or self.to_port < 0 else self.to_port
        return lo, hi

    def allows(self, proto: int, port: int | None) -> bool:
        """Does this rule let `proto` traffic to `port` through (sources aside)?"""
        if self.all_traffic:
            return True
        if proto != self.proto:
            return False
        ports = self.ports
        return ports is None or port is None or ports[0] <= port <= ports[1]

    @property
    def source(self) -> str:
        """The source (ingress) or destination (egress) as people read it."""
        if self.cidr:
            return self.cidr
        if self.prefix_list_id:
            return self.prefix_list_id
        if self.referenced_group_id:
            owner = f" of account {self.referenced_owner_id}" if self.referenced_owner_id else ""
            return f"security group {self.referenced_group_id}{owner}"
        return "nothing"

    @property
    def what(self) -> str:
        """What the rule allows: 'all traffic', 'tcp port 22', 'udp every port', 'icmp'."""
        ports = self.ports
        if self.all_traffic:
            return "all traffic"
        if ports is None:
            return protocol_name(self.proto)
        return f"{protocol_name(self.proto)} {port_text(ports)}"

    @property
    def name(self) -> str:
        """The rule's id, or what it is when it has none."""
        if self.rule_id:
            return self.rule_id
        direction, way = ("egress", "to") if self.egress else ("ingress", "from")
        return f"({direction} {self.what} {way} {self.source})"

    def key(self) -> str:
        """A stable identity: the rule id, or its content when it has none."""
        if self.rule_id:
            return self.rule_id
        return "|".join(
            str(x)
            for x in (self.egress, self.proto, self.ports, self.cidr, self.prefix_list_id,
                      self.referenced_group_id)
        )  # fmt: skip


class SecurityGroup(_Frozen):
    group_id: str
    vpc_id: str
    owner_id: str
    region: str
    name: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    rules: tuple[SecurityGroupRule, ...] = ()

    @property
    def ignored(self) -> bool:
        return self.tags.get(IGNORE_TAG, "").lower() == "true"

    @property
    def ingress(self) -> list[SecurityGroupRule]:
        return [r for r in self.rules if not r.egress]

    def rule(self, rule_id: str) -> SecurityGroupRule | None:
        return next((r for r in self.rules if r.rule_id == rule_id), None)

    @property
    def label(self) -> str:
        return f"{self.group_id} ({self.name})" if self.name else self.group_id


class StaleReference(_Frozen):
    """A rule DescribeStaleSecurityGroups reports stale: it references a group across a
    peering that is gone, or a peer group that is gone."""

    group_id: str
    vpc_id: str
    egress: bool
    referenced_group_id: str
    referenced_owner_id: str | None = None
    referenced_vpc_id: str | None = None
    peering_id: str | None = None
    peering_status: str | None = None
    protocol: str = "-1"
    from_port: int | None = None
    to_port: int | None = None

    def describes(self, rule: SecurityGroupRule) -> bool:
        """Is `rule` the rule this stale permission stands for?"""
        if (rule.group_id, rule.egress, rule.referenced_group_id) != (
            self.group_id,
            self.egress,
            self.referenced_group_id,
        ):
            return False
        same = SecurityGroupRule(
            group_id=self.group_id,
            protocol=self.protocol,
            from_port=self.from_port,
            to_port=self.to_port,
        )
        return (same.proto, same.ports) == (rule.proto, rule.ports)


class NetworkAclEntry(_Frozen):
    rule_number: int
    egress: bool
    action: str  # allow | deny
    cidr: str  # CidrBlock or Ipv6CidrBlock
    protocol: str = "-1"  # as AWS spells it for ACLs: -1, 6, 17, 1, 58, ...
    from_port: int | None = None
    to_port: int | None = None

    @property
    def proto(self) -> int:
        return protocol_number(self.protocol)

    @property
    def allow(self) -> bool:
        return self.action.lower() == "allow"

    @property
    def ports(self) -> tuple[int, int]:
        """The destination ports it matches (every port when it names none)."""
        if self.proto not in PORTED or self.from_port is None or self.to_port is None:
            return ALL_PORTS
        return self.from_port, self.to_port

    def matches(self, version: int, address: int, proto: int, port: int | None) -> bool:
        s = span(self.cidr)
        if s.version != version or not s.first <= address <= s.last:
            return False
        if self.proto != ALL_PROTOCOLS and self.proto != proto:
            return False
        if self.proto in PORTED and port is not None:
            lo, hi = self.ports
            return lo <= port <= hi
        return True

    @property
    def text(self) -> str:
        what = protocol_name(self.proto)
        if self.proto in PORTED:
            what += f" {port_text(self.ports)}"
        return f"rule {self.rule_number} ({self.action} {what} {self.cidr})"


class NetworkAcl(_Frozen):
    acl_id: str
    vpc_id: str
    owner_id: str = ""
    is_default: bool = False
    entries: tuple[NetworkAclEntry, ...] = ()
    subnet_ids: tuple[str, ...] = ()  # associations
    tags: dict[str, str] = Field(default_factory=dict)

    def direction(self, egress: bool) -> list[NetworkAclEntry]:
        """The entries of one direction in evaluation order: lowest rule number first."""
        return sorted((e for e in self.entries if e.egress == egress), key=lambda e: e.rule_number)


FLOW_LOG_ACTIVE = "ACTIVE"


class FlowLog(_Frozen):
    flow_log_id: str
    resource_id: str  # vpc-, subnet- or eni-
    traffic_type: str = "ALL"  # ALL | ACCEPT | REJECT
    status: str = FLOW_LOG_ACTIVE  # FlowLogStatus
    deliver_status: str = "SUCCESS"  # DeliverLogsStatus
    deliver_error: str = ""
    destination_type: str = "cloud-watch-logs"
    destination: str = ""  # the log group name or the bucket / stream ARN

    @property
    def captures_all(self) -> bool:
        """Active, recording accepted and rejected traffic, and delivering it."""
        return (
            self.traffic_type.upper() == "ALL"
            and self.status.upper() == FLOW_LOG_ACTIVE
            and self.deliver_status.upper() != "FAILED"
        )

    @property
    def shortfall(self) -> str:
        """Why it does not count ('' when it does)."""
        if self.status.upper() != FLOW_LOG_ACTIVE:
            return f"{self.flow_log_id} is {self.status}"
        if self.traffic_type.upper() != "ALL":
            return f"{self.flow_log_id} records {self.traffic_type} traffic only"
        if self.deliver_status.upper() == "FAILED":
            why = f": {self.deliver_error}" if self.deliver_error else ""
            return f"{self.flow_log_id} delivers nothing (DeliverLogsStatus FAILED{why})"
        return ""


class NetworkInterface(_Frozen):
    """An ENI, read only for path queries: where an address or instance sits, and the
    security groups that guard it."""

    eni_id: str
    subnet_id: str
    vpc_id: str
    region: str = ""
    owner_id: str = ""
    private_ips: tuple[str, ...] = ()  # the primary address first
    group_ids: tuple[str, ...] = ()
    instance_id: str | None = None
    device_index: int | None = None  # 0: the instance's primary interface

    @property
    def address(self) -> str | None:
        return self.private_ips[0] if self.private_ips else None


class ActivePeer(NamedTuple):
    """The other side of an active peering, as seen from one VPC."""

    pcx_id: str
    vpc_id: str
    owner_id: str
    region: str
    blocks: tuple[str, ...]


class Snapshot(_Frozen):
    """The network of one account across one or more regions, as read at `taken_at`; with
    a member role, also the far sides of its peerings in other accounts (their VPCs, and
    only those). `account_id` is the audited (home) account: the one PeerGuard may change.

    `readable` lists the (account, region) pairs that were read: anything outside it is
    unknown, not absent. `partial` names the (region, kind) pairs a describe call failed
    for, so checks do not mistake a missing permission for a missing route. Readers look
    up every peering a route points at, so a pcx id absent from `peerings` is gone.
    """

    account_id: str
    taken_at: datetime
    readable: frozenset[tuple[str, str]]
    vpcs: dict[str, Vpc] = Field(default_factory=dict)
    subnets: dict[str, Subnet] = Field(default_factory=dict)
    route_tables: dict[str, RouteTable] = Field(default_factory=dict)
    peerings: dict[str, PeeringConnection] = Field(default_factory=dict)
    # None = not read at all (a snapshot from route recordings): checks of that kind judge
    # nothing rather than call everything missing. Readers read them for every VPC they put
    # in `vpcs` (security groups: for the VPCs a change touched, and every group a rule of
    # theirs references), so a VPC in `vpcs` with no flow log has none.
    security_groups: dict[str, SecurityGroup] | None = None
    network_acls: dict[str, NetworkAcl] | None = None
    flow_logs: dict[str, FlowLog] | None = None
    # Read only for path queries (None: not read); the interfaces of the ends asked about.
    network_interfaces: dict[str, NetworkInterface] | None = None
    # Every group id read or looked up -> its VPC: a group of this account that a rule
    # references and that is absent here is gone.
    known_groups: dict[str, str] = Field(default_factory=dict)
    stale_references: tuple[StaleReference, ...] = ()
    partial: frozenset[tuple[str, str]] = frozenset()
    warnings: tuple[str, ...] = ()
    # Why a far side was not read, by "account/region" (or by account): the member role is
    # off, could not be assumed, or could not read; route.peer_side_unverified says it.
    unread: dict[str, str] = Field(default_factory=dict)

    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(cached_property,))

    def can_read(self, owner_id: str, region: str) -> bool:
        return (owner_id, region) in self.readable

    def unread_reason(self, owner_id: str, region: str) -> str:
        """Why the (account, region) was not read ('' when nobody said)."""
        return self.unread.get(f"{owner_id}/{region}") or self.unread.get(owner_id, "")

    def side_visible(self, side: PeeringSide) -> bool:
        """The side's VPC and its route tables were read and can be judged."""
        return (
            self.can_read(side.owner_id, side.region)
            and side.vpc_id in self.vpcs
            and (side.region, "route_tables") not in self.partial
        )

    def region_of(self, vpc_id: str) -> str | None:
        vpc = self.vpcs.get(vpc_id)
        return vpc.region if vpc else None

    @cached_property
    def _tables_by_vpc(self) -> dict[str, list[RouteTable]]:
        out: dict[str, list[RouteTable]] = {}
        for rt in self.route_tables.values():
            out.setdefault(rt.vpc_id, []).append(rt)
        return out

    @cached_property
    def _subnets_by_vpc(self) -> dict[str, list[Subnet]]:
        out: dict[str, list[Subnet]] = {}
        for s in self.subnets.values():
            out.setdefault(s.vpc_id, []).append(s)
        return out

    @cached_property
    def _table_of_subnet(self) -> dict[str, RouteTable]:
        out: dict[str, RouteTable] = {}
        for rt in self.route_tables.values():
            for sid in rt.subnet_ids:
                out[sid] = rt
        return out

    @cached_property
    def _main_table_of_vpc(self) -> dict[str, RouteTable]:
        out: dict[str, RouteTable] = {}
        for rt in self.route_tables.values():
            if rt.is_main:
                out.setdefault(rt.vpc_id, rt)
        return out

    @cached_property
    def _subnets_by_table(self) -> dict[str, list[tuple[RouteTable, list[Subnet]]]]:
        out: dict[str, dict[str, tuple[RouteTable, list[Subnet]]]] = {}
        for s in self.subnets.values():
            rt = self.effective_table(s)
            if rt is not None:
                groups = out.setdefault(s.vpc_id, {})
                groups.setdefault(rt.route_table_id, (rt, []))[1].append(s)
        return {vpc_id: list(groups.values()) for vpc_id, groups in out.items()}

    def tables_in(self, vpc_id: str) -> list[RouteTable]:
        return self._tables_by_vpc.get(vpc_id, [])

    def subnets_in(self, vpc_id: str) -> list[Subnet]:
        return self._subnets_by_vpc.get(vpc_id, [])

    def main_table(self, vpc_id: str) -> RouteTable | None:
        return self._main_table_of_vpc.get(vpc_id)

    def effective_table(self, subnet: Subnet) -> RouteTable | None:
        """The table a subnet uses: its explicit association, else the VPC's main table."""
        return self._table_of_subnet.get(subnet.subnet_id) or self.main_table(subnet.vpc_id)

    def subnets_using(self, rt: RouteTable) -> list[Subnet]:
        return [s for s in self.subnets_in(rt.vpc_id) if self.effective_table(s) is rt]

    def subnets_by_table(self, vpc_id: str) -> list[tuple[RouteTable, list[Subnet]]]:
        """The VPC's subnets grouped by the table they use (subnets with none left out).

        Routing decisions depend on the table, not the subnet: judge each table once.
        """
        return self._subnets_by_table.get(vpc_id, [])

    def peerings_of(self, vpc_id: str) -> Iterator[PeeringConnection]:
        for p in self.peerings.values():
            if vpc_id in (p.requester.vpc_id, p.accepter.vpc_id):
                yield p

    def peer_cidrs(self, pcx: PeeringConnection, vpc_id: str) -> tuple[str, ...]:
        """CIDR blocks of the VPC on the other side of `pcx` from `vpc_id`.

        The live VPC is preferred (it has every associated block); the peering's own
        CidrBlockSet is the fallback when the peer VPC was not read.
        """
        other = pcx.other(vpc_id)
        vpc = self.vpcs.get(other.vpc_id)
        return vpc.all_cidrs if vpc and vpc.all_cidrs else other.all_cidrs

    def vpc_cidrs(self, side: PeeringSide) -> tuple[str, ...]:
        vpc = self.vpcs.get(side.vpc_id)
        return vpc.all_cidrs if vpc and vpc.all_cidrs else side.all_cidrs

    # -- security groups, ACLs, flow logs ---------------------------------------------

    @cached_property
    def _active_peers(self) -> dict[str, list[ActivePeer]]:
        out: dict[str, list[ActivePeer]] = {}
        for pcx in sorted(self.peerings.values(), key=lambda p: p.pcx_id):
            if pcx.status != ACTIVE:
                continue
            for here, there in ((pcx.requester, pcx.accepter), (pcx.accepter, pcx.requester)):
                if here.vpc_id == there.vpc_id:
                    continue
                peer = ActivePeer(
                    pcx.pcx_id, there.vpc_id, there.owner_id, there.region, self.vpc_cidrs(there)
                )
                out.setdefault(here.vpc_id, []).append(peer)
        return out

    def active_peers(self, vpc_id: str) -> list[ActivePeer]:
        """The VPCs joined to `vpc_id` by an active peering (one entry per peering)."""
        return self._active_peers.get(vpc_id, [])

    def peerings_between(self, a: str, b: str) -> list[PeeringConnection]:
        return sorted(
            (p for p in self.peerings_of(a) if {p.requester.vpc_id, p.accepter.vpc_id} == {a, b}),
            key=lambda p: p.pcx_id,
        )

    def group_vpc(self, group_id: str) -> str | None:
        """The VPC of a group that was read or looked up (None: not seen)."""
        g = (self.security_groups or {}).get(group_id)
        return g.vpc_id if g else self.known_groups.get(group_id)

    @cached_property
    def _acl_of_subnet(self) -> dict[str, NetworkAcl]:
        out: dict[str, NetworkAcl] = {}
        for acl in (self.network_acls or {}).values():
            for sid in acl.subnet_ids:
                out[sid] = acl
        return out

    @cached_property
    def _default_acl_of_vpc(self) -> dict[str, NetworkAcl]:
        out: dict[str, NetworkAcl] = {}
        for acl in (self.network_acls or {}).values():
            if acl.is_default:
                out.setdefault(acl.vpc_id, acl)
        return out

    def acl_of(self, subnet: Subnet) -> NetworkAcl | None:
        """The network ACL a subnet uses: its association, else its VPC's default ACL."""
        return self._acl_of_subnet.get(subnet.subnet_id) or self._default_acl_of_vpc.get(
            subnet.vpc_id
        )

    @cached_property
    def _flow_logs_by_resource(self) -> dict[str, list[FlowLog]]:
        out: dict[str, list[FlowLog]] = {}
        for fl in sorted((self.flow_logs or {}).values(), key=lambda f: f.flow_log_id):
            out.setdefault(fl.resource_id, []).append(fl)
        return out

    def flow_logs_on(self, resource_id: str) -> list[FlowLog]:
        return self._flow_logs_by_resource.get(resource_id, [])

    def merged(self, other: Snapshot) -> Snapshot:
        """Union of two snapshots (another region or another account's view)."""

        def union(a: dict[str, T] | None, b: dict[str, T] | None) -> dict[str, T] | None:
            return None if a is None and b is None else {**(a or {}), **(b or {})}

        return Snapshot(
            account_id=self.account_id,
            taken_at=min(self.taken_at, other.taken_at),
            readable=self.readable | other.readable,
            vpcs={**self.vpcs, **other.vpcs},
            subnets={**self.subnets, **other.subnets},
            route_tables={**self.route_tables, **other.route_tables},
            peerings={**other.peerings, **self.peerings},
            security_groups=union(self.security_groups, other.security_groups),
            network_acls=union(self.network_acls, other.network_acls),
            flow_logs=union(self.flow_logs, other.flow_logs),
            network_interfaces=union(self.network_interfaces, other.network_interfaces),
            known_groups={**self.known_groups, **other.known_groups},
            stale_references=self.stale_references + other.stale_references,
            partial=self.partial | other.partial,
            warnings=self.warnings + other.warnings,
            unread={**other.unread, **self.unread},
        )


def cidr_family_pairs(a: Iterable[str], b: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Every (x, y) of the two lists that are of the same IP version and overlap."""
    bl = list(b)
    for x in a:
        for y in bl:
            if overlaps(x, y):
                yield x, y
