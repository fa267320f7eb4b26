"""EC2 describe responses -> model objects. Pure: also used on recorded responses."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

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


# -- security groups -------------------------------------------------------------------


def _port(value: Any) -> int | None:
    return None if value is None else int(value)


def security_group_rule(item: Json) -> SecurityGroupRule:
    """One item of DescribeSecurityGroupRules."""
    ref = item.get("ReferencedGroupInfo") or {}
    return SecurityGroupRule(
        group_id=item["GroupId"],
        rule_id=item.get("SecurityGroupRuleId"),
        egress=bool(item.get("IsEgress")),
        protocol=str(item.get("IpProtocol", "-1")),
        from_port=_port(item.get("FromPort")),
        to_port=_port(item.get("ToPort")),
        cidr=item.get("CidrIpv4") or item.get("CidrIpv6"),
        prefix_list_id=item.get("PrefixListId"),
        referenced_group_id=ref.get("GroupId"),
        referenced_owner_id=ref.get("UserId"),
        referenced_vpc_id=ref.get("VpcId"),
        referenced_peering_id=ref.get("VpcPeeringConnectionId"),
        referenced_peering_status=ref.get("PeeringStatus"),
        description=item.get("Description") or "",
    )


def permission_rules(group_id: str, perm: Json, egress: bool) -> list[SecurityGroupRule]:
    """One IpPermissions item (DescribeSecurityGroups) -> one rule per source, as AWS
    itself splits them (without rule ids: those are not in it)."""
    common: dict[str, Any] = {
        "group_id": group_id,
        "egress": egress,
        "protocol": str(perm.get("IpProtocol", "-1")),
        "from_port": _port(perm.get("FromPort")),
        "to_port": _port(perm.get("ToPort")),
    }
    out = [
        SecurityGroupRule(**common, cidr=r["CidrIp"], description=r.get("Description") or "")
        for r in perm.get("IpRanges") or []
        if r.get("CidrIp")
    ]
    out += [
        SecurityGroupRule(**common, cidr=r["CidrIpv6"], description=r.get("Description") or "")
        for r in perm.get("Ipv6Ranges") or []
        if r.get("CidrIpv6")
    ]
    out += [
        SecurityGroupRule(
            **common, prefix_list_id=r["PrefixListId"], description=r.get("Description") or ""
        )
        for r in perm.get("PrefixListIds") or []
        if r.get("PrefixListId")
    ]
    out += [
        SecurityGroupRule(
            **common,
            referenced_group_id=pair["GroupId"],
            referenced_owner_id=pair.get("UserId"),
            referenced_vpc_id=pair.get("VpcId"),
            referenced_peering_id=pair.get("VpcPeeringConnectionId"),
            referenced_peering_status=pair.get("PeeringStatus"),
            description=pair.get("Description") or "",
        )
        for pair in perm.get("UserIdGroupPairs") or []
        if pair.get("GroupId")
    ]
    return out


def security_group(
    item: Json, region: str, rules: Iterable[SecurityGroupRule] | None = None
) -> SecurityGroup:
    """One item of DescribeSecurityGroups; its rules from DescribeSecurityGroupRules when
    given, else from its IpPermissions (then without rule ids)."""
    gid = item["GroupId"]
    if rules is None:
        rules = [
            r
            for egress, key in ((False, "IpPermissions"), (True, "IpPermissionsEgress"))
            for perm in item.get(key) or []
            for r in permission_rules(gid, perm, egress)
        ]
    return SecurityGroup(
        group_id=gid,
        vpc_id=item.get("VpcId", ""),
        owner_id=str(item.get("OwnerId", "")),
        region=region,
        name=item.get("GroupName", ""),
        tags=tags(item),
        rules=tuple(rules),
    )


def stale_references(item: Json) -> list[StaleReference]:
    """One item of DescribeStaleSecurityGroups' StaleSecurityGroupSet."""
    out = []
    for egress, key in ((False, "StaleIpPermissions"), (True, "StaleIpPermissionsEgress")):
        for perm in item.get(key) or []:
            for pair in perm.get("UserIdGroupPairs") or []:
                if not pair.get("GroupId"):
                    continue
                out.append(
                    StaleReference(
                        group_id=item["GroupId"],
                        vpc_id=item.get("VpcId", ""),
                        egress=egress,
                        referenced_group_id=pair["GroupId"],
                        referenced_owner_id=pair.get("UserId"),
                        referenced_vpc_id=pair.get("VpcId"),
                        peering_id=pair.get("VpcPeeringConnectionId"),
                        peering_status=pair.get("PeeringStatus"),
                        protocol=str(perm.get("IpProtocol", "-1")),
                        from_port=_port(perm.get("FromPort")),
                        to_port=_port(perm.get("ToPort")),
                    )
                )
    return out


# -- network ACLs and flow logs -------------------------------------------------------------


