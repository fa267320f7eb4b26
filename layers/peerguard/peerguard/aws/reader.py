"""Read the live network into a Snapshot: a full region, or just what a change touched.

Every describe call is paginated, and every server-side filter is applied again in code
(moto, and some EC2 filters, return more than asked). A call that is denied becomes a
warning naming the missing permission and marks that part of the snapshot partial; the
rest of the audit still runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from peerguard import clock
from peerguard.aws import parse
from peerguard.aws.clients import Clients
from peerguard.domain.model import (
    ACTIVE,
    PENDING_ACCEPTANCE,
    PeeringConnection,
    RouteTable,
    Snapshot,
    Subnet,
    Vpc,
)
from peerguard.domain.scope import Scope

DENIED = frozenset(
    {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure"}
)
MAX_FILTER_VALUES = 200  # EC2 limit on values per filter
_PEERING_SIDES = ("RequesterVpcInfo", "AccepterVpcInfo")

# Every EC2 call the readers make, for the IAM policy test.
READ_ACTIONS = (
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeVpcAttribute",
)


@dataclass
class _Region:
    """What one region's reads produced."""

    region: str
    vpcs: dict[str, Vpc] = field(default_factory=dict)
    subnets: dict[str, Subnet] = field(default_factory=dict)
    tables: dict[str, RouteTable] = field(default_factory=dict)
    peerings: dict[str, PeeringConnection] = field(default_factory=dict)
    partial: set[tuple[str, str]] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


