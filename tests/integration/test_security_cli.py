"""`peerguard audit --format json` and `--mode fix` on accounts the code has never seen:
random hub-and-spoke topologies (seeded), each with security-group, network-ACL and
flow-log defects planted at random among clean decoys. Every planted defect is found, no
clean group, ACL or VPC is reported, and fix mode revokes exactly the offending rules."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from peerguard import cli
from tests.integration import awsnet
from tests.integration.securenet import Expected, found, rule_ids, tcp

REGION = "us-east-1"
DB_PORTS = (1433, 3306, 5432, 6379, 27017)


@dataclass
class Planted:
    expected: set[Expected] = field(default_factory=set)
    revocable: set[str] = field(default_factory=set)
    groups: list[str] = field(default_factory=list)


def random_account(ec2: Any, seed: int) -> Planted:
    rng = random.Random(seed)
    p = Planted()
    n = rng.randint(3, 5)
    vpcs = [awsnet.vpc(ec2, f"10.{i}.0.0/16") for i in range(n)]
    subnets = {
        i: [awsnet.subnet(ec2, v, f"10.{i}.{k}.0/24") for k in range(1, rng.randint(2, 3))]
        for i, v in enumerate(vpcs)
    }
    pcx = {}
    for i in range(1, n):  # vpc 0 is the hub
        pcx[i] = awsnet.peer(ec2, vpcs[0], vpcs[i])
        awsnet.route(ec2, vpcs[0].main_table, vpcs[i].cidr, pcx[i])
        awsnet.route(ec2, vpcs[i].main_table, vpcs[0].cidr, pcx[i])
    old = awsnet.vpc(ec2, "172.20.0.0/16")
    gone = awsnet.peer(ec2, vpcs[0], old)
    old_group = ec2.create_security_group(GroupName="old", Description="o", VpcId=old.vpc_id)
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=gone)
    logs = boto3.client("logs", region_name=REGION)
    for kind in ("ALL", "REJECT", "ACCEPT"):
        logs.create_log_group(logGroupName=f"/fl/{kind}")

    def add(group: str, perm: dict[str, Any]) -> str:
        before = set(rule_ids(ec2, group))
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[perm])
        (new,) = set(rule_ids(ec2, group)) - before
        return new

    for i, v in enumerate(vpcs):
        peers = [0] if i else list(range(1, n))
        for g in range(rng.randint(1, 3)):
            group = ec2.create_security_group(
                GroupName=f"g{i}-{g}", Description="x", VpcId=v.vpc_id
            )["GroupId"]
            p.groups.append(group)
            # Clean decoys: https from anywhere, one port from a peer subnet, from the
            # whole peer for a port range short of every port, from this VPC itself.
            peer = rng.choice(peers)
            add(group, tcp(443, "0.0.0.0/0"))
            add(group, tcp(rng.randint(1024, 65535), f"10.{peer}.1.0/24"))
            add(group, {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8100,
                        "IpRanges": [{"CidrIp": f"10.{peer}.0.0/16"}]})  # fmt: skip
            add(group, {"IpProtocol": "-1", "IpRanges": [{"CidrIp": v.cidr}]})
            # Only the hub was ever peered with old: only its groups can reference old's.
            menu = ["world", "all", "supernet", "none"] + (["stale"] if i == 0 else [])
            for defect in rng.sample(menu, 2):
                if defect == "world":
                    port = rng.choice((22, 3389, *DB_PORTS))
                    rid = add(group, tcp(port, "0.0.0.0/0"))
                    p.expected.add(("sg.open_to_world", group, rid))
                    p.revocable.add(rid)
                elif defect == "all":
                    rid = add(group, {"IpProtocol": "-1",
                                      "IpRanges": [{"CidrIp": f"10.{peer}.0.0/16"}]})  # fmt: skip
                    p.expected.add(("sg.peer_all_traffic", group, rid))
                elif defect == "supernet":
                    rid = add(group, tcp(rng.randint(1024, 2000), "10.0.0.0/8"))
                    p.expected.add(("sg.peer_supernet", group, rid))
                elif defect == "stale":
                    rid = add(group, tcp(5432, group=old_group["GroupId"]))
                    p.expected.add(("sg.stale_peer_reference", group, rid))
                    p.revocable.add(rid)
        # Flow logs: most VPCs record ALL; some record half, or nothing.
        log = rng.choice(["ALL", "ALL", "REJECT", "ACCEPT", None])
        if log is not None:
            ec2.create_flow_logs(
                ResourceIds=[v.vpc_id],
                ResourceType="VPC",
                TrafficType=log,
                LogGroupName=f"/fl/{log}",
                DeliverLogsPermissionArn=awsnet.FLOW_LOG_ROLE,
            )
        if log != "ALL":
            p.expected.add(("flowlogs.disabled", v.vpc_id, ""))
        # A spoke's ACL may deny the hub: its own ACL on its first subnet.
        if i and rng.random() < 0.5:
            acl = ec2.create_network_acl(VpcId=v.vpc_id)["NetworkAcl"]["NetworkAclId"]
            entries = [
                (90, "deny", vpcs[0].cidr, False),
                (100, "allow", "0.0.0.0/0", False),
                (100, "allow", "0.0.0.0/0", True),
            ]
            for number, action, cidr, egress in entries:
                ec2.create_network_acl_entry(
                    NetworkAclId=acl,
                    RuleNumber=number,
                    Protocol="-1",
                    RuleAction=action,
                    Egress=egress,
                    CidrBlock=cidr,
                )
            first = subnets[i][0]
            (assoc,) = [
                a["NetworkAclAssociationId"]
                for a in ec2.describe_network_acls(
                    Filters=[{"Name": "association.subnet-id", "Values": [first]}]
                )["NetworkAcls"][0]["Associations"]
                if a["SubnetId"] == first
            ]
            ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=acl)
            p.expected.add(("nacl.blocks_peer", acl, "inbound all"))
    return p


def audit_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    code = cli.main(["audit", "--region", REGION, "--format", "json", *args])
    out, err = capsys.readouterr()
    assert code in (cli.EXIT_OK, cli.EXIT_FINDINGS), err
    return code, json.loads(out)


@pytest.mark.parametrize("seed", [7, 2024, 31337])
def test_every_planted_defect_is_found_and_no_clean_part_is_reported(
    ec2: Any, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    planted = random_account(ec2, seed)

    code, body = audit_json(capsys)

    assert found(body["findings"]) == planted.expected
    assert body["summary"]["warnings"] == []
    for f in body["findings"]:
        if f["check_id"].startswith(("sg.", "nacl.", "flowlogs.")):
            assert f["resource_id"] and f["detail"] and f["account_id"] == "123456789012"
            assert f["peering_connection_id"] or f["check_id"] == "sg.open_to_world"
    high = {"sg.open_to_world", "sg.peer_all_traffic"}
    assert code == (cli.EXIT_FINDINGS if {e[0] for e in planted.expected} & high else cli.EXIT_OK)


@pytest.mark.parametrize("seed", [7, 2024, 31337])
def test_fix_mode_revokes_exactly_the_offending_rules_and_nothing_else(
    ec2: Any, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    planted = random_account(ec2, seed)
    before = {r: v for g in planted.groups for r, v in rule_ids(ec2, g).items()}
    acls = ec2.describe_network_acls()["NetworkAcls"]
    logs = ec2.describe_flow_logs()["FlowLogs"]
    tables = ec2.describe_route_tables()["RouteTables"]

    _, body = audit_json(capsys, "--mode", "fix", "--max-changes", "100")

    after = {r: v for g in planted.groups for r, v in rule_ids(ec2, g).items()}
    assert set(before) - set(after) == planted.revocable
    assert set(after) <= set(before) and all(after[r] == before[r] for r in after)
    assert ec2.describe_network_acls()["NetworkAcls"] == acls  # ACLs: notify only
    assert len(ec2.describe_flow_logs()["FlowLogs"]) == len(logs)  # no destination given
    assert ec2.describe_route_tables()["RouteTables"] == tables
    applied = [o for o in body["remediation"]["outcomes"] if o["status"] == "applied"]
    assert sorted(o["call"]["parameters"]["SecurityGroupRuleIds"][0] for o in applied) == sorted(
        planted.revocable
    )
    assert all(o["undo"]["action"] == "AuthorizeSecurityGroupIngress" for o in applied)
    # what is left is the rest of what was planted
    left = found(body["findings"])
    assert left == {e for e in planted.expected if e[2] not in planted.revocable}