def network_acl(item: Json) -> NetworkAcl:
    entries = []
    for e in item.get("Entries") or []:
        cidr = e.get("CidrBlock") or e.get("Ipv6CidrBlock")
        if not cidr:
            continue
        ports = e.get("PortRange") or {}
        entries.append(
            NetworkAclEntry(
                rule_number=int(e["RuleNumber"]),
                egress=bool(e.get("Egress")),
                action=str(e.get("RuleAction", "deny")),
                cidr=cidr,
                protocol=str(e.get("Protocol", "-1")),
                from_port=_port(ports.get("From")),
                to_port=_port(ports.get("To")),
            )
        )
    assocs = item.get("Associations") or []
    return NetworkAcl(
        acl_id=item["NetworkAclId"],
        vpc_id=item.get("VpcId", ""),
        owner_id=str(item.get("OwnerId", "")),
        is_default=bool(item.get("IsDefault")),
        entries=tuple(entries),
        subnet_ids=tuple(a["SubnetId"] for a in assocs if a.get("SubnetId")),
        tags=tags(item),
    )


def flow_log(item: Json) -> FlowLog:
    return FlowLog(
        flow_log_id=item["FlowLogId"],
        resource_id=item.get("ResourceId", ""),
        traffic_type=str(item.get("TrafficType") or "ALL"),
        status=str(item.get("FlowLogStatus") or "ACTIVE"),
        deliver_status=str(item.get("DeliverLogsStatus") or "SUCCESS"),
        deliver_error=str(item.get("DeliverLogsErrorMessage") or ""),
        destination_type=str(item.get("LogDestinationType") or "cloud-watch-logs"),
        destination=str(item.get("LogGroupName") or item.get("LogDestination") or ""),
    )


def network_interface(item: Json, region: str = "") -> NetworkInterface:
    """One DescribeNetworkInterfaces item (primary address first)."""
    addresses = sorted(
        item.get("PrivateIpAddresses") or [], key=lambda a: not a.get("Primary", False)
    )
    ips = [a["PrivateIpAddress"] for a in addresses if a.get("PrivateIpAddress")]
    if not ips and item.get("PrivateIpAddress"):
        ips = [item["PrivateIpAddress"]]
    attachment = item.get("Attachment") or {}
    return NetworkInterface(
        eni_id=item["NetworkInterfaceId"],
        subnet_id=item.get("SubnetId", ""),
        vpc_id=item.get("VpcId", ""),
        region=region,
        owner_id=str(item.get("OwnerId", "")),
        private_ips=tuple(dict.fromkeys(ips)),
        group_ids=tuple(g["GroupId"] for g in item.get("Groups") or [] if g.get("GroupId")),
        instance_id=attachment.get("InstanceId"),
        device_index=attachment.get("DeviceIndex"),
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
    security_groups: Iterable[Json] | None = None,
    security_group_rules: Iterable[Json] | None = None,
    network_acls: Iterable[Json] | None = None,
    flow_logs: Iterable[Json] | None = None,
    stale_security_groups: Iterable[Json] = (),
    taken_at: datetime | None = None,
) -> Snapshot:
    """A Snapshot of one account/region from recorded describe responses (the response dicts,
    e.g. `{"VpcPeeringConnections": [...]}`; several pages each).

    Recordings often lack DescribeVpcs: a VPC not described is then synthesised from what
    the other responses say about it: the blocks of its "local" routes (one per associated
    block) and otherwise its peering's CidrBlock(Set). Subnets are never synthesised: their
    CIDRs are not in the other responses, so per-subnet checks see only what was recorded.
    Security groups, network ACLs and flow logs left out (None) are "not read": their
    checks judge nothing. Security group rules come from DescribeSecurityGroupRules pages
    when given (with rule ids), else from the groups' own IpPermissions.
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
    groups: dict[str, SecurityGroup] | None = None
    if security_groups is not None:
        rules: dict[str, list[SecurityGroupRule]] | None = None
        if security_group_rules is not None:
            rules = {}
            for page in security_group_rules:
                for item in page.get("SecurityGroupRules", []):
                    rule = security_group_rule(item)
                    rules.setdefault(rule.group_id, []).append(rule)
        groups = {}
        for page in security_groups:
            for item in page.get("SecurityGroups", []):
                own = None if rules is None else rules.get(item["GroupId"], [])
                g = security_group(item, region, own)
                groups[g.group_id] = g
    acls = None
    if network_acls is not None:
        acls = by_id(
            (network_acl(i) for page in network_acls for i in page.get("NetworkAcls", [])),
            "acl_id",
        )
    logs = None
    if flow_logs is not None:
        logs = by_id(
            (flow_log(i) for page in flow_logs for i in page.get("FlowLogs", [])), "flow_log_id"
        )
    stale = tuple(
        ref
        for page in stale_security_groups
        for item in page.get("StaleSecurityGroupSet", [])
        for ref in stale_references(item)
    )
    return Snapshot(
        account_id=account_id,
        taken_at=taken_at or datetime.now(UTC),
        readable=frozenset({(account_id, region)}),
        security_groups=groups,
        known_groups={g.group_id: g.vpc_id for g in (groups or {}).values()},
        network_acls=acls,
        flow_logs=logs,
        stale_references=stale,
        vpcs=found | known,
        subnets=by_id(
            (subnet(i) for page in subnets for i in page.get("Subnets", [])), "subnet_id"
        ),
        route_tables=by_id(tables, "route_table_id"),
        peerings=by_id(pcx, "pcx_id"),
    )
