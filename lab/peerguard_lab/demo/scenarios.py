"""The seed scenarios (DESIGN section 8): realistic peering set-ups, each with one real mistake.

Builders take a `Clients` pointed at any EC2 endpoint (the demo's emulator, a test's moto
server) and return a `Scenario` that knows what it created and which checks must fire.
Later demos (event-driven, remediation) reuse them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from peerguard.aws.clients import Clients
from peerguard.domain.findings import Finding

EAST, WEST = "us-east-1", "us-west-2"
REGIONS = (EAST, WEST)
PARTNER_ACCOUNT = "210987654321"  # the "other company" of the overlapping-CIDR scenario
DEMO_TAG = "peerguard:demo"
FLOW_LOG_GROUP = "/peerguard-demo/flow-logs"


@dataclass
class Scenario:
    key: str
    name: str
    expected: tuple[str, ...]  # check ids the mistake must raise
    explanation: str = ""
    ids: set[str] = field(default_factory=set)  # every VPC, subnet, table and pcx created
    broken: set[str] = field(default_factory=set)  # the resources the mistake lives on
    named: dict[str, str] = field(default_factory=dict)  # role in the story -> resource id

    def owns(self, finding: Finding) -> bool:
        refs = {finding.resource_id, finding.vpc_id, finding.peering_connection_id}
        return bool(refs & self.ids)

    def findings(self, findings: list[Finding]) -> list[Finding]:
        return [f for f in findings if self.owns(f)]

    def found(self, findings: list[Finding]) -> bool:
        """Every expected check fired on a resource the mistake lives on."""
        hits = {
            f.check_id
            for f in self.findings(findings)
            if {f.resource_id, f.peering_connection_id} & self.broken
        }
        return set(self.expected) <= hits


class Net:
    """Small helpers that create tagged resources and record them in the scenario."""

    def __init__(self, clients: Clients, scenario: Scenario) -> None:
        self.clients = clients
        self.s = scenario
        self._region: dict[str, str] = {}

    def ec2(self, region: str) -> Any:
        return self.clients.client("ec2", region)

    def _tags(self, kind: str, name: str) -> list[dict[str, Any]]:
        tags = [{"Key": "Name", "Value": name}, {"Key": DEMO_TAG, "Value": self.s.key}]
        return [{"ResourceType": kind, "Tags": tags}]

    def _keep(self, name: str, rid: str, region: str) -> str:
        self.s.ids.add(rid)
        self.s.named[name] = rid
        self._region[rid] = region
        return rid

    def vpc(self, name: str, cidr: str, region: str = EAST) -> str:
        resp = self.ec2(region).create_vpc(
            CidrBlock=cidr, TagSpecifications=self._tags("vpc", name)
        )
        vpc_id = self._keep(name, resp["Vpc"]["VpcId"], region)
        self._flow_log(vpc_id, region)  # a well-built peered VPC records its traffic
        return vpc_id

    def _flow_log(self, vpc_id: str, region: str) -> None:
        logs = self.clients.client("logs", region)
        if not logs.describe_log_groups(logGroupNamePrefix=FLOW_LOG_GROUP)["logGroups"]:
            logs.create_log_group(logGroupName=FLOW_LOG_GROUP)
        role = f"arn:aws:iam::{self.clients.account_id()}:role/peerguard-demo-flow-logs"
        self.ec2(region).create_flow_logs(
            ResourceIds=[vpc_id],
            ResourceType="VPC",
            TrafficType="ALL",
            LogDestinationType="cloud-watch-logs",
            LogGroupName=FLOW_LOG_GROUP,
            DeliverLogsPermissionArn=role,
        )

    def subnet(self, vpc: str, name: str, cidr: str) -> str:
        region = self._region[vpc]
        resp = self.ec2(region).create_subnet(
            VpcId=vpc, CidrBlock=cidr, TagSpecifications=self._tags("subnet", name)
        )
        return self._keep(name, resp["Subnet"]["SubnetId"], region)

    def table(self, vpc: str, name: str, *subnets: str) -> str:
        """A route table of its own for the given subnets (as most teams build them)."""
        region = self._region[vpc]
        ec2 = self.ec2(region)
        rt = ec2.create_route_table(VpcId=vpc, TagSpecifications=self._tags("route-table", name))
        rt_id = rt["RouteTable"]["RouteTableId"]
        for sn in subnets:
            ec2.associate_route_table(RouteTableId=rt_id, SubnetId=sn)
        return self._keep(name, rt_id, region)

    def route(self, rt: str, destination: str, pcx: str) -> None:
        self.ec2(self._region[rt]).create_route(
            RouteTableId=rt, DestinationCidrBlock=destination, VpcPeeringConnectionId=pcx
        )

    def replace_route(self, rt: str, destination: str, pcx: str) -> None:
        self.ec2(self._region[rt]).replace_route(
            RouteTableId=rt, DestinationCidrBlock=destination, VpcPeeringConnectionId=pcx
        )

    def peer(self, name: str, requester: str, accepter: str, accept: bool = True) -> str:
        region, peer_region = self._region[requester], self._region[accepter]
        pcx = self.ec2(region).create_vpc_peering_connection(
            VpcId=requester,
            PeerVpcId=accepter,
            PeerRegion=peer_region,
            TagSpecifications=self._tags("vpc-peering-connection", name),
        )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
        if accept:
            self.ec2(peer_region).accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
        return self._keep(name, pcx, region)

    def request_peering(self, name: str, requester: str, vpc: str, account_id: str) -> str:
        """A request to a VPC of another account (same region), left for that account."""
        region = self._region[requester]
        pcx = self.ec2(region).create_vpc_peering_connection(
            VpcId=requester,
            PeerVpcId=vpc,
            PeerOwnerId=account_id,
            TagSpecifications=self._tags("vpc-peering-connection", name),
        )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
        return self._keep(name, pcx, region)

    def security_group(self, vpc: str, name: str) -> str:
        resp = self.ec2(self._region[vpc]).create_security_group(
            GroupName=name,
            Description=f"{name} (PeerGuard demo)",
            VpcId=vpc,
            TagSpecifications=self._tags("security-group", name),
        )
        return self._keep(name, resp["GroupId"], self._region[vpc])

    def ingress(
        self, name: str, sg: str, protocol: str, port: int | None, cidr: str, why: str
    ) -> str:
        """An ingress rule; its id (sgr-...) kept under `name`."""
        perm: dict[str, Any] = {
            "IpProtocol": protocol,
            "IpRanges": [{"CidrIp": cidr, "Description": why}],
        }
        if port is not None:
            perm |= {"FromPort": port, "ToPort": port}
        resp = self.ec2(self._region[sg]).authorize_security_group_ingress(
            GroupId=sg, IpPermissions=[perm]
        )
        rule_id = str(resp["SecurityGroupRules"][0]["SecurityGroupRuleId"])
        self.s.named[name] = rule_id
        return rule_id

    def delete_peering(self, pcx: str) -> None:
        self.ec2(self._region[pcx]).delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)


def multi_region_web_app(clients: Clients) -> Scenario:
    s = Scenario("web", "Multi-region web app", ("route.missing_reciprocal",))
    n = Net(clients, s)
    web = n.vpc("web-us-east-1", "10.0.0.0/16", EAST)
    db = n.vpc("db-us-west-2", "192.168.0.0/16", WEST)
    web_a, web_b = n.subnet(web, "web-a", "10.0.1.0/24"), n.subnet(web, "web-b", "10.0.2.0/24")
    db_a, db_b = n.subnet(db, "db-a", "192.168.1.0/24"), n.subnet(db, "db-b", "192.168.2.0/24")
    pcx = n.peer("web-to-db", web, db)
    for rt in (n.table(web, "rt-web-a", web_a), n.table(web, "rt-web-b", web_b)):
        n.route(rt, "192.168.0.0/16", pcx)
    n.route(n.table(db, "rt-db-a", db_a), "10.0.0.0/16", pcx)
    rt_db_b = n.table(db, "rt-db-b", db_b)  # the mistake: no return route to 10.0.0.0/16
    s.broken = {rt_db_b}
    s.explanation = (
        "web (us-east-1, 10.0.0.0/16) talks to db (us-west-2, 192.168.0.0/16) across regions. "
        "Subnet db-b, added later, got a table with no return route: replies are dropped."
    )
    return s


def microservices_mesh(clients: Clients) -> Scenario:
    s = Scenario("mesh", "Microservices mesh", ("peering.no_routes",))
    n = Net(clients, s)
    cidrs = {"order": "10.0.0.0/16", "inventory": "10.1.0.0/16", "user": "10.2.0.0/16"}
    vpcs, tables = {}, {}
    for name, cidr in cidrs.items():
        vpcs[name] = n.vpc(name, cidr)
        sub = n.subnet(vpcs[name], f"{name}-app", cidr.replace(".0.0/16", ".1.0/24"))
        tables[name] = n.table(vpcs[name], f"rt-{name}-app", sub)
    for a, b in (("order", "inventory"), ("order", "user")):
        pcx = n.peer(f"{a}-{b}", vpcs[a], vpcs[b])
        n.route(tables[a], cidrs[b], pcx)
        n.route(tables[b], cidrs[a], pcx)
    forgotten = n.peer("inventory-user", vpcs["inventory"], vpcs["user"])  # no routes at all
    s.broken = {forgotten}
    s.explanation = (
        "order, inventory and user (10.0-10.2.0.0/16) in a full mesh of peerings; the "
        "inventory<->user one was accepted, but nobody added routes for it."
    )
    return s


def eks_clusters(clients: Clients) -> Scenario:
    s = Scenario("eks", "Two EKS clusters", ("route.blackhole",))
    n = Net(clients, s)
    a = n.vpc("eks-blue", "10.0.0.0/16")
    b = n.vpc("eks-green", "10.1.0.0/16")
    a_tables = [
        n.table(a, f"rt-blue-nodes-{i}", n.subnet(a, f"blue-nodes-{i}", f"10.0.{16 * i}.0/20"))
        for i in (1, 2)
    ]
    b_tables = [
        n.table(b, f"rt-green-nodes-{i}", n.subnet(b, f"green-nodes-{i}", f"10.1.{16 * i}.0/20"))
        for i in (1, 2)
    ]
    old = n.peer("blue-green-old", a, b)
    for rt in a_tables:
        n.route(rt, "10.1.0.0/16", old)
    for rt in b_tables:
        n.route(rt, "10.0.0.0/16", old)
    # Migration to a new peering: every table moved over except green's second node table.
    new = n.peer("blue-green", a, b)
    for rt in a_tables:
        n.replace_route(rt, "10.1.0.0/16", new)
    n.replace_route(b_tables[0], "10.0.0.0/16", new)
    n.delete_peering(old)
    s.broken = {b_tables[1], old}
    s.explanation = (
        "blue (10.0.0.0/16) and green (10.1.0.0/16) moved from peering blue-green-old to "
        "blue-green; green's second node table still routes to the deleted old one."
    )
    return s


def private_subnets(clients: Clients) -> Scenario:
    s = Scenario("private", "Private subnets only", ("route.missing_reciprocal",))
    n = Net(clients, s)
    a = n.vpc("batch", "10.0.0.0/16")
    b = n.vpc("reporting", "10.1.0.0/16")
    rt_a = n.table(a, "rt-batch-private", n.subnet(a, "batch-private", "10.0.1.0/24"))
    n.table(a, "rt-batch-public", n.subnet(a, "batch-public", "10.0.0.0/24"))  # no peer routes
    rt_b = n.table(b, "rt-reporting-private", n.subnet(b, "reporting-private", "10.1.1.0/24"))
    pcx = n.peer("batch-reporting", a, b)
    n.route(rt_a, "10.1.1.0/24", pcx)
    n.route(rt_b, "10.0.1.0/25", pcx)  # the mistake: /25 covers half of batch-private
    s.broken = {rt_b}
    s.explanation = (
        "batch-private (10.0.1.0/24) and reporting-private (10.1.1.0/24) talk; reporting's "
        "return route is 10.0.1.0/25, not /24: hosts in 10.0.1.128-255 get no replies."
    )
    return s


def two_accounts_same_cidr(clients: Clients) -> Scenario:
    s = Scenario(
        "overlap",
        "Two accounts with the same CIDR",
        ("peering.cidr_overlap", "peering.pending_acceptance"),
    )
    n = Net(clients, s)
    ours = n.vpc("payments", "10.0.0.0/16")
    partner = Net(clients.assume(f"arn:aws:iam::{PARTNER_ACCOUNT}:role/network-admin"), s)
    theirs = partner.vpc("partner-billing", "10.0.0.0/16")
    pcx = partner.request_peering("partner-to-payments", theirs, ours, clients.account_id())
    s.broken = {pcx}
    s.explanation = (
        f"Partner {PARTNER_ACCOUNT} asks to peer partner-billing with our payments VPC; both "
        "are 10.0.0.0/16, which no peering routes. Refuse; use PrivateLink."
    )
    return s


def hub_and_spokes(clients: Clients) -> Scenario:
    s = Scenario("hub", "Hub VPC with two spokes", ("route.outside_peer_cidr",))
    n = Net(clients, s)
    hub = n.vpc("shared-services", "172.16.0.0/16")
    spoke_a = n.vpc("team-a", "172.17.0.0/16")
    spoke_b = n.vpc("team-b", "172.18.0.0/16")
    rt_hub = n.table(hub, "rt-shared", n.subnet(hub, "shared", "172.16.1.0/24"))
    rt_a = n.table(spoke_a, "rt-team-a", n.subnet(spoke_a, "team-a-app", "172.17.1.0/24"))
    rt_b = n.table(spoke_b, "rt-team-b", n.subnet(spoke_b, "team-b-app", "172.18.1.0/24"))
    pcx_a = n.peer("hub-team-a", hub, spoke_a)
    pcx_b = n.peer("hub-team-b", hub, spoke_b)
    n.route(rt_hub, "172.17.0.0/16", pcx_a)
    n.route(rt_hub, "172.18.0.0/16", pcx_b)
    n.route(rt_a, "172.16.0.0/16", pcx_a)
    n.route(rt_b, "172.16.0.0/16", pcx_b)
    n.route(rt_a, "172.18.0.0/16", pcx_a)  # the mistake: team-b "through the hub"
    s.broken = {rt_a}
    s.explanation = (
        "Team A routes team B's 172.18.0.0/16 via its peering with the hub (172.16.0.0/16); "
        "peering is not transitive, so AWS drops it. Team A needs its own peering."
    )
    return s


def database_security_group(clients: Clients) -> Scenario:
    s = Scenario("sg", "Database security group", ("sg.peer_all_traffic", "sg.open_to_world"))
    n = Net(clients, s)
    app = n.vpc("orders-app", "10.70.0.0/16")
    db = n.vpc("orders-db", "10.71.0.0/16")
    rt_app = n.table(app, "rt-orders-app", n.subnet(app, "orders-app-a", "10.70.1.0/24"))
    rt_db = n.table(db, "rt-orders-db", n.subnet(db, "orders-db-a", "10.71.1.0/24"))
    pcx = n.peer("orders-app-db", app, db)
    n.route(rt_app, "10.71.0.0/16", pcx)
    n.route(rt_db, "10.70.0.0/16", pcx)
    sg = n.security_group(db, "orders-postgres")
    # The mistakes: during an incident, every port for the whole peer VPC, and the internet.
    n.ingress("rule-app-all", sg, "-1", None, "10.70.0.0/16", "INC-4711: let the app in")
    n.ingress("rule-world-5432", sg, "tcp", 5432, "0.0.0.0/0", "temporary: psql from a laptop")
    s.broken = {sg}
    s.explanation = (
        "orders-app (10.70.0.0/16) reaches Postgres in orders-db (10.71.0.0/16). In an "
        "incident its group was opened to the app VPC on every port, and 5432 to 0.0.0.0/0."
    )
    return s


BUILDERS: tuple[Callable[[Clients], Scenario], ...] = (
    multi_region_web_app,
    microservices_mesh,
    eks_clusters,
    private_subnets,
    two_accounts_same_cidr,
    hub_and_spokes,
    database_security_group,
)


def build_all(clients: Clients) -> list[Scenario]:
    return [build(clients) for build in BUILDERS]
