"""A small, readable builder of hand-made Snapshots for pure check tests (no moto).

    net = Net()
    web = net.vpc("web", "10.0.0.0/16")              # VPC vpc-web, main table rtb-web-main
    db = net.vpc("db", "10.1.0.0/16")
    net.subnet(web, "10.0.1.0/24")                    # subnet-web-1, on the main table
    pcx = net.peer(web, db)                           # pcx-web-db, active
    net.route_to_peer(net.main(web), pcx)             # every db block via pcx-web-db
    snap = net.snapshot()

Ids are derived from names so test failures read like the network they describe.
A VPC is in the snapshot only when its (owner, region) is readable; the audited account
in the builder's region is readable by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from peerguard.domain.allowlist import Allowed, Allowlist
from peerguard.domain.catalogue import entry
from peerguard.domain.checks import CheckContext
from peerguard.domain.findings import Finding
from peerguard.domain.model import (
    PeeringConnection,
    PeeringSide,
    Route,
    RouteTable,
    Snapshot,
    Subnet,
    Vpc,
)

ACCOUNT = "111111111111"
OTHER_ACCOUNT = "222222222222"
REGION = "us-east-1"
OTHER_REGION = "us-west-2"
NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@dataclass
class _Vpc:
    vpc_id: str
    owner: str
    region: str
    cidrs: list[str]
    ipv6: list[str]
    dns_hostnames: bool | None


@dataclass
class _Table:
    table_id: str
    vpc_id: str
    main: bool
    routes: list[Route] = field(default_factory=list)
    subnets: list[str] = field(default_factory=list)


class Net:
    def __init__(self, account: str = ACCOUNT, region: str = REGION, now: datetime = NOW) -> None:
        self.account = account
        self.region = region
        self.now = now
        self.readable: set[tuple[str, str]] = {(account, region)}
        self.partial: set[tuple[str, str]] = set()
        self.vpcs: dict[str, _Vpc] = {}
        self.tables: dict[str, _Table] = {}
        self.subnets: dict[str, Subnet] = {}
        self.peerings: dict[str, PeeringConnection] = {}

    # -- building -------------------------------------------------------------

    def vpc(
        self,
        name: str,
        *cidrs: str,
        ipv6: tuple[str, ...] = (),
        owner: str | None = None,
        region: str | None = None,
        dns_hostnames: bool | None = None,
    ) -> str:
        """A VPC with its main route table (local route per block). Returns its id."""
        vpc_id = f"vpc-{name}"
        self.vpcs[vpc_id] = _Vpc(
            vpc_id,
            owner or self.account,
            region or self.region,
            list(cidrs),
            list(ipv6),
            dns_hostnames,
        )
        self.table(vpc_id, main=True, table_id=f"rtb-{name}-main")
        return vpc_id

    def add_cidr(self, vpc_id: str, cidr: str) -> None:
        """Associate a secondary block (and its local route in every table of the VPC)."""
        self.vpcs[vpc_id].cidrs.append(cidr)
        for t in self.tables.values():
            if t.vpc_id == vpc_id:
                t.routes.append(Route(destination=cidr, target="local", origin="CreateRouteTable"))

    def table(self, vpc_id: str, *, main: bool = False, table_id: str | None = None) -> str:
        v = self.vpcs[vpc_id]
        n = sum(1 for t in self.tables.values() if t.vpc_id == vpc_id)
        table_id = table_id or f"rtb-{vpc_id.removeprefix('vpc-')}-{n}"
        local = [
            Route(destination=c, target="local", origin="CreateRouteTable")
            for c in v.cidrs + v.ipv6
        ]
        self.tables[table_id] = _Table(table_id, vpc_id, main, local)
        return table_id

    def main(self, vpc_id: str) -> str:
        return next(t.table_id for t in self.tables.values() if t.vpc_id == vpc_id and t.main)

    def subnet(
        self,
        vpc_id: str,
        cidr: str | None,
        *,
        ipv6: tuple[str, ...] = (),
        table: str | None = None,
        subnet_id: str | None = None,
    ) -> str:
        """A subnet; `table` = explicit association, else it uses the main table."""
        n = sum(1 for s in self.subnets.values() if s.vpc_id == vpc_id) + 1
        subnet_id = subnet_id or f"subnet-{vpc_id.removeprefix('vpc-')}-{n}"
        self.subnets[subnet_id] = Subnet(
            subnet_id=subnet_id, vpc_id=vpc_id, cidr_block=cidr, ipv6_cidr_blocks=ipv6
        )
        if table is not None:
            self.tables[table].subnets.append(subnet_id)
        return subnet_id

    def route(self, table_id: str, destination: str, target: str, state: str = "active") -> None:
        self.tables[table_id].routes.append(
            Route(destination=destination, target=target, state=state)
        )

    def unroute(self, table_id: str, destination: str) -> None:
        t = self.tables[table_id]
        before = len(t.routes)
        t.routes = [r for r in t.routes if r.destination != destination]
        assert len(t.routes) == before - 1, f"{table_id} has no single route to {destination}"

    def peer(
        self,
        requester: str,
        accepter: str,
        *,
        status: str = "active",
        pcx_id: str | None = None,
        expires: datetime | None = None,
        dns: tuple[bool | None, bool | None] = (True, True),
        message: str = "",
    ) -> str:
        """A peering between two VPCs built here; `dns` = each side's AllowDnsResolution."""
        pcx_id = pcx_id or f"pcx-{requester.removeprefix('vpc-')}-{accepter.removeprefix('vpc-')}"
        r, a = self.vpcs[requester], self.vpcs[accepter]
        self.peerings[pcx_id] = PeeringConnection(
            pcx_id=pcx_id,
            status=status,
            status_message=message,
            requester=_side(r, dns[0]),
            accepter=_side(a, dns[1]),
            expiration_time=expires,
        )
        return pcx_id

    def route_to_peer(self, table_id: str, pcx_id: str) -> None:
        """Route every CIDR block of the VPC on the other side of `pcx_id` through it."""
        vpc_id = self.tables[table_id].vpc_id
        other = self.peerings[pcx_id].other(vpc_id)
        for c in other.all_cidrs:
            self.route(table_id, c, pcx_id)

    def peer_routed(self, requester: str, accepter: str, **kw: object) -> str:
        """A correct peering: every table of both VPCs routes the other VPC's blocks."""
        pcx = self.peer(requester, accepter, **kw)  # type: ignore[arg-type]
        for t in list(self.tables.values()):
            if t.vpc_id in (requester, accepter):
                self.route_to_peer(t.table_id, pcx)
        return pcx

    # -- output -----------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        visible = {k for k, v in self.vpcs.items() if (v.owner, v.region) in self.readable}
        return Snapshot(
            account_id=self.account,
            taken_at=self.now,
            readable=frozenset(self.readable),
            vpcs={
                k: Vpc(
                    vpc_id=k,
                    owner_id=v.owner,
                    region=v.region,
                    cidr_blocks=tuple(v.cidrs),
                    ipv6_cidr_blocks=tuple(v.ipv6),
                    dns_hostnames=v.dns_hostnames,
                )
                for k, v in self.vpcs.items()
                if k in visible
            },
            subnets={k: s for k, s in self.subnets.items() if s.vpc_id in visible},
            route_tables={
                k: RouteTable(
                    route_table_id=k,
                    vpc_id=t.vpc_id,
                    owner_id=self.vpcs[t.vpc_id].owner,
                    routes=tuple(t.routes),
                    subnet_ids=tuple(t.subnets),
                    is_main=t.main,
                )
                for k, t in self.tables.items()
                if t.vpc_id in visible
            },
            peerings=dict(self.peerings),
            partial=frozenset(self.partial),
        )


def _side(v: _Vpc, dns: bool | None) -> PeeringSide:
    return PeeringSide(
        owner_id=v.owner,
        vpc_id=v.vpc_id,
        region=v.region,
        cidr_blocks=tuple(v.cidrs),
        ipv6_cidr_blocks=tuple(v.ipv6),
        allow_dns_from_remote=dns,
    )


def run(check_id: str, snap: Snapshot, ctx: CheckContext | None = None) -> list[Finding]:
    """The findings of one registered check."""
    return entry(check_id).run(snap, ctx or CheckContext())


def allowed(account_id: str, **narrowing: object) -> Allowed:
    """An allowlist entry with the builder's readable ids (not validated as real ids are)."""
    fields = {"regions": frozenset(), "vpc_ids": frozenset(), "cidrs": (), **narrowing}
    return Allowed.model_construct(account_id=account_id, **fields)


def allowing(*entries: Allowed, **ctx: object) -> CheckContext:
    """A check context whose allowlist is exactly `entries` (none: an empty allowlist)."""
    return CheckContext(allowlist=Allowlist(tuple(entries)), **ctx)  # type: ignore[arg-type]


def in_hours(snap_now: datetime, hours: float) -> datetime:
    return snap_now + timedelta(hours=hours)
