"""A peered account with planted security-group, network-ACL and flow-log defects, built with
boto3 (against moto), and the findings each defect must produce. Everything not planted is
built right: those groups, ACLs and VPCs must produce no finding.

    app 10.0.0.0/16 --pcx_db-- db 10.1.0.0/16        (routed both ways, active)
        \\--pcx_cache-- cache 10.2.0.0/16           (routed both ways, active)
        \\--pcx_old-- old 10.3.0.0/16               (deleted; routes removed)

Planted:
- sg-web (app): tcp 22 from 0.0.0.0/0                       -> sg.open_to_world (auto-fix)
- sg-wide (app): all traffic from 10.1.0.0/16               -> sg.peer_all_traffic
                 tcp 8080 from 10.0.0.0/8                   -> sg.peer_supernet
- sg-legacy (app): tcp 5432 from old's group (peering gone) -> sg.stale_peer_reference (auto)
- db's flow log records REJECT only                         -> flowlogs.disabled on db
- cache's subnet ACL lets redis in and only redis out       -> nacl.blocks_peer: replies out,
  (and cache, which may open redis connections to app,      -> nacl.blocks_peer: replies in)
Clean siblings: https from the world, https from db's block, postgres from db's group
(live peering), redis from app's subnet, app's and db's default ACLs, app's VPC flow log,
cache's subnet flow log (its only subnet), old (no active peering: not judged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.integration import awsnet

Expected = tuple[str, str, str]  # (check id, resource id, rule id or ACL direction/kind)
CHECKED = ("sg.", "nacl.", "flowlogs.")


@dataclass
class World:
    vpc: dict[str, awsnet.Vpc] = field(default_factory=dict)
    subnet: dict[str, str] = field(default_factory=dict)
    pcx: dict[str, str] = field(default_factory=dict)
    sg: dict[str, str] = field(default_factory=dict)
    rule: dict[str, str] = field(default_factory=dict)  # name -> rule id
    acl: dict[str, str] = field(default_factory=dict)
    flow_log: dict[str, str] = field(default_factory=dict)
    expected: set[Expected] = field(default_factory=set)

    @property
    def revocable(self) -> set[str]:
        """The rule ids fix mode must revoke, and no other."""
        return {self.rule["ssh_world"], self.rule["stale_pg"]}


def rule_ids(ec2: Any, group_id: str) -> dict[str, dict[str, Any]]:
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    return {r["SecurityGroupRuleId"]: r for r in rules["SecurityGroupRules"]}


def _ingress(ec2: Any, group: str, perm: dict[str, Any]) -> str:
    before = set(rule_ids(ec2, group))
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[perm])
    (new,) = set(rule_ids(ec2, group)) - before
    return new


def tcp(
    port: int, cidr: str | None = None, group: str | None = None, desc: str = ""
) -> dict[str, Any]:
    perm: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port}
    extra = {"Description": desc} if desc else {}
    if cidr:
        perm["IpRanges"] = [{"CidrIp": cidr, **extra}]
    if group:
        perm["UserIdGroupPairs"] = [{"GroupId": group, **extra}]
    return perm


def build(ec2: Any) -> World:
    w = World()
    for name, cidr in (("app", "10.0"), ("db", "10.1"), ("cache", "10.2"), ("old", "10.3")):
        w.vpc[name] = awsnet.vpc(ec2, f"{cidr}.0.0/16")
        w.subnet[name] = awsnet.subnet(ec2, w.vpc[name], f"{cidr}.1.0/24")
    for peer in ("db", "cache", "old"):
        w.pcx[peer] = awsnet.peer(ec2, w.vpc["app"], w.vpc[peer])
        awsnet.route(ec2, w.vpc["app"].main_table, w.vpc[peer].cidr, w.pcx[peer])
        awsnet.route(ec2, w.vpc[peer].main_table, w.vpc["app"].cidr, w.pcx[peer])

    def group(name: str, vpc: str) -> str:
        w.sg[name] = ec2.create_security_group(
            GroupName=name, Description=name, VpcId=w.vpc[vpc].vpc_id
        )["GroupId"]
        return w.sg[name]

    web, wide, legacy = group("web", "app"), group("wide", "app"), group("legacy", "app")
    pg, old_pg = group("pg", "db"), group("old-pg", "old")
    redis = group("redis", "cache")
    w.rule["ssh_world"] = _ingress(ec2, web, tcp(22, "0.0.0.0/0", desc="ops, temporary"))
    w.rule["https_world"] = _ingress(ec2, web, tcp(443, "0.0.0.0/0"))
    w.rule["https_db"] = _ingress(ec2, web, tcp(443, "10.1.0.0/16"))
    w.rule["all_db"] = _ingress(
        ec2, wide, {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.1.0.0/16"}]}
    )
    w.rule["alt_supernet"] = _ingress(ec2, wide, tcp(8080, "10.0.0.0/8"))
    w.rule["stale_pg"] = _ingress(ec2, legacy, tcp(5432, group=old_pg, desc="old reporting"))
    w.rule["live_pg"] = _ingress(ec2, legacy, tcp(5432, group=pg))
    w.rule["redis_app"] = _ingress(ec2, redis, tcp(6379, "10.0.1.0/24"))
    # The old peering goes (its routes with it); the reference to its group stays.
    for table, cidr in (
        (w.vpc["app"].main_table, "10.3.0.0/16"),
        (w.vpc["old"].main_table, "10.0.0.0/16"),
    ):
        ec2.delete_route(RouteTableId=table, DestinationCidrBlock=cidr)
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=w.pcx["old"])

    # Network ACLs: cache's subnet on its own ACL, redis only, both ways.
    acl = ec2.create_network_acl(VpcId=w.vpc["cache"].vpc_id)["NetworkAcl"]["NetworkAclId"]
    for egress in (False, True):
        ec2.create_network_acl_entry(
            NetworkAclId=acl,
            RuleNumber=100,
            Protocol="6",
            RuleAction="allow",
            Egress=egress,
            CidrBlock="10.0.0.0/16",
            PortRange={"From": 6379, "To": 6379},
        )
    (assoc,) = [
        a["NetworkAclAssociationId"]
        for a in ec2.describe_network_acls(
            Filters=[{"Name": "association.subnet-id", "Values": [w.subnet["cache"]]}]
        )["NetworkAcls"][0]["Associations"]
        if a["SubnetId"] == w.subnet["cache"]
    ]
    ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=acl)
    w.acl["cache"] = acl

    # Flow logs: app all; db REJECT only; cache on its one subnet; old none.
    w.flow_log["app"] = awsnet.flow_log(ec2, w.vpc["app"].vpc_id)
    w.flow_log["db"] = awsnet.flow_log(ec2, w.vpc["db"].vpc_id, "REJECT")
    w.flow_log["cache"] = awsnet.flow_log(ec2, w.subnet["cache"])

    w.expected = {
        ("sg.open_to_world", web, w.rule["ssh_world"]),
        ("sg.peer_all_traffic", wide, w.rule["all_db"]),
        ("sg.peer_supernet", wide, w.rule["alt_supernet"]),
        ("sg.stale_peer_reference", legacy, w.rule["stale_pg"]),
        ("flowlogs.disabled", w.vpc["db"].vpc_id, ""),
        ("nacl.blocks_peer", acl, "outbound replies"),
        ("nacl.blocks_peer", acl, "inbound replies"),
    }
    return w


def found(findings: Any) -> set[Expected]:
    """(check id, resource id, rule id or direction) of the SG, NACL and flow-log findings
    (a list of Finding, or of their public JSON)."""
    out = set()
    for f in findings:
        body = f if isinstance(f, dict) else f.to_json()
        if not body["check_id"].startswith(CHECKED):
            continue
        if body["check_id"].startswith("sg."):
            detail = body["rule_id"]
        elif body["check_id"].startswith("nacl."):
            detail = f"{body['direction']} {body['blocked']}"
        else:
            detail = ""
        out.add((body["check_id"], body["resource_id"], detail))
    return out
