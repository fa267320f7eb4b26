"""Delivery: Slack against a loopback webhook, SNS into SQS, Security Hub, and the dispatch
use case end to end (dedup in DynamoDB, dead letters in SQS), all in moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from peerguard.domain.coverage import Coverage
from peerguard.domain.dedup import Notification, Status
from peerguard.notify import (
    DeadLetter,
    Failure,
    SecurityHubNotifier,
    SlackNotifier,
    SnsNotifier,
    dispatch,
)
from peerguard.notify.securityhub import render
from peerguard.notify.slack import SlackError
from peerguard.state.findings import FindingStore
from peerguard_lab.slack import FakeSlack
from peerguard_lab.stack import create_table
from tests.integration.test_state_store import TABLE
from tests.unit.test_notify_dedup import ACCOUNT, NOW, REGION, finding

SECRET = "peerguard/slack-webhook"


# -- a loopback Slack -------------------------------------------------------------------------


@pytest.fixture
def fake_slack() -> Iterator[tuple[FakeSlack, str]]:
    with FakeSlack() as server:
        yield server, server.url


@pytest.fixture
def secrets(aws: None, fake_slack: tuple[FakeSlack, str]):  # type: ignore[no-untyped-def]
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name=SECRET, SecretString=json.dumps({"url": fake_slack[1]}))
    return client


def slack_notifier(secrets, sleeps: list[float], **kw: Any) -> SlackNotifier:  # type: ignore[no-untyped-def]
    return SlackNotifier(SECRET, secrets, sleep=sleeps.append, cache={}, timeout=2, **kw)


def note(resource_id: str = "rtb-1", status: Status = Status.NEW) -> Notification:
    return Notification(finding(resource_id), status, NOW, NOW)


# -- Slack --------------------------------------------------------------------------------------


def test_slack_posts_block_kit_to_the_webhook_from_the_secret(secrets, fake_slack) -> None:  # type: ignore[no-untyped-def]
    slack, _ = fake_slack
    failures = slack_notifier(secrets, []).deliver([note("rtb-1"), note("rtb-2")])
    assert failures == []
    (post,) = slack.posts
    assert post["path"] == "/services/T0/B0/secret"
    assert post["body"]["blocks"][0]["text"]["text"] == "PeerGuard: pcx-1"


def test_slack_honours_retry_after_once_then_delivers(secrets, fake_slack) -> None:  # type: ignore[no-untyped-def]
    slack, _ = fake_slack
    slack.replies = [(429, {"Retry-After": "7"})]
    sleeps: list[float] = []
    assert slack_notifier(secrets, sleeps).deliver([note()]) == []
    assert (len(slack.posts), sleeps) == (2, [7.0])


def test_slack_gives_up_on_a_retry_after_beyond_the_bound(secrets, fake_slack) -> None:  # type: ignore[no-untyped-def]
    slack, _ = fake_slack
    slack.replies = [(429, {"Retry-After": "3600"})]
    sleeps: list[float] = []
    (failure,) = slack_notifier(secrets, sleeps, max_retry_after=30).deliver([note()])
    assert (len(slack.posts), sleeps) == (1, [])
    assert "rate limited for 3600s" in failure.error


def test_slack_retries_5xx_with_backoff_then_fails_without_leaking_the_url(
    secrets, fake_slack
) -> None:  # type: ignore[no-untyped-def]
    slack, url = fake_slack
    slack.always = 500
    sleeps: list[float] = []
    (failure,) = slack_notifier(secrets, sleeps, attempts=3, backoff=0.5).deliver([note()])
    assert (len(slack.posts), sleeps) == (3, [0.5, 1.0])
    assert failure.error == "Slack HTTP 500" and url not in failure.error
    assert failure.payload["blocks"] and [n.finding.resource_id for n in failure.notifications] == [
        "rtb-1"
    ]


def test_slack_does_not_retry_a_rejected_payload(secrets, fake_slack) -> None:  # type: ignore[no-untyped-def]
    slack, _ = fake_slack
    slack.replies = [(400, {})]
    notifier = slack_notifier(secrets, [])
    with pytest.raises(SlackError, match="Slack HTTP 400"):
        notifier.post({"text": "x"})
    assert len(slack.posts) == 1


def test_slack_unreachable_counts_as_retryable(secrets) -> None:  # type: ignore[no-untyped-def]
    cache = {SECRET: "http://127.0.0.1:9/closed"}  # discard port: nothing listens
    sleeps: list[float] = []
    notifier = SlackNotifier(SECRET, secrets, sleep=sleeps.append, cache=cache, attempts=2)
    (failure,) = notifier.deliver([note()])
    assert failure.error.startswith("Slack unreachable") and sleeps == [1.0]


def test_slack_reads_the_secret_once_per_container(secrets, fake_slack) -> None:  # type: ignore[no-untyped-def]
    calls: list[str] = []
    secrets.meta.events.register(
        "before-call.secrets-manager.GetSecretValue", lambda **_: calls.append("get")
    )
    cache: dict[str, str] = {}
    for _ in range(2):
        SlackNotifier(SECRET, secrets, cache=cache).deliver([note()])
    assert calls == ["get"] and len(fake_slack[0].posts) == 2


# -- SNS ----------------------------------------------------------------------------------------


@pytest.fixture
def topic_and_queue(aws: None):  # type: ignore[no-untyped-def]
    sns = boto3.client("sns", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    topic = sns.create_topic(Name="peerguard-findings")["TopicArn"]
    queue = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    return sns, sqs, topic, queue


def drain(sqs, queue: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(
            QueueUrl=queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not msgs:
            return out
        out.extend(msgs)
        for m in msgs:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])


def test_sns_publishes_one_message_per_finding_with_filterable_attributes(topic_and_queue) -> None:  # type: ignore[no-untyped-def]
    sns, sqs, topic, queue = topic_and_queue
    notes = [note(f"rtb-{i:02d}") for i in range(12)]  # two PublishBatch calls
    assert SnsNotifier(topic, sns).deliver(notes) == []
    received = drain(sqs, queue)
    bodies = sorted((json.loads(m["Body"]) for m in received), key=lambda b: b["resource_id"])
    assert [b["resource_id"] for b in bodies] == [f"rtb-{i:02d}" for i in range(12)]
    assert {b["status"] for b in bodies} == {"new"}
    attrs = received[0]["MessageAttributes"]
    assert {k: v["StringValue"] for k, v in attrs.items()} == {
        "severity": "high",
        "check_id": "route.missing_reciprocal",
        "account_id": ACCOUNT,
        "status": "new",
    }


def test_sns_retries_entries_sns_failed_and_reports_sender_faults() -> None:
    sns = boto3.client("sns", region_name=REGION)
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:t"
    with Stubber(sns) as stub:
        stub.add_response(
            "publish_batch",
            {
                "Successful": [],
                "Failed": [
                    {"Id": "0", "Code": "InternalError", "SenderFault": False},
                    {"Id": "1", "Code": "InvalidParameter", "SenderFault": True, "Message": "bad"},
                ],
            },
        )
        stub.add_response("publish_batch", {"Successful": [{"Id": "0", "MessageId": "m"}]})
        sleeps: list[float] = []
        failures = SnsNotifier(topic, sns, sleep=sleeps.append).deliver(
            [note("rtb-a"), note("rtb-b")]
        )
        stub.assert_no_pending_responses()
    assert [(f.notifications[0].finding.resource_id, f.error) for f in failures] == [
        ("rtb-b", "InvalidParameter: bad")
    ]
    assert sleeps == [1.0]


# -- Security Hub -------------------------------------------------------------------------------


def test_security_hub_imports_asff_findings(aws: None) -> None:
    hub = boto3.client("securityhub", region_name=REGION)
    hub.enable_security_hub()
    failures = SecurityHubNotifier(hub, REGION, ACCOUNT).deliver(
        [note("rtb-1"), note("rtb-2", Status.RESOLVED)]
    )
    assert failures == []
    found = {f["Resources"][0]["Id"].rsplit("/", 1)[1]: f for f in hub.get_findings()["Findings"]}
    assert sorted(found) == ["rtb-1", "rtb-2"]
    assert found["rtb-2"]["RecordState"] == "ARCHIVED"


def test_security_hub_failed_findings_are_failures_of_those_findings() -> None:
    hub = boto3.client("securityhub", region_name=REGION)
    notes = [note("rtb-1"), note("rtb-2")]
    bad_id = f"peerguard/route.missing_reciprocal/{notes[1].finding.fingerprint}"
    with Stubber(hub) as stub:
        stub.add_response(
            "batch_import_findings",
            {
                "FailedCount": 1,
                "SuccessCount": 1,
                "FailedFindings": [
                    {"Id": bad_id, "ErrorCode": "InvalidInput", "ErrorMessage": "no"}
                ],
            },
        )
        (failure,) = SecurityHubNotifier(hub, REGION, ACCOUNT).deliver(notes)
    assert failure.notifications == (notes[1],) and failure.error == "InvalidInput: no"
    assert [a["Id"] for a in failure.payload] == [bad_id]


# -- dispatch end to end ------------------------------------------------------------------------


@pytest.fixture
def world(topic_and_queue, secrets):  # type: ignore[no-untyped-def]
    sns, sqs, topic, queue = topic_and_queue
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    create_table(dynamodb, TABLE)
    dlq = sqs.create_queue(QueueName="notify-dlq")["QueueUrl"]
    return {
        "store": FindingStore(dynamodb, TABLE),
        "sns": SnsNotifier(topic, sns),
        "sqs": sqs,
        "queue": queue,
        "dead_letter": DeadLetter(dlq, sqs),
        "dlq": dlq,
        "secrets": secrets,
    }


COVER = Coverage(ACCOUNT, frozenset({REGION}), frozenset({"route.missing_reciprocal"}))


def run(world, findings, now, notifiers):  # type: ignore[no-untyped-def]
    return dispatch(findings, COVER, now, world["store"], notifiers, world["dead_letter"])


def test_slack_down_is_dead_lettered_while_sns_still_receives(world, fake_slack) -> None:  # type: ignore[no-untyped-def]
    slack, _ = fake_slack
    slack.always = 503
    sleeps: list[float] = []
    notifiers = [slack_notifier(world["secrets"], sleeps), world["sns"]]
    summary = run(world, [finding("rtb-1"), finding("rtb-2")], NOW, notifiers)

    assert summary.to_dict()["channels"] == {
        "slack": {"delivered": 0, "dead_lettered": 2, "undelivered": 0},
        "sns": {"delivered": 2, "dead_lettered": 0, "undelivered": 0},
    }
    assert len(slack.posts) == 3 and sleeps == [1.0, 2.0]
    assert len(drain(world["sqs"], world["queue"])) == 2
    (dead,) = drain(world["sqs"], world["dlq"])
    body = json.loads(dead["Body"])
    assert (body["channel"], body["error"]) == ("slack", "Slack HTTP 503")
    assert sorted(n["resource_id"] for n in body["notifications"]) == ["rtb-1", "rtb-2"]
    assert body["payload"]["blocks"][0]["type"] == "header"  # redrive can post it as is
    # dead-lettered counts as an attempt made: the window starts, no second announcement
    again = run(world, [finding("rtb-1"), finding("rtb-2")], NOW + timedelta(hours=1), notifiers)
    assert again.decisions["suppressed"] == 2 and len(slack.posts) == 3


def test_a_finding_seen_twice_within_the_window_is_notified_once(world) -> None:  # type: ignore[no-untyped-def]
    first = run(world, [finding()], NOW, [world["sns"]])
    second = run(world, [finding()], NOW + timedelta(hours=3), [world["sns"]])
    third = run(world, [finding()], NOW + timedelta(hours=25), [world["sns"]])
    assert (first.decisions["new"], second.decisions["suppressed"], third.decisions["repeat"]) == (
        1,
        1,
        1,
    )
    statuses = [json.loads(m["Body"])["status"] for m in drain(world["sqs"], world["queue"])]
    assert sorted(statuses) == ["new", "repeat"]


def test_a_finding_that_disappears_is_announced_resolved_once(world) -> None:  # type: ignore[no-untyped-def]
    run(world, [finding("rtb-1"), finding("rtb-2")], NOW, [world["sns"]])
    drain(world["sqs"], world["queue"])
    gone = run(world, [finding("rtb-1")], NOW + timedelta(hours=1), [world["sns"]])
    quiet = run(world, [finding("rtb-1")], NOW + timedelta(hours=2), [world["sns"]])
    assert (gone.decisions["resolved"], quiet.decisions["resolved"]) == (1, 0)
    (message,) = drain(world["sqs"], world["queue"])
    body = json.loads(message["Body"])
    assert (body["resource_id"], body["status"]) == ("rtb-2", "resolved")
    assert message["MessageAttributes"]["status"]["StringValue"] == "resolved"


def test_a_scoped_audit_does_not_resolve_what_it_did_not_look_at(world) -> None:  # type: ignore[no-untyped-def]
    run(world, [finding("rtb-1"), finding("rtb-2")], NOW, [world["sns"]])
    scoped = Coverage(ACCOUNT, COVER.regions, COVER.check_ids, frozenset({"rtb-1"}))
    summary = dispatch(
        [], scoped, NOW + timedelta(hours=1), world["store"], [world["sns"]], world["dead_letter"]
    )
    assert summary.decisions["resolved"] == 1
    open_now = [s.resource_id for s in world["store"].open_states(COVER)]
    assert open_now == ["rtb-2"]


def test_a_broken_channel_does_not_block_the_others(world) -> None:  # type: ignore[no-untyped-def]
    class Broken:
        name = "broken"

        def deliver(self, notifications: Any) -> Any:
            raise RuntimeError("boom")

    summary = run(world, [finding()], NOW, [Broken(), world["sns"]])
    assert summary.to_dict()["channels"]["broken"] == {
        "delivered": 0,
        "dead_lettered": 1,
        "undelivered": 0,
    }
    assert len(drain(world["sqs"], world["queue"])) == 1
    (dead,) = drain(world["sqs"], world["dlq"])
    assert json.loads(dead["Body"])["error"] == "RuntimeError: boom"


def test_without_a_working_dead_letter_queue_the_finding_stays_unrecorded(world) -> None:  # type: ignore[no-untyped-def]
    class Broken:
        name = "broken"

        def deliver(self, notifications: Any) -> Any:
            raise RuntimeError("boom")

    lost = DeadLetter(world["dlq"] + "-missing", world["sqs"])
    summary = dispatch([finding()], COVER, NOW, world["store"], [Broken()], lost)
    assert (summary.unrecorded, summary.channels["broken"]["undelivered"]) == (1, 1)
    # its claim expires and a later audit announces it again
    later = run(world, [finding()], NOW + timedelta(hours=1), [world["sns"]])
    assert later.decisions["new"] == 1


def test_a_concurrent_invocation_does_not_announce_a_claimed_finding(world) -> None:  # type: ignore[no-untyped-def]
    f = finding()
    world["store"].claim(f, None, NOW)  # the other invocation got there first
    summary = run(world, [f], NOW, [world["sns"]])
    assert summary.decisions["suppressed"] == 1 and drain(world["sqs"], world["queue"]) == []


def test_a_failure_too_big_for_one_sqs_message_is_split_losing_nothing(world) -> None:  # type: ignore[no-untyped-def]
    notes = [note(f"rtb-{i:03d}") for i in range(100)]
    notes = [
        Notification(n.finding.model_copy(update={"detail": "d" * 3000}), n.status, NOW, NOW)
        for n in notes
    ]
    asff = [render(n, REGION, ACCOUNT) for n in notes]
    sent = world["dead_letter"].send("securityhub", Failure(tuple(notes), "boom", asff), NOW)
    messages = drain(world["sqs"], world["dlq"])
    assert sent == len(messages) > 1
    bodies = [json.loads(m["Body"]) for m in messages]
    assert all(len(m["Body"].encode()) < 256 * 1024 for m in messages)
    for body in bodies:  # each part keeps its own findings and their payload, item for item
        assert [n["fingerprint"] for n in body["notifications"]] == [
            a["ProductFields"]["peerguard/fingerprint"] for a in body["payload"]
        ]
    got = sorted(n["resource_id"] for b in bodies for n in b["notifications"])
    assert got == [f"rtb-{i:03d}" for i in range(100)]
