"""The network as PeerGuard sees it: frozen, validated, free of I/O.

A `Snapshot` is what the readers in `peerguard.aws` build from EC2 describe calls (or
what tests build by hand); checks only ever read it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from datetime import datetime
from functools import cached_property, lru_cache
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

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


class Snapshot(_Frozen):
    """The network of one account across one or more regions, as read at `taken_at`.

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
    partial: frozenset[tuple[str, str]] = frozenset()
    warnings: tuple[str, ...] = ()

    model_config = ConfigDict(frozen=True, extra="forbid", ignored_types=(cached_property,))

    def can_read(self, owner_id: str, region: str) -> bool:
        return (owner_id, region) in self.readable

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

    def merged(self, other: Snapshot) -> Snapshot:
        """Union of two snapshots (another region or another account's view)."""
        return Snapshot(
            account_id=self.account_id,
            taken_at=min(self.taken_at, other.taken_at),
            readable=self.readable | other.readable,
            vpcs={**self.vpcs, **other.vpcs},
            subnets={**self.subnets, **other.subnets},
            route_tables={**self.route_tables, **other.route_tables},
            peerings={**other.peerings, **self.peerings},
            partial=self.partial | other.partial,
            warnings=self.warnings + other.warnings,
        )


def cidr_family_pairs(a: Iterable[str], b: Iterable[str]) -> Iterator[tuple[str, str]]:
    """Every (x, y) of the two lists that are of the same IP version and overlap."""
    bl = list(b)
    for x in a:
        for y in bl:
            if overlaps(x, y):
                yield x, y
