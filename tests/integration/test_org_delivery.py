"""Findings of every account reach one place: the central topic and the central bus."""

from __future__ import annotations

import json
from datetime import timedelta

import boto3

from peerguard.domain.dedup import Notification, Status
from peerguard.notify import EventBusNotifier, SnsNotifier
from peerguard.notify.eventbus import DETAIL_TYPE, SOURCE
from peerguard.settings import SettingsError, SweepSettings
from tests.unit.test_notify_dedup import NOW, REGION, finding

FAR = "210987654321"


def test_a_far_side_finding_reaches_the_central_bus_naming_its_own_account(aws: None) -> None:
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    bus = events.create_event_bus(Name="peerguard-findings")["EventBusArn"]
    queue = sqs.create_queue(QueueName="central")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="all-findings",
        EventBusName="peerguard-findings",
        EventPattern=json.dumps({"source": [SOURCE], "detail-type": [DETAIL_TYPE]}),
    )
    events.put_targets(
        Rule="all-findings",
        EventBusName="peerguard-findings",
        Targets=[{"Id": "q", "Arn": queue_arn}],
    )
    f = finding().model_copy(update={"account_id": FAR})
    n = Notification(f, Status.NEW, NOW - timedelta(hours=1), NOW)

    failures = EventBusNotifier(bus, events).deliver([n])

    assert failures == []
    [msg] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)["Messages"]
    detail = json.loads(msg["Body"])["detail"]
    assert (detail["check_id"], detail["account_id"], detail["status"]) == (
        f.check_id,
        FAR,
        "new",
    )


def test_the_central_topic_is_a_channel_of_its_own(aws: None) -> None:
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="peerguard-org")["TopicArn"]
    central = SnsNotifier(topic, sns, name="central-sns")
    n = Notification(finding(), Status.NEW, NOW, NOW)
    assert central.name == "central-sns" and central.deliver([n]) == []


def test_the_organization_settings_are_validated_with_their_names() -> None:
    ok = SweepSettings.from_env(
        {
            "PEERGUARD_MEMBER_ROLE_NAME": "PeerGuardMember",
            "PEERGUARD_CENTRAL_TOPIC_ARN": "arn:aws:sns:us-east-1:111122223333:peerguard-org",
            "PEERGUARD_CENTRAL_BUS_ARN": "arn:aws:events:us-east-1:111122223333:event-bus/pg",
        }
    )
    assert ok.member_role_name == "PeerGuardMember"
    for var, bad in (
        ("PEERGUARD_MEMBER_ROLE_NAME", "peerguard/Member"),
        ("PEERGUARD_CENTRAL_TOPIC_ARN", "arn:aws:sqs:us-east-1:111122223333:q"),
        ("PEERGUARD_CENTRAL_BUS_ARN", "not-an-arn"),
    ):
        try:
            SweepSettings.from_env({var: bad})
        except SettingsError as e:
            assert str(e).startswith(f"bad setting {var}=")
        else:
            raise AssertionError(f"{var}={bad!r} was accepted")
