"""Every sample in events/ goes through the stack as EventBridge would deliver it; and in fix mode
a route to a deleted peering is removed, recorded and announced."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from peerguard.events import EVENT_NAMES
from peerguard_lab.events import sample
from peerguard_lab.stack import REGION, Stack
from peerguard_lab.template import EVENTS, TEMPLATE
from tests.e2e.conftest import World
from tests.integration import awsnet

pytestmark = pytest.mark.skipif(not TEMPLATE.exists(), reason="template.yaml is not written yet")

AUDITOR = "ChangeAuditorFunction"
# The 24 watched calls, and the two refused calls recorded with an errorCode.
STEMS = [*EVENT_NAMES, "CreateRoute.failed", "CreateVpcPeeringConnection.failed"]


def test_there_is_a_sample_for_every_watched_call() -> None:
    assert all((EVENTS / f"{stem}.json").is_file() for stem in STEMS)


@pytest.mark.parametrize("stem", STEMS)
def test_every_sample_is_processed_even_when_its_ids_do_not_exist(aws: None, stem: str) -> None:
    stack = Stack()
    event = sample(stem)  # the story's ids, none of which exist in moto
    routed = stack.routes(event)
    assert AUDITOR in routed
    unwritten = [fn for fn in routed if not stack.has_handler(fn)]
    if unwritten:
        pytest.skip(f"{', '.join(unwritten)}: handler not written yet")

    results = stack.deliver(event)

    assert set(results) == set(routed)
    assert results[AUDITOR]["status"] in {"audited", "out-of-scope", "ignored", "failed-call"}
    for fn, result in results.items():
        assert isinstance(result, dict) and result.get("status"), (fn, result)


def test_fix_mode_deletes_a_blackhole_route_records_it_and_announces_it(
    deploy: Callable[..., World], ec2: Any
) -> None:
    # Given A and B routed both ways through a peering that is then deleted
    a, b = awsnet.vpc(ec2, "10.0.0.0/16"), awsnet.vpc(ec2, "10.1.0.0/16")
    awsnet.subnet(ec2, a, "10.0.1.0/24")
    awsnet.subnet(ec2, b, "10.1.1.0/24")
    pcx = awsnet.peer(ec2, a, b)
    awsnet.route(ec2, a.main_table, b.cidr, pcx)
    awsnet.route(ec2, b.main_table, a.cidr, pcx)
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    world = deploy(Mode="fix", GracePeriodMinutes="0")
    event = sample("DeleteVpcPeeringConnection", {"pcx-0a1b2c3d4e5f67890": pcx})

    # When CloudTrail's record of the deletion arrives
    result = world.stack.deliver(event)[AUDITOR]

    # Then both routes to the dead peering are gone
    assert result["status"] == "audited"
    tables = ec2.describe_route_tables(RouteTableIds=[a.main_table, b.main_table])["RouteTables"]
    left = [r for t in tables for r in t["Routes"] if r.get("VpcPeeringConnectionId") == pcx]
    assert left == []
    # and each change is recorded, with the event that triggered it and its undo
    items = boto3.client("dynamodb", region_name=REGION).scan(
        TableName=world.stack.physical["StateTable"]
    )["Items"]
    changes = [i for i in items if i["pk"]["S"].startswith("change#")]
    assert len(changes) == 2
    assert {c["trigger"]["S"] for c in changes} == {event["detail"]["eventID"]}
    assert {c["call"]["M"]["action"]["S"] for c in changes} == {"DeleteRoute"}
    assert {c["result"]["S"] for c in changes} == {"applied"}
    # and announced as changes made, not as open findings
    applied = [m for m in world.sns() if m["body"]["check_id"] == "remediation.applied"]
    assert sorted(m["body"]["resource_id"] for m in applied) == sorted([a.main_table, b.main_table])
    assert all(m["attributes"]["severity"]["StringValue"] == "info" for m in applied)
