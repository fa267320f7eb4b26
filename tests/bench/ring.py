"""Ring topologies with planted defects: N VPCs, each peered with the next, two subnets each.

Every VPC i is 10.i.0.0/16 with subnets 10.i.1.0/24 and 10.i.2.0/24, each with its own
route table routing both neighbours' /16 through the two ring peerings, DNS resolution on,
and a flow log recording ALL traffic (a well-built peered VPC: flowlogs.disabled is not one
of the planted defects).
Defects (one of each kind per 10 peerings), each with the finding it must produce:
- missing return route: VPC i+1's second table lacks 10.i/16 (i = 0, 10, ...),
- blackhole: a chord peering j <-> j+5 routed from both first tables, then deleted
  (j = 3, 13, ...),
- transitive route: VPC m's first table sends 10.(m+2)/16 via the m -> m+1 peering
  (m = 6, 16, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3

Expected = tuple[str, str, str]  # (check id, route table id, pcx id)


@dataclass
class Ring:
    size: int
    vpcs: list[str] = field(default_factory=list)
    tables: list[tuple[str, str]] = field(default_factory=list)  # (first, second) per VPC
    ring_pcx: list[str] = field(default_factory=list)  # ring_pcx[i]: VPC i <-> VPC i+1
    flow_logs: list[str] = field(default_factory=list)  # flow_logs[i]: VPC i's
    expected: set[Expected] = field(default_factory=set)


FLOW_LOG_GROUP = "/bench/ring/flow-logs"
FLOW_LOG_ROLE = "arn:aws:iam::123456789012:role/flow-logs"


def cidr(i: int) -> str:
    return f"10.{i}.0.0/16"


def build_ring(ec2: Any, size: int) -> Ring:
    if not 3 <= size <= 250:
        raise ValueError(f"bad ring size {size} (expected 3-250 peerings)")
    ring = Ring(size)
    for i in range(size):
        vpc = ec2.create_vpc(CidrBlock=cidr(i))["Vpc"]["VpcId"]
        pair = []
        for k in (1, 2):
            sub = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.{i}.{k}.0/24")["Subnet"]["SubnetId"]
            rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
            ec2.associate_route_table(RouteTableId=rt, SubnetId=sub)
            pair.append(rt)
        ring.vpcs.append(vpc)
        ring.tables.append((pair[0], pair[1]))
    # The log group must exist for moto to report the flow logs' delivery as working.
    url = ec2.meta.endpoint_url  # the emulator's (one URL for every service), or AWS's own
    logs = boto3.client(
        "logs",
        region_name=ec2.meta.region_name,
        endpoint_url=None if url.endswith(".amazonaws.com") else url,
    )
    logs.create_log_group(logGroupName=FLOW_LOG_GROUP)
    for vpc in ring.vpcs:
        resp = ec2.create_flow_logs(
            ResourceIds=[vpc],
            ResourceType="VPC",
            TrafficType="ALL",
            LogGroupName=FLOW_LOG_GROUP,
            DeliverLogsPermissionArn=FLOW_LOG_ROLE,
        )
        ring.flow_logs.append(resp["FlowLogIds"][0])
    for i in range(size):
        ring.ring_pcx.append(_peer(ec2, ring.vpcs[i], ring.vpcs[(i + 1) % size]))
    missing = {(i + 1) % size: i for i in range(0, size, 10)}  # VPC -> neighbour it forgets
    for i in range(size):
        nxt, prev = (i + 1) % size, (i - 1) % size
        for n, rt in enumerate(ring.tables[i]):
            ec2.create_route(
                RouteTableId=rt,
                DestinationCidrBlock=cidr(nxt),
                VpcPeeringConnectionId=ring.ring_pcx[i],
            )
            if n == 1 and missing.get(i) == prev:
                ring.expected.add(("route.missing_reciprocal", rt, ring.ring_pcx[prev]))
                continue
            ec2.create_route(
                RouteTableId=rt,
                DestinationCidrBlock=cidr(prev),
                VpcPeeringConnectionId=ring.ring_pcx[prev],
            )
    for j in range(3, size, 10):
        other = (j + 5) % size
        chord = _peer(ec2, ring.vpcs[j], ring.vpcs[other])
        for a, b in ((j, other), (other, j)):
            rt = ring.tables[a][0]
            ec2.create_route(
                RouteTableId=rt, DestinationCidrBlock=cidr(b), VpcPeeringConnectionId=chord
            )
            ring.expected.add(("route.blackhole", rt, chord))
        ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=chord)
    for m in range(6, size, 10):
        rt, pcx = ring.tables[m][0], ring.ring_pcx[m]
        ec2.create_route(
            RouteTableId=rt, DestinationCidrBlock=cidr((m + 2) % size), VpcPeeringConnectionId=pcx
        )
        ring.expected.add(("route.outside_peer_cidr", rt, pcx))
    return ring


def _peer(ec2: Any, a: str, b: str) -> str:
    pcx = ec2.create_vpc_peering_connection(VpcId=a, PeerVpcId=b)["VpcPeeringConnection"][
        "VpcPeeringConnectionId"
    ]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    on = {"AllowDnsResolutionFromRemoteVpc": True}
    ec2.modify_vpc_peering_connection_options(
        VpcPeeringConnectionId=pcx,
        RequesterPeeringConnectionOptions=on,
        AccepterPeeringConnectionOptions=on,
    )
    return pcx