class Reader:
    def __init__(self, clients: Clients, account_id: str | None = None) -> None:
        self.clients = clients
        self.account_id = account_id or clients.account_id()

    # -- public -------------------------------------------------------------

    def full(self, regions: Iterable[str]) -> Snapshot:
        """Every VPC, subnet, route table and peering of the given regions."""
        parts = []
        for region in regions:
            r = _Region(region)
            r.vpcs = self._vpcs(r, None)
            r.subnets = self._subnets(r, None)
            r.tables = self._tables(r, None)
            r.peerings = self._peerings(r, None, None)
            parts.append(r)
        return self._snapshot(parts)

    def scoped(self, region: str, scope: Scope, regions: Iterable[str] = ()) -> Snapshot:
        """Only the VPCs a change touched, their peerings and the VPCs on the other side.

        The number of calls depends on the scope, not on the size of the account.
        `regions` are other regions of this account that may be read for cross-region peers.
        """
        r = _Region(region)
        vpc_ids = set(scope.vpc_ids)
        if scope.route_table_ids:
            found = self._tables(r, {"route-table-id": scope.route_table_ids})
            vpc_ids |= {t.vpc_id for t in found.values()}
        if scope.subnet_ids:
            subs = self._subnets(r, {"subnet-id": scope.subnet_ids})
            vpc_ids |= {s.vpc_id for s in subs.values()}
        peerings: dict[str, PeeringConnection] = {}
        if scope.peering_ids:
            peerings |= self._peerings(r, scope.peering_ids, None)
        for p in peerings.values():
            vpc_ids |= {p.requester.vpc_id, p.accepter.vpc_id}
        if vpc_ids:
            peerings |= self._peerings(r, None, vpc_ids)
        parts = [r]
        by_region = self._own_vpcs_by_region(peerings.values(), vpc_ids, region)
        other_regions = set(regions) - {region}
        for reg, ids in sorted(by_region.items()):
            if reg == region:
                self._read_vpcs(r, ids)
            elif reg in other_regions:
                other = _Region(reg)
                self._read_vpcs(other, ids)
                parts.append(other)
        # Routes may point at peerings outside the scope: read those to judge them.
        referenced = {
            route.target
            for part in parts
            for t in part.tables.values()
            for route in t.routes
            if route.peering_id
        } - set(peerings)
        if referenced:
            peerings |= self._peerings(r, frozenset(referenced), None)
        r.peerings = peerings
        return self._snapshot(parts)

    def pending_requests(
        self, regions: Iterable[str], pcx_ids: frozenset[str] | None = None
    ) -> tuple[list[PeeringConnection], list[str], list[str]]:
        """Requests pending acceptance by this account, each seen from its accepter's region.

        Returns (requests, regions listed in full, warnings). Filters are applied again in code.
        """
        found: dict[str, PeeringConnection] = {}
        listed, warnings = [], []
        flt: dict[str, Iterable[str]] = {
            "status-code": [PENDING_ACCEPTANCE],
            "accepter-vpc-info.owner-id": [self.account_id],
        }
        if pcx_ids:
            flt["vpc-peering-connection-id"] = pcx_ids
        for region in regions:
            r = _Region(region)
            items = list(
                self._paginate(
                    r,
                    "peerings",
                    "describe_vpc_peering_connections",
                    "VpcPeeringConnections",
                    flt,
                    combine=True,
                )
            )
            if r.partial:
                warnings += [
                    w.replace("not checked there", "requests there not checked") for w in r.warnings
                ]
                continue
            listed.append(region)
            for item in items:
                p = parse.peering(item, region)
                if (
                    p.status == PENDING_ACCEPTANCE
                    and p.accepter.owner_id == self.account_id
                    and p.accepter.region == region
                    and (pcx_ids is None or p.pcx_id in pcx_ids)
                ):
                    found[p.pcx_id] = p
        return sorted(found.values(), key=lambda p: p.pcx_id), listed, warnings

    # -- reads ----------------------------------------------------------------

    def _own_vpcs_by_region(
        self, peerings: Iterable[PeeringConnection], vpc_ids: set[str], home: str
    ) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {home: set(vpc_ids)}
        for p in peerings:
            for side in p.sides:
                if side.owner_id == self.account_id:
                    out.setdefault(side.region, set()).add(side.vpc_id)
        return out

    def _read_vpcs(self, r: _Region, ids: set[str]) -> None:
        if not ids:
            return
        r.vpcs |= self._vpcs(r, ids)
        r.subnets |= self._subnets(r, {"vpc-id": ids})
        r.tables |= self._tables(r, {"vpc-id": ids})

    def _paginate(
        self,
        r: _Region,
        kind: str,
        op: str,
        key: str,
        filters: Mapping[str, Iterable[str]] | None,
        combine: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a describe call. Filters of different names are separate requests
        (their union), unless `combine` asks for one request matching all of them."""
        ec2 = self.clients.client("ec2", r.region)
        batches: list[list[dict[str, Any]]] = [[]]
        if filters and combine:
            batches = [[{"Name": n, "Values": sorted(v)} for n, v in filters.items()]]
        elif filters:
            batches = []
            for name, values in filters.items():
                vals = sorted(values)
                for i in range(0, len(vals), MAX_FILTER_VALUES):
                    batches.append([{"Name": name, "Values": vals[i : i + MAX_FILTER_VALUES]}])
        try:
            for flt in batches:
                kwargs = {"Filters": flt} if flt else {}
                for page in ec2.get_paginator(op).paginate(**kwargs):
                    yield from page.get(key, [])
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code not in DENIED:
                raise
            action = "ec2:" + "".join(w.capitalize() for w in op.split("_"))
            r.partial.add((r.region, kind))
            r.warnings.append(
                f"missing permission {action} in {r.region} ({code}): {kind} not checked there"
            )

    def _vpcs(self, r: _Region, ids: set[str] | None) -> dict[str, Vpc]:
        flt = {"vpc-id": ids} if ids else None
        items = self._paginate(r, "vpcs", "describe_vpcs", "Vpcs", flt)
        return {
            v.vpc_id: v for v in (parse.vpc(i, r.region) for i in items) if _keep(v.vpc_id, ids)
        }

    def _subnets(self, r: _Region, flt: Mapping[str, Iterable[str]] | None) -> dict[str, Subnet]:
        items = self._paginate(r, "subnets", "describe_subnets", "Subnets", flt)
        match = _matcher(flt)
        subs = (
            parse.subnet(i)
            for i in items
            if match({"subnet-id": i["SubnetId"], "vpc-id": i["VpcId"]})
        )
        return {s.subnet_id: s for s in subs}

    def _tables(self, r: _Region, flt: Mapping[str, Iterable[str]] | None) -> dict[str, RouteTable]:
        items = self._paginate(r, "route_tables", "describe_route_tables", "RouteTables", flt)
        match = _matcher(flt)
        tables = (
            parse.route_table(i)
            for i in items
            if match({"route-table-id": i["RouteTableId"], "vpc-id": i["VpcId"]})
        )
        return {t.route_table_id: t for t in tables}

    def _peerings(
        self, r: _Region, ids: frozenset[str] | None, vpc_ids: set[str] | None
    ) -> dict[str, PeeringConnection]:
        flt: Mapping[str, Iterable[str]] | None = None
        if ids:
            flt = {"vpc-peering-connection-id": ids}
        elif vpc_ids:
            flt = {"requester-vpc-info.vpc-id": vpc_ids, "accepter-vpc-info.vpc-id": vpc_ids}
        items = self._paginate(
            r, "peerings", "describe_vpc_peering_connections", "VpcPeeringConnections", flt
        )
        out = {}
        for item in items:  # filtered before parsing: what is dropped costs nothing
            pcx_id = item["VpcPeeringConnectionId"]
            if ids and pcx_id not in ids:
                continue
            sides = {(item.get(k) or {}).get("VpcId", "") for k in _PEERING_SIDES}
            if vpc_ids and not sides & vpc_ids:
                continue
            out[pcx_id] = parse.peering(item, r.region)
        return out

    def _dns_hostnames(self, vpc: Vpc) -> bool | None:
        ec2 = self.clients.client("ec2", vpc.region)
        try:
            resp = ec2.describe_vpc_attribute(VpcId=vpc.vpc_id, Attribute="enableDnsHostnames")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code", "") in DENIED:
                return None
            raise
        return bool(resp.get("EnableDnsHostnames", {}).get("Value"))

    # -- assembly -------------------------------------------------------------

    def _snapshot(self, parts: list[_Region]) -> Snapshot:
        vpcs: dict[str, Vpc] = {}
        peerings: dict[str, PeeringConnection] = {}
        for p in parts:
            vpcs |= p.vpcs
            peerings |= p.peerings
        # DNS hostnames change the verdict only where our side's DNS option is off.
        for pcx in peerings.values():
            if pcx.status != ACTIVE:
                continue
            for side in pcx.sides:
                vpc = vpcs.get(side.vpc_id)
                if side.allow_dns_from_remote is False and vpc and vpc.dns_hostnames is None:
                    vpcs[vpc.vpc_id] = vpc.model_copy(
                        update={"dns_hostnames": self._dns_hostnames(vpc)}
                    )
        return Snapshot(
            account_id=self.account_id,
            taken_at=clock.now(),
            readable=frozenset(
                (self.account_id, p.region) for p in parts if (p.region, "vpcs") not in p.partial
            ),
            vpcs=vpcs,
            subnets={k: v for p in parts for k, v in p.subnets.items()},
            route_tables={k: v for p in parts for k, v in p.tables.items()},
            peerings=peerings,
            partial=frozenset(x for p in parts for x in p.partial),
            warnings=tuple(w for p in parts for w in p.warnings),
        )


def _keep(value: str, wanted: set[str] | None) -> bool:
    return wanted is None or value in wanted


def _matcher(flt: Mapping[str, Iterable[str]] | None) -> Callable[[dict[str, str]], bool]:
    """Apply the filters again in code (before parsing: what is dropped costs nothing):
    keep items matching any of the filters given."""
    wanted = {name: frozenset(vals) for name, vals in (flt or {}).items()}

    def match(values: dict[str, str]) -> bool:
        return not wanted or any(values.get(name) in vals for name, vals in wanted.items())

    return match
