"""End to end, in-process: template.yaml's resources in moto, a real network change, the sample
CloudTrail event for it routed by the template's rules to the handler, and what reaches Slack
(a loopback server), SNS (an SQS subscriber) and DynamoDB."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest

from peerguard.state.findings import key_of
from peerguard_lab.events import sample
from peerguard_lab.stack import REGION, sqs_clock_ahead
from peerguard_lab.template import TEMPLATE
from tests.e2e.conftest import Pair, World, emf_metrics
from tests.integration import awsnet

pytestmark = pytest.mark.skipif(not TEMPLATE.exists(), reason="template.yaml is not written yet")

AUDITOR = "ChangeAuditorFunction"
MISSING = "route.missing_reciprocal"


def create_route_event(pair: Pair) -> dict[str, Any]:
    """CloudTrail's record of A's route to B (rtb-A 10.1.0.0/16 via the pcx)."""
    return sample("CreateRoute", pair.ids())


def fix_by_hand(ec2: Any, pair: Pair) -> None:
    awsnet.route(ec2, pair.b.main_table, pair.a.cidr, pair.pcx)


def state(stack_table: str, fingerprint: str) -> dict[str, Any] | None:
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=stack_table, Key={"pk": {"S": key_of(fingerprint)}}, ConsistentRead=True
    )
    return item.get("Item")


def section_texts(post: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in post["body"]["blocks"] if b["type"] == "section")


# -- a change is announced -------------------------------------------------------------------


def test_missing_return_route_reaches_sns_slack_and_the_state_table(
    deploy: Callable[..., World], one_sided: Pair
) -> None:
    world = deploy(GracePeriodMinutes="0")
    event = create_route_event(one_sided)

    results = world.stack.deliver(event)

    assert list(results) == [AUDITOR]
    assert results[AUDITOR]["status"] == "audited"
    (message,) = world.sns()
    body, attrs = message["body"], message["attributes"]
    assert (body["check_id"], body["severity"], body["status"]) == (MISSING, "high", "new")
    assert body["resource_id"] == one_sided.b.main_table
    assert {k: v["StringValue"] for k, v in attrs.items()} == {
        "severity": "high",
        "check_id": MISSING,
        "account_id": "123456789012",
        "status": "new",
    }
    (post,) = world.slack.posts
    text = section_texts(post)
    assert one_sided.b.main_table in text
    fix = (
        f"aws ec2 create-route --route-table-id {one_sided.b.main_table} "
        f"--destination-cidr-block 10.0.0.0/16 --vpc-peering-connection-id {one_sided.pcx}"
    )
    assert fix in text
    item = state(world.stack.physical["StateTable"], body["fingerprint"])
    assert item is not None
    assert item["status"]["S"] == "open"
    assert item["notified_at"]["S"].startswith(body["observed_at"][:16])


def test_a_duplicate_delivery_and_a_later_event_about_the_same_finding_notify_once(
    deploy: Callable[..., World], one_sided: Pair
) -> None:
    world = deploy(GracePeriodMinutes="0")
    event = create_route_event(one_sided)

    first = world.stack.deliver(event)
    again = world.stack.deliver(event)  # EventBridge delivers at least once
    other = world.stack.deliver(create_route_event(one_sided))  # a new record, same finding

    assert again == first  # the stored result of the first delivery: no second audit
    assert other[AUDITOR]["notify"]["decisions"]["suppressed"] == 1
    assert other[AUDITOR]["notify"]["decisions"]["new"] == 0
    assert [m["body"]["check_id"] for m in world.sns()] == [MISSING]
    assert len(world.slack.posts) == 1


# -- the grace period ---------------------------------------------------------------------------


def parked_change(world: World, pair: Pair) -> tuple[dict[str, Any], dict[str, Any]]:
    """Deliver the CreateRoute with the default grace period; the event and its grace message."""
    event = create_route_event(pair)
    result = world.stack.deliver(event)[AUDITOR]
    assert result["deferred"] == 1
    assert not any(result["notify"]["decisions"].values())  # route findings wait
    assert world.stack.messages("GraceQueue") == []  # delayed: not receivable yet
    with sqs_clock_ahead(9 * 60):
        assert world.stack.messages("GraceQueue") == []
    with sqs_clock_ahead(10 * 60 + 1):
        (parked,) = world.stack.messages("GraceQueue")
    return event, parked


def test_a_route_finding_waits_on_the_grace_queue_and_is_not_announced_yet(
    deploy: Callable[..., World], one_sided: Pair
) -> None:
    world = deploy()  # GracePeriodMinutes defaults to 10

    event, parked = parked_change(world, one_sided)

    assert parked["body"] == {
        "event_id": event["detail"]["eventID"],
        "event_name": "CreateRoute",
        "regions": [REGION],
        "scope": {
            "flow_log_ids": [],
            "network_acl_ids": [],
            "peering_ids": [one_sided.pcx],
            "route_table_ids": [one_sided.a.main_table],
            "security_group_ids": [],
            "subnet_ids": [],
            "vpc_ids": [],
        },
    }
    assert world.sns() == []
    assert world.slack.posts == []


def test_a_route_fixed_within_the_grace_period_is_never_announced(
    deploy: Callable[..., World], one_sided: Pair, ec2: Any
) -> None:
    world = deploy()
    _, parked = parked_change(world, one_sided)

    fix_by_hand(ec2, one_sided)  # the second half of the change, a few minutes later
    outcome = world.stack.invoke(AUDITOR, world.stack.sqs_event("GraceQueue", [parked]))

    assert outcome == {"batchItemFailures": []}
    assert world.sns() == []
    assert world.slack.posts == []
    table = world.stack.physical["StateTable"]
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=table)["Items"]
    assert not [i for i in items if i["pk"]["S"].startswith("finding#")]


def test_a_route_still_broken_after_the_grace_period_is_announced(
    deploy: Callable[..., World], one_sided: Pair
) -> None:
    world = deploy()
    _, parked = parked_change(world, one_sided)

    outcome = world.stack.invoke(AUDITOR, world.stack.sqs_event("GraceQueue", [parked]))

    assert outcome == {"batchItemFailures": []}
    (message,) = world.sns()
    assert (message["body"]["check_id"], message["body"]["status"]) == (MISSING, "new")
    (post,) = world.slack.posts
    assert one_sided.b.main_table in section_texts(post)


# -- bad events ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stem", "status", "reason", "metric"),
    [
        (
            "malformed.missing-event-name",
            "malformed",
            "detail.eventName is missing",
            "MalformedEvents",
        ),
        (
            "not-ours.AuthorizeSecurityGroupEgress",
            "ignored",
            "event name 'AuthorizeSecurityGroupEgress' is not one PeerGuard audits",
            "IgnoredEvents",
        ),
    ],
)
def test_a_bad_event_is_logged_and_counted_not_retried(
    deploy: Callable[..., World],
    logs: Callable[[], list[dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
    stem: str,
    status: str,
    reason: str,
    metric: str,
) -> None:
    world = deploy(GracePeriodMinutes="0")
    event = sample(stem)
    assert world.stack.routes(event) == []  # the rules do not even send it

    result = world.stack.invoke(AUDITOR, event)  # a rule too wide would; it must not raise

    assert result == {"status": status, "reason": reason}
    assert emf_metrics(capsys.readouterr().out).get(metric) == 1
    said = [line for line in logs() if line.get("reason") == reason]
    assert len(said) == 1 and "\n" not in said[0]["reason"]
    assert world.sns() == [] and world.slack.posts == []


# -- Slack down ------------------------------------------------------------------------------------


def test_slack_down_is_retried_then_dead_lettered_while_sns_still_gets_the_finding(
    deploy: Callable[..., World], one_sided: Pair
) -> None:
    world = deploy(GracePeriodMinutes="0")
    world.slack.always = 500

    result = world.stack.deliver(create_route_event(one_sided))[AUDITOR]

    assert len(world.slack.posts) == 3 and world.sleeps == [1.0, 2.0]
    assert result["notify"]["channels"]["slack"]["dead_lettered"] == 1
    (dead,) = world.stack.messages("NotificationDeadLetterQueue")
    assert dead["body"]["channel"] == "slack"
    assert dead["body"]["error"] == "Slack HTTP 500"
    assert dead["attributes"]["channel"]["StringValue"] == "slack"
    (lost,) = dead["body"]["notifications"]
    assert (lost["check_id"], lost["resource_id"]) == (MISSING, one_sided.b.main_table)
    assert dead["body"]["payload"]["blocks"]  # ready to redrive as it was
    (message,) = world.sns()
    assert message["body"]["fingerprint"] == lost["fingerprint"]


# -- the sweep -----------------------------------------------------------------------------------


def logging_trail() -> None:
    """A multi-region trail logging management events: what makes the change auditor hear."""
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="trail-logs")
    ct = boto3.client("cloudtrail", region_name="us-east-1")
    ct.create_trail(Name="management", S3BucketName="trail-logs", IsMultiRegionTrail=True)
    ct.start_logging(Name="management")


def test_the_sweep_resolves_a_finding_that_went_away(
    deploy: Callable[..., World], one_sided: Pair, ec2: Any
) -> None:
    world = deploy(GracePeriodMinutes="0")
    logging_trail()
    world.stack.deliver(create_route_event(one_sided))
    (announced,) = world.sns()
    fix_by_hand(ec2, one_sided)
    schedule = sample("schedule")
    assert world.stack.routes(schedule) == []  # schedules are not EventBridge rules

    summary = world.stack.invoke("SweepFunction", schedule)

    assert summary["notify"]["decisions"]["resolved"] == 1
    (message,) = world.sns()
    assert message["body"]["fingerprint"] == announced["body"]["fingerprint"]
    assert message["body"]["status"] == "resolved"
    assert message["attributes"]["status"]["StringValue"] == "resolved"
    item = state(world.stack.physical["StateTable"], announced["body"]["fingerprint"])
    assert item is not None and item["status"]["S"] == "resolved"
    assert "RESOLVED" in section_texts(world.slack.posts[-1])


def test_the_sweep_says_when_no_trail_feeds_the_change_auditor(
    deploy: Callable[..., World],
) -> None:
    world = deploy()
    summary = world.stack.invoke("SweepFunction", sample("schedule"))
    (message,) = [m for m in world.sns() if m["body"]["check_id"] == "setup.no_trail"]
    assert message["body"]["severity"] == "medium" and "us-east-1" in message["body"]["detail"]
    assert summary["notify"]["decisions"]["new"] >= 1

    logging_trail()
    world.stack.invoke("SweepFunction", sample("schedule"))
    (resolved,) = [m for m in world.sns() if m["body"]["check_id"] == "setup.no_trail"]
    assert resolved["body"]["status"] == "resolved"
