"""End to end: the security-group, network-ACL and flow-log calls, as CloudTrail records
them (the samples in events/ with real ids), routed by the template's rule to the change
auditor and audited in scope. A rule open to the internet is announced at once (and in
fix mode revoked at once); the other findings wait the grace period, then are confirmed
on the live state; AuthorizeSecurityGroupEgress is not one of the calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from peerguard_lab.events import sample
from peerguard_lab.stack import sqs_clock_ahead
from peerguard_lab.template import TEMPLATE
from tests.e2e.conftest import World
from tests.integration import securenet
from tests.integration.securenet import rule_ids

pytestmark = pytest.mark.skipif(not TEMPLATE.exists(), reason="template.yaml is not written yet")

AUDITOR = "ChangeAuditorFunction"
SAMPLE_SG, SAMPLE_RULE = "sg-0a1b2c3d4e5f67890", "sgr-0a1b2c3d4e5f67890"
SAMPLE_ACL, SAMPLE_FL, SAMPLE_VPC = (
    "acl-0a1b2c3d4e5f67890",
    "fl-0a1b2c3d4e5f67890",
    "vpc-0a1b2c3d4e5f67890",
)


@pytest.fixture
def net(ec2: Any) -> securenet.World:
    return securenet.build(ec2)


def events(w: securenet.World) -> dict[str, tuple[dict[str, Any], str]]:
    """Each call's sample with this account's ids, and the check its scope must reach."""
    on_web = {SAMPLE_SG: w.sg["web"], SAMPLE_RULE: w.rule["ssh_world"]}
    on_acl = {SAMPLE_ACL: w.acl["cache"]}
    return {
        "AuthorizeSecurityGroupIngress": (sample("AuthorizeSecurityGroupIngress", on_web), "sg.open_to_world"),  # noqa: E501
        "RevokeSecurityGroupIngress": (sample("RevokeSecurityGroupIngress", {SAMPLE_SG: w.sg["wide"]}), "sg.peer_all_traffic"),  # noqa: E501
        "ModifySecurityGroupRules": (sample("ModifySecurityGroupRules", {SAMPLE_SG: w.sg["legacy"], SAMPLE_RULE: w.rule["stale_pg"]}), "sg.stale_peer_reference"),  # noqa: E501
        "CreateNetworkAclEntry": (sample("CreateNetworkAclEntry", on_acl), "nacl.blocks_peer"),
        "ReplaceNetworkAclEntry": (sample("ReplaceNetworkAclEntry", on_acl), "nacl.blocks_peer"),
        "DeleteNetworkAclEntry": (sample("DeleteNetworkAclEntry", on_acl), "nacl.blocks_peer"),
        "ReplaceNetworkAclAssociation": (sample("ReplaceNetworkAclAssociation", on_acl), "nacl.blocks_peer"),  # noqa: E501
        "CreateFlowLogs": (sample("CreateFlowLogs", {SAMPLE_VPC: w.vpc["db"].vpc_id, SAMPLE_FL: w.flow_log["db"]}), "flowlogs.disabled"),  # noqa: E501
        "DeleteFlowLogs": (sample("DeleteFlowLogs", {SAMPLE_FL: w.flow_log["db"]}), "flowlogs.disabled"),  # noqa: E501
    }  # fmt: skip


def checks_of(world: World) -> list[str]:
    return sorted(m["body"]["check_id"] for m in world.sns())


@pytest.mark.parametrize(
    "call",
    [
        "AuthorizeSecurityGroupIngress",
        "RevokeSecurityGroupIngress",
        "ModifySecurityGroupRules",
        "CreateNetworkAclEntry",
        "ReplaceNetworkAclEntry",
        "DeleteNetworkAclEntry",
        "ReplaceNetworkAclAssociation",
        "CreateFlowLogs",
        "DeleteFlowLogs",
    ],
)
def test_each_call_is_audited_in_scope_and_reaches_its_check(
    deploy: Callable[..., World], net: securenet.World, call: str
) -> None:
    world = deploy(GracePeriodMinutes="0")
    event, check_id = events(net)[call]
    assert world.stack.routes(event) == [AUDITOR]

    result = world.stack.deliver(event)[AUDITOR]

    assert result["status"] == "audited", result
    assert check_id in checks_of(world)


def test_a_new_world_open_rule_is_announced_at_once_and_the_rest_waits(
    deploy: Callable[..., World], net: securenet.World
) -> None:
    world = deploy()  # the default grace period
    event, _ = events(net)["AuthorizeSecurityGroupIngress"]

    result = world.stack.deliver(event)[AUDITOR]

    assert checks_of(world) == ["sg.open_to_world"]  # at once
    assert result["deferred"] >= 3  # app's other group findings wait
    with sqs_clock_ahead(10 * 60 + 1):
        (parked,) = world.stack.messages("GraceQueue")
    assert parked["body"]["scope"]["security_group_ids"] == [net.sg["web"]]

    outcome = world.stack.invoke(AUDITOR, world.stack.sqs_event("GraceQueue", [parked]))

    assert outcome == {"batchItemFailures": []}
    announced = checks_of(world)
    assert {"sg.peer_all_traffic", "sg.peer_supernet", "sg.stale_peer_reference"} <= set(announced)
    assert "sg.open_to_world" not in announced  # confirmed elsewhere: not twice


def test_an_acl_finding_fixed_within_the_grace_period_is_never_announced(
    deploy: Callable[..., World], net: securenet.World, ec2: Any
) -> None:
    world = deploy()
    event, _ = events(net)["CreateNetworkAclEntry"]
    result = world.stack.deliver(event)[AUDITOR]
    assert result["deferred"] >= 2 and "nacl.blocks_peer" not in checks_of(world)
    for egress in (False, True):  # the second half of the change: the ephemeral range
        ec2.create_network_acl_entry(
            NetworkAclId=net.acl["cache"],
            RuleNumber=110,
            Protocol="6",
            RuleAction="allow",
            Egress=egress,
            CidrBlock="10.0.0.0/16",
            PortRange={"From": 1024, "To": 65535},
        )
    with sqs_clock_ahead(10 * 60 + 1):
        (parked,) = world.stack.messages("GraceQueue")

    world.stack.invoke(AUDITOR, world.stack.sqs_event("GraceQueue", [parked]))

    assert "nacl.blocks_peer" not in checks_of(world)


def test_in_fix_mode_a_new_world_open_rule_is_revoked_at_once(
    deploy: Callable[..., World], net: securenet.World, ec2: Any
) -> None:
    world = deploy(Mode="fix")
    event, _ = events(net)["AuthorizeSecurityGroupIngress"]

    world.stack.deliver(event)

    assert net.rule["ssh_world"] not in rule_ids(ec2, net.sg["web"])
    assert net.rule["https_world"] in rule_ids(ec2, net.sg["web"])
    applied = [m["body"] for m in world.sns() if m["body"]["check_id"] == "remediation.applied"]
    assert [b["resource_id"] for b in applied] == [net.sg["web"]]
    assert "authorize-security-group-ingress" in applied[0]["detail"]  # the undo


def test_egress_calls_are_not_routed_to_the_auditor(deploy: Callable[..., World]) -> None:
    world = deploy()
    assert world.stack.routes(sample("not-ours.AuthorizeSecurityGroupEgress")) == []
