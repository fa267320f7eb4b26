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

Security groups, network ACLs and flow logs are "not read" (None in the snapshot) until
the test adds one of their kind (or calls `read_flow_logs()` for "read, none there"):

    sg = net.group(web, "app")                        # sg-app in vpc-web
    net.ingress(sg, "10.1.0.0/16", "tcp", (443, 443)) # rule sgr-app-1
    net.allow_all_acls()                              # every VPC's default ACL, AWS's defaults
    net.flow_log(web)                                 # fl-web-1: ALL, active
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from peerguard.domain.allowlist import Allowed, Allowlist
from peerguard.domain.catalogue import entry
from peerguard.domain.checks import CheckContext
from peerguard.domain.findings import Finding
from peerguard.domain.model import (
    FlowLog,
    NetworkAcl,
    NetworkAclEntry,
    NetworkInterface,
    PeeringConnection,
    PeeringSide,
    Route,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    Snapshot,
    StaleReference,
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
        self.groups: dict[str, SecurityGroup] | None = None
        self.known_groups: dict[str, str] = {}
        self.stale: list[StaleReference] = []
        self.acls: dict[str, NetworkAcl] | None = None
        self.flow_logs: dict[str, FlowLog] | None = None
        self.interfaces: dict[str, NetworkInterface] | None = None

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

    # -- security groups ------------------------------------------------------

    def group(
        self,
        vpc_id: str,
        name: str,
        *,
        owner: str | None = None,
        tags: dict[str, str] | None = None,
        group_id: str | None = None,
    ) -> str:
        """A security group with no rules (add them with `ingress` / `egress`)."""
        group_id = group_id or f"sg-{name}"
        v = self.vpcs.get(vpc_id)
        self.groups = self.groups if self.groups is not None else {}
        self.groups[group_id] = SecurityGroup(
            group_id=group_id,
            vpc_id=vpc_id,
            owner_id=owner or (v.owner if v else self.account),
            region=v.region if v else self.region,
            name=name,
            tags=tags or {},
        )
        self.known_groups[group_id] = vpc_id
        return group_id

    def ingress(
        self,
        group_id: str,
        source: str,
        proto: str = "-1",
        ports: tuple[int, int] | None = None,
        **kw: object,
    ) -> str:
        """An ingress rule from a CIDR, a prefix list (pl-) or a group (sg-); its rule id."""
        return self._rule(group_id, False, source, proto, ports, **kw)

    def egress(
        self,
        group_id: str,
        dest: str,
        proto: str = "-1",
        ports: tuple[int, int] | None = None,
        **kw: object,
    ) -> str:
        return self._rule(group_id, True, dest, proto, ports, **kw)

    def _rule(
        self,
        group_id: str,
        egress: bool,
        source: str,
        proto: str,
        ports: tuple[int, int] | None,
        *,
        rule_id: str | None = "",
        owner: str | None = None,
        vpc: str | None = None,
        pcx: str | None = None,
        description: str = "",
    ) -> str:
        assert self.groups is not None and group_id in self.groups, f"no group {group_id}"
        g = self.groups[group_id]
        if rule_id == "":
            rule_id = f"sgr-{group_id.removeprefix('sg-')}-{len(g.rules) + 1}"
        where: dict[str, object] = {}
        if source.startswith("sg-"):
            where = {
                "referenced_group_id": source,
                "referenced_owner_id": owner or g.owner_id,
                "referenced_vpc_id": vpc,
                "referenced_peering_id": pcx,
            }
        elif source.startswith("pl-"):
            where = {"prefix_list_id": source}
        else:
            where = {"cidr": source}
        lo, hi = ports if ports else ((-1, -1) if proto == "-1" else (None, None))
        rule = SecurityGroupRule(
            group_id=group_id,
            rule_id=rule_id,
            egress=egress,
            protocol=proto,
            from_port=lo,
            to_port=hi,
            description=description,
            **where,  # type: ignore[arg-type]
        )
        self.groups[group_id] = g.model_copy(update={"rules": (*g.rules, rule)})
        return rule_id or ""

    def stale_reported(self, group_id: str, referenced: str, **kw: object) -> None:
        """What DescribeStaleSecurityGroups would say about a rule of `group_id`."""
        assert self.groups is not None
        g = self.groups[group_id]
        kw.setdefault("egress", False)
        self.stale.append(
            StaleReference(
                group_id=group_id,
                vpc_id=g.vpc_id,
                referenced_group_id=referenced,
                **kw,  # type: ignore[arg-type]
            )
        )

    # -- network ACLs -------------------------------------------------------------

    def acl(
        self,
        vpc_id: str,
        *entries: tuple[int, str, str, str] | tuple[int, str, str, str, str, tuple[int, int]],
        subnets: tuple[str, ...] = (),
        default: bool = False,
        acl_id: str | None = None,
    ) -> str:
        """A network ACL: entries (number, "in"|"out", "allow"|"deny", cidr[, proto, ports])."""
        self.acls = self.acls if self.acls is not None else {}
        n = sum(1 for a in self.acls.values() if a.vpc_id == vpc_id)
        acl_id = acl_id or f"acl-{vpc_id.removeprefix('vpc-')}-{'default' if default else n}"
        made = []
        for e in entries:
            number, way, action, cidr = e[:4]
            proto = e[4] if len(e) > 4 else "-1"  # type: ignore[misc]
            ports = e[5] if len(e) > 5 else (None, None)  # type: ignore[misc]
            made.append(
                NetworkAclEntry(
                    rule_number=number,
                    egress=way == "out",
                    action=action,
                    cidr=cidr,
                    protocol=proto,  # type: ignore[arg-type]
                    from_port=ports[0],  # type: ignore[index]
                    to_port=ports[1],  # type: ignore[index]
                )
            )
        v = self.vpcs[vpc_id]
        self.acls[acl_id] = NetworkAcl(
            acl_id=acl_id,
            vpc_id=vpc_id,
            owner_id=v.owner,
            is_default=default,
            entries=tuple(made),
            subnet_ids=subnets,
        )
        return acl_id

    def allow_all_acls(self) -> None:
        """Every VPC's default ACL as AWS creates it: rule 100 allows all, both ways."""
        for vpc_id in self.vpcs:
            self.acl(
                vpc_id,
                (100, "in", "allow", "0.0.0.0/0"),
                (100, "out", "allow", "0.0.0.0/0"),
                default=True,
            )

    # -- network interfaces ------------------------------------------------------------

    def interface(
        self, subnet_id: str, address: str, *groups: str, instance: str | None = None
    ) -> str:
        """An ENI holding `address` in `subnet_id`, in `groups`; eni-<subnet>-<n>."""
        self.interfaces = self.interfaces if self.interfaces is not None else {}
        s = self.subnets[subnet_id]
        eni_id = f"eni-{subnet_id.removeprefix('subnet-')}-{len(self.interfaces) + 1}"
        self.interfaces[eni_id] = NetworkInterface(
            eni_id=eni_id,
            subnet_id=subnet_id,
            vpc_id=s.vpc_id,
            owner_id=self.vpcs[s.vpc_id].owner,
            private_ips=(address,),
            group_ids=groups,
            instance_id=instance,
            device_index=0 if instance else None,
        )
        return eni_id

    # -- flow logs -------------------------------------------------------------------

    def read_flow_logs(self) -> None:
        """Flow logs were read (there may be none)."""
        self.flow_logs = self.flow_logs if self.flow_logs is not None else {}

    def flow_log(
        self,
        resource_id: str,
        traffic: str = "ALL",
        *,
        status: str = "ACTIVE",
        deliver: str = "SUCCESS",
    ) -> str:
        self.read_flow_logs()
        assert self.flow_logs is not None
        fl_id = f"fl-{resource_id.split('-', 1)[1]}-{len(self.flow_logs) + 1}"
        self.flow_logs[fl_id] = FlowLog(
            flow_log_id=fl_id,
            resource_id=resource_id,
            traffic_type=traffic,
            status=status,
            deliver_status=deliver,
            deliver_error="Access error" if deliver == "FAILED" else "",
        )
        return fl_id

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
            security_groups=None
            if self.groups is None
            else {k: g for k, g in self.groups.items() if g.vpc_id in visible},
            known_groups={k: v for k, v in self.known_groups.items() if v in visible},
            stale_references=tuple(self.stale),
            network_acls=None
            if self.acls is None
            else {k: a for k, a in self.acls.items() if a.vpc_id in visible},
            flow_logs=None if self.flow_logs is None else dict(self.flow_logs),
            network_interfaces=None
            if self.interfaces is None
            else {k: e for k, e in self.interfaces.items() if e.vpc_id in visible},
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
