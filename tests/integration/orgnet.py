"""An organization in moto: N accounts, each with one VPC, joined in a ring of 2N
cross-account peerings (account i requests to i+1 and i+2), routed both ways, with
defects planted on the accepter (far) side. Shared by the simulation test and the bench."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FIRST_ACCOUNT = 300000000000
ROLE = "PeerGuardMember"
# The checks the simulation judges (flow logs and DNS options are not planted here).
CHECKS = (
    "route.missing_reciprocal",
    "route.blackhole",
    "route.outside_peer_cidr",
    "route.peer_side_unverified",
    "peering.no_routes",
    "peering.cidr_overlap",
    "sg.peer_all_traffic",
    "nacl.blocks_peer",
)


def account(i: int) -> str:
    return str(FIRST_ACCOUNT + i)


@dataclass
class Org:
    accounts: list[str]
    peerings: list[str] = field(default_factory=list)
    # (check id, resource id, account id) of every planted defect
    planted: set[tuple[str, str, str]] = field(default_factory=set)
    # the requester (the side that sees the defect only across the peering) of each defect
    seen_from: dict[tuple[str, str, str], str] = field(default_factory=dict)


def build_org(n: int, ec2_for: Callable[[str], Any], *, every_route: int = 10,
              every_sg: int = 20) -> Org:  # fmt: skip
    """`ec2_for(account)`: an EC2 client in that account. Peering k (0-based) has no return
    route on its accepter when k % every_route == 0, and the accepter's default group lets
    all traffic in from the requester's VPC when k % every_sg == 5."""
    org = Org([account(i) for i in range(n)])
    ec2 = {a: ec2_for(a) for a in org.accounts}
    vpcs: dict[str, tuple[str, str, str, str]] = {}  # account -> vpc, cidr, main table, sg
    for i, a in enumerate(org.accounts):
        cidr = f"10.{i}.0.0/16"
        vpc_id = ec2[a].create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
        ec2[a].create_subnet(VpcId=vpc_id, CidrBlock=f"10.{i}.1.0/24")
        flt = [{"Name": "vpc-id", "Values": [vpc_id]}]
        [main] = [
            t["RouteTableId"]
            for t in ec2[a].describe_route_tables(Filters=flt)["RouteTables"]
            if t["VpcId"] == vpc_id
        ]
        [sg] = [
            g["GroupId"]
            for g in ec2[a].describe_security_groups(Filters=flt)["SecurityGroups"]
            if g.get("VpcId") == vpc_id and g["GroupName"] == "default"
        ]
        vpcs[a] = (vpc_id, cidr, main, sg)
    k = 0
    for i, req in enumerate(org.accounts):
        for step in (1, 2):
            acc = org.accounts[(i + step) % n]
            if acc == req:
                continue
            (rv, rc, rt, _), (av, ac, at, asg) = vpcs[req], vpcs[acc]
            pcx = ec2[req].create_vpc_peering_connection(VpcId=rv, PeerVpcId=av, PeerOwnerId=acc)[
                "VpcPeeringConnection"
            ]["VpcPeeringConnectionId"]
            ec2[acc].accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
            ec2[req].create_route(
                RouteTableId=rt, DestinationCidrBlock=ac, VpcPeeringConnectionId=pcx
            )
            if k % every_route == 0:
                defect = ("route.missing_reciprocal", at, acc)
                org.planted.add(defect)
                org.seen_from[defect] = req
            else:
                ec2[acc].create_route(
                    RouteTableId=at, DestinationCidrBlock=rc, VpcPeeringConnectionId=pcx
                )
            if k % every_sg == 5:
                ec2[acc].authorize_security_group_ingress(
                    GroupId=asg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": rc}]}]
                )
                defect = ("sg.peer_all_traffic", asg, acc)
                org.planted.add(defect)
                org.seen_from[defect] = req
            org.peerings.append(pcx)
            k += 1
    return org
