"""Build real networks with boto3 (against moto) for integration tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from peerguard.aws.clients import Clients
from peerguard.aws.reader import Scope
from peerguard.domain.checks import CheckContext, resolve
from peerguard.usecases.pipeline import AuditResult, audit


@dataclass(frozen=True)
class Vpc:
    vpc_id: str
    cidr: str
    main_table: str
    region: str


def vpc(ec2: Any, cidr: str) -> Vpc:
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
    [main] = [t for t in tables["RouteTables"] if t["VpcId"] == vpc_id]
    return Vpc(vpc_id, cidr, main["RouteTableId"], ec2.meta.region_name)


def subnet(ec2: Any, v: Vpc, cidr: str, table: str | None = None) -> str:
    subnet_id: str = ec2.create_subnet(VpcId=v.vpc_id, CidrBlock=cidr)["Subnet"]["SubnetId"]
    if table:
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet_id)
    return subnet_id


def table(ec2: Any, v: Vpc) -> str:
    return str(ec2.create_route_table(VpcId=v.vpc_id)["RouteTable"]["RouteTableId"])


def peer(ec2: Any, requester: Vpc, accepter: Vpc, accepter_ec2: Any | None = None) -> str:
    """Request and accept a peering (cross-region when the accepter's client differs)."""
    kwargs: dict[str, Any] = {"VpcId": requester.vpc_id, "PeerVpcId": accepter.vpc_id}
    if accepter.region != requester.region:
        kwargs["PeerRegion"] = accepter.region
    pcx: str = ec2.create_vpc_peering_connection(**kwargs)["VpcPeeringConnection"][
        "VpcPeeringConnectionId"
    ]
    (accepter_ec2 or ec2).accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    return pcx


def route(ec2: Any, table_id: str, destination: str, pcx: str) -> None:
    ec2.create_route(
        RouteTableId=table_id, DestinationCidrBlock=destination, VpcPeeringConnectionId=pcx
    )


FLOW_LOG_GROUP = "/test/flow-logs"
FLOW_LOG_ROLE = "arn:aws:iam::123456789012:role/flow-logs"


def flow_log(ec2: Any, resource_id: str, traffic: str = "ALL") -> str:
    """A flow log of `resource_id` (a VPC or subnet) to a log group that exists, so that
    moto reports its delivery as working."""
    logs = boto3.client("logs", region_name=ec2.meta.region_name)
    if not logs.describe_log_groups(logGroupNamePrefix=FLOW_LOG_GROUP)["logGroups"]:
        logs.create_log_group(logGroupName=FLOW_LOG_GROUP)
    kind = "VPC" if resource_id.startswith("vpc-") else "Subnet"
    resp = ec2.create_flow_logs(
        ResourceIds=[resource_id],
        ResourceType=kind,
        TrafficType=traffic,
        LogDestinationType="cloud-watch-logs",
        LogGroupName=FLOW_LOG_GROUP,
        DeliverLogsPermissionArn=FLOW_LOG_ROLE,
    )
    return str(resp["FlowLogIds"][0])


def peered_pair(ec2: Any, a_cidr: str, b_cidr: str) -> tuple[Vpc, Vpc, str]:
    """Two VPCs, one subnet each on the main table, peered and routed both ways."""
    a, b = vpc(ec2, a_cidr), vpc(ec2, b_cidr)
    subnet(ec2, a, a_cidr.replace(".0.0/16", ".1.0/24"))
    subnet(ec2, b, b_cidr.replace(".0.0/16", ".1.0/24"))
    pcx = peer(ec2, a, b)
    route(ec2, a.main_table, b.cidr, pcx)
    route(ec2, b.main_table, a.cidr, pcx)
    return a, b, pcx


def run_audit(
    clients: Clients, regions: list[str], scope: Scope | None = None, **ctx: Any
) -> AuditResult:
    return audit(clients, regions, CheckContext(**ctx), resolve(None), scope)


def route_findings(result: AuditResult) -> list[tuple[str, str]]:
    return sorted(
        (f.check_id, f.resource_id) for f in result.findings if f.check_id.startswith("route.")
    )
