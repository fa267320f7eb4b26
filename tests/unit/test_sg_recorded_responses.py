"""Recorded EC2 responses for security groups, network ACLs, flow logs and stale references
(../shared/realdata/ec2-api-responses, see its PROVENANCE.md) through parse and the checks.

Two sources: Cloud Custodian's placebo recordings of real calls (`custodian__*.json`) and
the AWS CLI's own examples (`awscli__*.rst`, the JSON after "Output::"). Two of AWS's
examples carry typos that make them invalid JSON (a trailing comma in
describe-security-groups, a missing quote in describe-stale-security-groups): `rst_json`
repairs exactly those two kinds, nothing else.

The recordings live outside this repository: on a clone without them these tests skip,
but never in CI (CI=true), where a missing recording is a failure.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from peerguard.aws import parse
from peerguard.domain.checks import CheckContext
from peerguard.domain.findings import Call
from peerguard.domain.model import Snapshot
from peerguard.domain.plans.rails import failure_in_response, undo_from_response
from tests.unit.netbuilder import run

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "ec2-api-responses"
REGION = "us-east-1"


def _file(name: str) -> Path:
    path = REALDATA / name
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"recorded response missing in CI: {path}")
        pytest.skip(f"realdata not available: {path}")
    return path


def recorded(name: str) -> dict[str, Any]:
    """A Custodian placebo recording: {"status_code": 200, "data": <boto3 response>}."""
    wrapper = json.loads(_file(name).read_text())
    assert wrapper["status_code"] == 200
    return wrapper["data"]  # type: ignore[no-any-return]


def rst_json(name: str, index: int = 0) -> dict[str, Any]:
    """The index-th JSON object after an "Output::" in an AWS CLI example."""
    text = _file(name).read_text()
    blocks = []
    for part in text.split("Output::")[1:]:
        start = part.index("{")
        depth, end = 0, start
        for i, ch in enumerate(part[start:], start):
            depth += {"{": 1, "}": -1}.get(ch, 0)
            if depth == 0:
                end = i + 1
                break
        blocks.append(part[start:end])
    raw = blocks[index]
    raw = re.sub(r",(\s*[}\]])", r"\1", raw)  # trailing comma
    raw = re.sub(r'(":\s*)([A-Za-z0-9]+)"', r'\1"\2"', raw)  # "Description": MySG1"
    return json.loads(raw)  # type: ignore[no-any-return]


def peering(pcx: str, a: tuple[str, str], b: tuple[str, str], account: str) -> dict[str, Any]:
    """A DescribeVpcPeeringConnections page joining two recorded VPCs (the recordings of
    security groups carry no peering: this is the assumption each test states)."""
    side = lambda vpc, cidr: {"VpcId": vpc, "OwnerId": account, "CidrBlock": cidr}  # noqa: E731
    return {
        "VpcPeeringConnections": [
            {
                "VpcPeeringConnectionId": pcx,
                "Status": {"Code": "active"},
                "RequesterVpcInfo": side(*a),
                "AccepterVpcInfo": side(*b),
            }
        ]
    }


# -- security groups -------------------------------------------------------------------------


def test_security_group_rules_keep_their_ids_direction_and_reference() -> None:
    page = rst_json("awscli__describe-security-group-rules.rst")
    rules = [parse.security_group_rule(i) for i in page["SecurityGroupRules"]]

    assert [(r.rule_id, r.egress, r.protocol, r.cidr) for r in rules] == [
        ("sgr-abcdef01234567890", False, "-1", None),
        ("sgr-bcdef01234567890a", True, "-1", "::/0"),
        ("sgr-cdef01234567890ab", True, "-1", "0.0.0.0/0"),
    ]
    ref = rules[0]
    assert (ref.referenced_group_id, ref.referenced_owner_id) == (
        "sg-1234567890abcdef0",
        "111122223333",
    )
    assert ref.all_traffic and ref.ports == (0, 65535) and ref.what == "all traffic"


def test_rules_from_describe_security_groups_are_split_per_source_without_ids() -> None:
    page = rst_json("awscli__describe-security-groups.rst")
    (group,) = [parse.security_group(i, REGION) for i in page["SecurityGroups"]]

    assert (group.group_id, group.vpc_id, group.owner_id, group.name) == (
        "sg-903004f8",
        "vpc-1a2b3c4d",
        "123456789012",
        "MySecurityGroup",
    )
    assert [(r.egress, r.what, r.source, r.description, r.rule_id) for r in group.rules] == [
        (False, "all traffic", "security group sg-903004f8 of account 123456789012", "", None),
        (False, "tcp port 22", "203.0.113.0/24", "Access from NY office", None),
        (True, "all traffic", "0.0.0.0/0", "", None),
    ]


def _custodian_groups(peer_of: dict[str, tuple[str, str]]) -> Snapshot:
    """Custodian's test_only_ports_and_cidr_ingress groups; each VPC of `peer_of` (ASSUMED,
    not in the recording) peered with the given (vpc, cidr)."""
    data = recorded(
        "custodian__test_only_ports_and_cidr_ingress__ec2.DescribeSecurityGroups_1.json"
    )
    account = data["SecurityGroups"][0]["OwnerId"]
    pages = [
        peering(f"pcx-{i}", (vpc, "172.31.0.0/16"), peer, account)
        for i, (vpc, peer) in enumerate(sorted(peer_of.items()))
    ]
    return parse.snapshot_from_responses(account, REGION, peerings=pages, security_groups=[data])


def test_custodians_groups_open_to_the_world_are_found_on_peered_vpcs_only() -> None:
    # ASSUMED: vpc-6b7e9b0c and vpc-007084954cd5c3c96 are peered (vpc-0156... is not)
    snap = _custodian_groups(
        {
            "vpc-6b7e9b0c": ("vpc-peer1", "10.9.0.0/16"),
            "vpc-007084954cd5c3c96": ("vpc-peer2", "10.2.0.0/16"),
        }
    )

    found = run("sg.open_to_world", snap)

    by_group = {f.resource_id: f for f in found}
    # sg_jantmantest_1: tcp 22 from 0.0.0.0/0 (its 80 and 443 are fine)
    # c7n-only-ports-and-cidr-test: tcp 1234-4321 from 0.0.0.0/0 spans 1433, 3306 and 3389
    assert sorted(by_group) == ["sg-02a60363e2b087ff8", "sg-0d40e803b8b644e79"]
    assert "tcp port 22 (admin port 22)" in by_group["sg-0d40e803b8b644e79"].detail
    assert "the admin port 3389 and the database ports 1433, 3306" in (
        by_group["sg-02a60363e2b087ff8"].detail
    )
    # Read without DescribeSecurityGroupRules: reported, revoked only by a person
    rem = by_group["sg-0d40e803b8b644e79"].remediation
    assert rem is not None and not rem.automatic
    assert rem.parameters["IpPermissions"] == [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    ]


def test_custodians_tcp_0_62000_from_the_peer_is_not_every_port() -> None:
    snap = _custodian_groups({"vpc-007084954cd5c3c96": ("vpc-peer2", "10.2.0.0/16")})
    assert run("sg.peer_all_traffic", snap) == []  # 62001-65535 stay closed
    assert run("sg.peer_supernet", snap) == []  # exactly the peer's block


def test_custodians_cross_referenced_groups_in_one_vpc_are_not_stale() -> None:
    data = recorded("custodian__sg_used_cross_ref__ec2.DescribeSecurityGroups_1.json")
    snap = parse.snapshot_from_responses("644160558196", REGION, security_groups=[data])
    oriented = snap.security_groups["sg-073c8f4fb3b58731d"]  # type: ignore[index]
    (egress,) = oriented.rules
    assert (egress.egress, egress.referenced_group_id) == (True, "sg-01ba3c57af54ef22c")
    assert run("sg.stale_peer_reference", snap) == []


def test_the_stale_list_marks_the_rule_it_names_as_stale() -> None:
    page = rst_json("awscli__describe-stale-security-groups.rst")
    stale = [r for item in page["StaleSecurityGroupSet"] for r in parse.stale_references(item)]
    assert [(s.group_id, s.egress, s.referenced_group_id, s.peering_id) for s in stale] == [
        ("sg-fe6fba9a", True, "sg-ef6fba8b", "pcx-b04deed9"),
        ("sg-5fa68d3a", False, "sg-279ab042", "pcx-b04deed9"),
    ]

    # ASSUMED: sg-5fa68d3a's rule, as DescribeSecurityGroupRules would list it (another
    # account's group, which this account cannot describe), and the peering still active.
    account, peer_account = "123456789012", "210987654321"
    groups = {
        "SecurityGroups": [
            {"GroupId": "sg-5fa68d3a", "VpcId": "vpc-11223344", "OwnerId": account,
             "GroupName": "MySG2"},
        ]
    }  # fmt: skip
    rules = {
        "SecurityGroupRules": [
            {"SecurityGroupRuleId": "sgr-0ssh", "GroupId": "sg-5fa68d3a", "IsEgress": False,
             "IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "ReferencedGroupInfo": {"GroupId": "sg-279ab042", "UserId": peer_account}},
            {"SecurityGroupRuleId": "sgr-0https", "GroupId": "sg-5fa68d3a", "IsEgress": False,
             "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "ReferencedGroupInfo": {"GroupId": "sg-279ab042", "UserId": peer_account}},
        ]
    }  # fmt: skip
    pcx = peering(
        "pcx-b04deed9", ("vpc-11223344", "10.0.0.0/16"), ("vpc-7a20e51f", "10.7.0.0/16"), account
    )
    pcx["VpcPeeringConnections"][0]["AccepterVpcInfo"]["OwnerId"] = peer_account
    snap = parse.snapshot_from_responses(
        account,
        REGION,
        peerings=[pcx],
        security_groups=[groups],
        security_group_rules=[rules],
        stale_security_groups=[page],
    )

    (f,) = run("sg.stale_peer_reference", snap)

    assert (f.resource_id, f.extra["rule_id"], f.peering_connection_id) == (
        "sg-5fa68d3a",
        "sgr-0ssh",  # the port-22 rule EC2 names, not its port-443 sibling
        "pcx-b04deed9",
    )
    assert "referenced group is gone from the peer VPC (pcx-b04deed9 is still active)" in f.detail
    assert f.remediation is not None and f.remediation.automatic


# -- network ACLs ------------------------------------------------------------------------------


def test_network_acls_keep_entries_ipv6_and_associations() -> None:
    page = rst_json("awscli__describe-network-acls.rst")
    first, second = (parse.network_acl(i) for i in page["NetworkAcls"])

    assert (first.acl_id, first.vpc_id, first.is_default) == (
        "acl-0ea1f54ca7EXAMPLE",
        "vpc-06e4ab6c6cEXAMPLE",
        True,
    )
    assert first.subnet_ids == ("subnet-0931fc2fa5EXAMPLE",)
    assert [(e.rule_number, e.egress, e.action) for e in first.direction(False)] == [
        (100, False, "allow"),
        (32767, False, "deny"),
    ]
    assert [e.cidr for e in second.direction(True)] == ["0.0.0.0/0", "::/0", "0.0.0.0/0", "::/0"]
    assert second.subnet_ids == ()


@pytest.mark.parametrize("flight", ["test_network_acl_s3_missing", "test_network_acl_s3_present"])
def test_custodians_default_acls_allow_everything_so_block_no_peer(flight: str) -> None:
    data = recorded(f"custodian__{flight}__ec2.DescribeNetworkAcls_1.json")
    (acl,) = (parse.network_acl(i) for i in data["NetworkAcls"])
    vpc = acl.vpc_id
    # ASSUMED: that VPC, with one subnet, peered and routed with a 10.9.0.0/16 peer
    snap = parse.snapshot_from_responses(
        "644160558196",
        REGION,
        peerings=[
            peering("pcx-1", (vpc, "172.31.0.0/16"), ("vpc-peer", "10.9.0.0/16"), "644160558196")
        ],
        route_tables=[
            {
                "RouteTables": [
                    {
                        "RouteTableId": "rtb-1",
                        "VpcId": vpc,
                        "Associations": [{"Main": True}],
                        "Routes": [
                            {"DestinationCidrBlock": "172.31.0.0/16", "GatewayId": "local"},
                            {
                                "DestinationCidrBlock": "10.9.0.0/16",
                                "VpcPeeringConnectionId": "pcx-1",
                            },
                        ],
                    },
                    {
                        "RouteTableId": "rtb-2",
                        "VpcId": "vpc-peer",
                        "OwnerId": "644160558196",
                        "Associations": [{"Main": True}],
                        "Routes": [
                            {"DestinationCidrBlock": "10.9.0.0/16", "GatewayId": "local"},
                            {
                                "DestinationCidrBlock": "172.31.0.0/16",
                                "VpcPeeringConnectionId": "pcx-1",
                            },
                        ],
                    },
                ]
            }
        ],
        subnets=[
            {
                "Subnets": [
                    {"SubnetId": "subnet-1", "VpcId": vpc, "CidrBlock": "172.31.1.0/24"},
                    {"SubnetId": "subnet-2", "VpcId": "vpc-peer", "CidrBlock": "10.9.1.0/24"},
                ]
            }
        ],
        network_acls=[
            data,
            {
                "NetworkAcls": [
                    {**data["NetworkAcls"][0], "VpcId": "vpc-peer", "NetworkAclId": "acl-peer"}
                ]
            },
        ],
    )
    assert acl.is_default and len(acl.entries) == 4
    assert run("nacl.blocks_peer", snap) == []


# -- flow logs --------------------------------------------------------------------------------


def test_flow_logs_of_every_recording_parse() -> None:
    cwl = recorded("custodian__test_vpc_flow_logs__ec2.DescribeFlowLogs_1.json")
    s3 = recorded("custodian__test_vpc_flow_log_s3_dest__ec2.DescribeFlowLogs_1.json")
    logs = [parse.flow_log(i) for page in (cwl, s3) for i in page["FlowLogs"]]
    assert [
        (fl.flow_log_id, fl.resource_id, fl.destination_type, fl.destination) for fl in logs
    ] == [
        ("fl-0df85cc33e19397d2", "vpc-040373ba42a66e36e", "cloud-watch-logs", "example"),
        ("fl-069df76b301f1327d", "vpc-065087ed31e016b80", "cloud-watch-logs", "example"),
        ("fl-0873b1d6eacd0a14d", "vpc-d2d616b5", "s3", "arn:aws:s3:::c7n-vpc-flow-logs"),
    ]
    assert all(fl.captures_all for fl in logs)


def test_an_accept_only_s3_log_does_not_count_and_a_subnet_log_is_on_its_subnet() -> None:
    page = rst_json("awscli__describe-flow-logs.rst")
    account = "123456789012"
    vpc = "vpc-00112233445566778"
    snap = parse.snapshot_from_responses(
        account,
        REGION,
        peerings=[peering("pcx-1", (vpc, "10.0.0.0/16"), ("vpc-peer", "10.9.0.0/16"), account)],
        flow_logs=[page],
    )
    # ASSUMED: vpc-00112233445566778 (its ACCEPT-only log to S3) peered with vpc-peer (none)
    found = {f.resource_id: f for f in run("flowlogs.disabled", snap)}
    assert sorted(found) == sorted(["vpc-peer", vpc])
    assert "fl-01234567890123456 records ACCEPT traffic only" in found[vpc].detail
    assert snap.flow_logs_on("subnet-12345678901234567")[0].captures_all


def test_create_flow_logs_answers_give_the_undo_or_the_failure() -> None:
    call = Call("CreateFlowLogs", {"ResourceIds": ["vpc-1"]})
    for answer in (
        recorded("custodian__test_vpc_set_flow_logs_s3__ec2.CreateFlowLogs_1.json"),
        rst_json("awscli__create-flow-logs.rst"),
    ):
        undo = undo_from_response(call, answer)
        assert undo is not None and undo.action == "DeleteFlowLogs"
        assert undo.parameters == {"FlowLogIds": answer["FlowLogIds"]}
        assert failure_in_response(call, answer) is None
    refused = {
        "FlowLogIds": [],
        "Unsuccessful": [
            {"Error": {"Code": "400", "Message": "LogDestination: b does not exist."},
             "ResourceId": "vpc-1"}
        ],
    }  # fmt: skip
    assert failure_in_response(call, refused) == ("400", "vpc-1: LogDestination: b does not exist.")


def test_a_recorded_revoke_answer_is_no_failure() -> None:
    answer = recorded(
        "custodian__test_security_group_ingress_filter__ec2.RevokeSecurityGroupIngress_1.json"
    )
    call = Call(
        "RevokeSecurityGroupIngress", {"GroupId": "sg-1", "SecurityGroupRuleIds": ["sgr-1"]}
    )
    assert failure_in_response(call, answer) is None
    assert undo_from_response(call, answer) is None  # the planned undo stands


def test_the_recordings_give_checks_nothing_to_say_when_not_peered() -> None:
    data = recorded(
        "custodian__test_only_ports_and_cidr_ingress__ec2.DescribeSecurityGroups_1.json"
    )
    snap = parse.snapshot_from_responses(
        data["SecurityGroups"][0]["OwnerId"], REGION, security_groups=[data]
    )
    ids = {f.check_id for c in ("sg.open_to_world", "sg.peer_all_traffic", "sg.peer_supernet")
           for f in run(c, snap, CheckContext())}  # fmt: skip
    assert ids == set()
