"""EC2 describe responses -> model objects. Pure: also used on recorded responses."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from peerguard.domain.model import (
    PeeringConnection,
    PeeringSide,
    Route,
    RouteTable,
    Snapshot,
    Subnet,
    Vpc,
)

Json = dict[str, Any]

# Route target fields in DescribeRouteTables, most specific first.
_TARGET_FIELDS = (
    "VpcPeeringConnectionId",
    "TransitGatewayId",
    "NatGatewayId",
    "NetworkInterfaceId",
    "InstanceId",
    "EgressOnlyInternetGatewayId",
    "LocalGatewayId",
    "CarrierGatewayId",
    "CoreNetworkArn",
    "GatewayId",
)


def tags(item: Json) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in item.get("Tags") or []}


def _associated(state: Json | None) -> bool:
    return (state or {}).get("State", "associated") in ("associated", "associating")


def vpc(item: Json, region: str) -> Vpc:
    v4 = [
        a["CidrBlock"]
        for a in item.get("CidrBlockAssociationSet") or []
        if _associated(a.get("CidrBlockState"))
    ] or ([item["CidrBlock"]] if item.get("CidrBlock") else [])
    v6 = [
        a["Ipv6CidrBlock"]
        for a in item.get("Ipv6CidrBlockAssociationSet") or []
        if a.get("Ipv6CidrBlock") and _associated(a.get("Ipv6CidrBlockState"))
    ]
    return Vpc(
        vpc_id=item["VpcId"],
        owner_id=item.get("OwnerId", ""),
        region=region,
        cidr_blocks=tuple(dict.fromkeys(v4)),
        ipv6_cidr_blocks=tuple(dict.fromkeys(v6)),
        tags=tags(item),
    )


def subnet(item: Json) -> Subnet:
    v6 = [
        a["Ipv6CidrBlock"]
        for a in item.get("Ipv6CidrBlockAssociationSet") or []
        if a.get("Ipv6CidrBlock") and _associated(a.get("Ipv6CidrBlockState"))
    ]
    return Subnet(
        subnet_id=item["SubnetId"],
        vpc_id=item["VpcId"],
        cidr_block=item.get("CidrBlock"),
        ipv6_cidr_blocks=tuple(v6),
        availability_zone=item.get("AvailabilityZone"),
    )


def route(item: Json) -> Route | None:
    dest = (
        item.get("DestinationCidrBlock")
        or item.get("DestinationIpv6CidrBlock")
        or item.get("DestinationPrefixListId")
    )
    target = next((item[f] for f in _TARGET_FIELDS if item.get(f)), None)
    if dest is None or target is None:
        return None
    return Route(
        destination=dest,
        target=target,
        state=item.get("State", "active"),
        origin=item.get("Origin", "CreateRoute"),
    )


def route_table(item: Json) -> RouteTable:
    assocs = item.get("Associations") or []
    live = [a for a in assocs if _associated(a.get("AssociationState"))]
    return RouteTable(
        route_table_id=item["RouteTableId"],
        vpc_id=item["VpcId"],
        owner_id=item.get("OwnerId"),
        routes=tuple(r for r in (route(x) for x in item.get("Routes") or []) if r),
        subnet_ids=tuple(a["SubnetId"] for a in live if a.get("SubnetId")),
        is_main=any(a.get("Main") for a in live),
        tags=tags(item),
    )


def _side(info: Json, default_region: str) -> PeeringSide:
    v4 = [c["CidrBlock"] for c in info.get("CidrBlockSet") or [] if c.get("CidrBlock")]
    if not v4 and info.get("CidrBlock"):
        v4 = [info["CidrBlock"]]
    v6 = [c["Ipv6CidrBlock"] for c in info.get("Ipv6CidrBlockSet") or [] if c.get("Ipv6CidrBlock")]
    opts = info.get("PeeringOptions") or {}
    return PeeringSide(
        owner_id=str(info.get("OwnerId", "")),
        vpc_id=info.get("VpcId", ""),
        region=info.get("Region") or default_region,
        cidr_blocks=tuple(dict.fromkeys(v4)),
        ipv6_cidr_blocks=tuple(dict.fromkeys(v6)),
        allow_dns_from_remote=opts.get("AllowDnsResolutionFromRemoteVpc"),
    )


def peering(item: Json, region: str) -> PeeringConnection:
    status = item.get("Status") or {}
    expires = item.get("ExpirationTime")
    if isinstance(expires, str):
        expires = datetime.fromisoformat(expires.replace("Z", "+00:00"))
    return PeeringConnection(
        pcx_id=item["VpcPeeringConnectionId"],
        status=status.get("Code", "unknown"),
        status_message=status.get("Message", ""),
        requester=_side(item.get("RequesterVpcInfo") or {}, region),
        accepter=_side(item.get("AccepterVpcInfo") or {}, region),
        expiration_time=expires,
        tags=tags(item),
    )


def by_id(items: Iterable[Any], attr: str) -> dict[str, Any]:
    return {getattr(i, attr): i for i in items}


def snapshot_from_responses(
    account_id: str,
    region: str,
    *,
    peerings: Iterable[Json] = (),
    route_tables: Iterable[Json] = (),
    vpcs: Iterable[Json] = (),
    subnets: Iterable[Json] = (),
    taken_at: datetime | None = None,
) -> Snapshot:
    """A Snapshot of one account/region from recorded describe responses (the response dicts,
    e.g. `{"VpcPeeringConnections": [...]}`; several pages each).

    Recordings often lack DescribeVpcs: a VPC not described is then synthesised from what
    the other responses say about it: the blocks of its "local" routes (one per associated
    block) and otherwise its peering's CidrBlock(Set). Subnets are never synthesised: their
    CIDRs are not in the other responses, so per-subnet checks see only what was recorded.
    """
    pcx = [peering(i, region) for page in peerings for i in page.get("VpcPeeringConnections", [])]
    tables = [route_table(i) for page in route_tables for i in page.get("RouteTables", [])]
    known = {v.vpc_id: v for v in (vpc(i, region) for page in vpcs for i in page.get("Vpcs", []))}
    found: dict[str, Vpc] = {}
    for p in pcx:
        for side in p.sides:
            if (side.owner_id or account_id, side.region) == (account_id, region):
                found[side.vpc_id] = Vpc(
                    vpc_id=side.vpc_id,
                    owner_id=side.owner_id or account_id,
                    region=region,
                    cidr_blocks=side.cidr_blocks,
                    ipv6_cidr_blocks=side.ipv6_cidr_blocks,
                )
    for t in tables:
        local = [r.destination for r in t.routes if r.target == "local" and r.is_cidr]
        v4 = tuple(c for c in local if ":" not in c)
        v6 = tuple(c for c in local if ":" in c)
        prior = found.get(t.vpc_id)
        found[t.vpc_id] = Vpc(
            vpc_id=t.vpc_id,
            owner_id=t.owner_id or (prior.owner_id if prior else account_id),
            region=region,
            cidr_blocks=tuple(dict.fromkeys((prior.cidr_blocks if prior else ()) + v4)),
            ipv6_cidr_blocks=tuple(dict.fromkeys((prior.ipv6_cidr_blocks if prior else ()) + v6)),
        )
    return Snapshot(
        account_id=account_id,
        taken_at=taken_at or datetime.now(UTC),
        readable=frozenset({(account_id, region)}),
        vpcs=found | known,
        subnets=by_id(
            (subnet(i) for page in subnets for i in page.get("Subnets", [])), "subnet_id"
        ),
        route_tables=by_id(tables, "route_table_id"),
        peerings=by_id(pcx, "pcx_id"),
    )
