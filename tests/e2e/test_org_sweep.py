"""The sweep with MemberRoleName, through the template's handler: the far side's missing
return route is announced as the far account's, and resolved once it is added there."""

from __future__ import annotations

import boto3

from peerguard_lab.stack import Stack
from tests.e2e.test_acceptance import schedule_event
from tests.integration.test_org_moto import REGION, cross_account, session_in

FAR = "210987654321"


def test_the_sweep_announces_the_far_sides_gap_and_resolves_it_when_fixed_there(
    aws: None,
) -> None:
    # Given A peering with B (another account), B without the return route
    b_ec2 = session_in(FAR).client("ec2")
    a_ec2 = boto3.client("ec2", region_name=REGION)
    net = cross_account(a_ec2, b_ec2, FAR, return_route=False)
    stack = Stack({"MemberRoleName": "PeerGuardMember"})
    topic = stack.subscribe_queue()

    # When the sweep runs
    assert stack.environment("SweepFunction")["PEERGUARD_MEMBER_ROLE_NAME"] == "PeerGuardMember"
    stack.invoke("SweepFunction", schedule_event())

    # Then B's table is announced, as B's, with the call for B to make
    routes = [
        m["body"] for m in stack.messages(topic) if m["body"]["check_id"].startswith("route.")
    ]
    assert [(r["check_id"], r["resource_id"], r["account_id"], r["status"]) for r in routes] == [
        ("route.missing_reciprocal", net["b_table"], FAR, "new")
    ]

    # When B adds it, and the sweep runs again
    b_ec2.create_route(
        RouteTableId=net["b_table"],
        DestinationCidrBlock="10.20.0.0/16",
        VpcPeeringConnectionId=net["pcx"],
    )
    stack.invoke("SweepFunction", schedule_event())

    # Then it is resolved
    routes = [
        m["body"] for m in stack.messages(topic) if m["body"]["check_id"].startswith("route.")
    ]
    assert [(r["resource_id"], r["status"]) for r in routes] == [(net["b_table"], "resolved")]
