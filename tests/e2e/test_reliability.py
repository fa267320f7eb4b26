"""Nothing lost, nothing done twice, when AWS misbehaves or time runs out.

Faults moto cannot produce are answered by botocore hooks on the stack's session (the one
the handlers' clients are built on), the way AWS answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from peerguard.aws.executor import Executor
from peerguard.cli import main
from peerguard.domain.checks import CheckContext
from peerguard.domain.plans.actions import Mode, Status, announcement
from peerguard.domain.plans.remediation import RemediationConfig, plan_all
from peerguard.notify import SlackNotifier
from peerguard.usecases.pipeline import audit
from peerguard.usecases.replay import replay
from peerguard_lab.events import sample
from peerguard_lab.faults import Faults, instant_retries
from tests.e2e.conftest import Pair, World

AUDITOR = "ChangeAuditorFunction"


def aws_error(code: str, status: int) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {"Error": {"Code": code, "Message": f"simulated {code}"}}
    parsed["ResponseMetadata"] = {"HTTPStatusCode": status}  # type: ignore[assignment]
    return AWSResponse("https://aws.amazon.com", status, {}, None), parsed


def route_event(pair: Pair) -> dict[str, Any]:
    return sample("CreateRoute", pair.ids())


def test_grace_queue_down_the_route_finding_is_announced_at_once(
    deploy: Callable[..., World], one_sided: Pair
) -> None:
    world = deploy()  # a grace period of 10 minutes
    faults = Faults(world.stack.clients.session)
    down = faults.server_error("sqs", "SendMessage")
    down.when = lambda request: b"GraceQueue" in (request.body or b"")

    with instant_retries():
        result = world.stack.deliver(route_event(one_sided))[AUDITOR]

    assert down.hits > 1  # retried, then given up on
    assert result["status"] == "audited" and result["deferred"] == 0
    announced = [m["body"]["check_id"] for m in world.sns()]
    assert announced.count("route.missing_reciprocal") == 1  # not lost in a queue it never reached


def test_out_of_time_nothing_is_half_made_and_the_rest_waits(clients: Any, one_sided: Pair) -> None:
    ctx = CheckContext()
    result = audit(clients, ["us-east-1"], ctx)
    actions = plan_all(result.findings, result.snapshot, RemediationConfig(Mode.FIX), ctx)
    assert actions and any(a.automatic for a in actions)
    left = iter([60.0, 5.0, 5.0])  # time for the first change only
    executor = Executor(clients, max_changes=10, time_left=lambda: next(left, 5.0))

    outcomes = executor.run_each(a for a in actions if a.automatic)

    assert [o.status for o in outcomes][:1] == [Status.APPLIED]
    assert all(o.status is Status.PENDING for o in outcomes[1:])
    assert all("out of time" in o.message for o in outcomes[1:])
    assert executor.changes == 1


def test_a_change_found_already_made_is_recorded_not_announced_again(
    clients: Any, one_sided: Pair
) -> None:
    # Given two fix runs on the same table: the other one made the route a moment ago
    ctx = CheckContext()
    result = audit(clients, ["us-east-1"], ctx)
    [action] = [
        a
        for a in plan_all(result.findings, result.snapshot, RemediationConfig(Mode.FIX), ctx)
        if a.automatic
    ]
    ec2 = clients.client("ec2", "us-east-1")

    def made_by_the_other_run(**_: Any) -> Any:
        ec2.meta.events.unregister("before-call.ec2.CreateRoute", made_by_the_other_run)
        ec2.create_route(**action.call.parameters)  # the other run wins the race
        return aws_error("RouteAlreadyExists", 400)

    ec2.meta.events.register("before-call.ec2.CreateRoute", made_by_the_other_run)

    [outcome] = Executor(clients, max_changes=10).run_each([action])

    assert outcome.status is Status.APPLIED and outcome.error_code == "RouteAlreadyExists"
    assert announcement(outcome) is None  # the run that made it announces it


@pytest.mark.parametrize("fault", ["ThrottlingException", "ProvisionedThroughputExceededException"])
def test_dynamodb_throttled_on_the_claim_fails_the_invocation_then_the_retry_announces_once(
    deploy: Callable[..., World], one_sided: Pair, fault: str
) -> None:
    world = deploy(GracePeriodMinutes="0")
    faults = Faults(world.stack.clients.session)
    throttled = faults.error("dynamodb", "UpdateItem", fault, 400)
    event = route_event(one_sided)

    with instant_retries(), pytest.raises(Exception, match=fault):
        world.stack.invoke(AUDITOR, event)  # fails: EventBridge retries the event, then DLQs it
    assert throttled.hits >= 8  # botocore retried (adaptive, 8 attempts) before failing
    assert world.sns() == []

    faults.clear()
    world.stack.invoke(AUDITOR, event)  # EventBridge retries the same event
    world.stack.invoke(AUDITOR, event)  # and a duplicate delivery
    announced = [m["body"]["check_id"] for m in world.sns()]
    assert announced.count("route.missing_reciprocal") == 1


def test_after_a_slack_outage_replay_dlq_delivers_each_dead_letter_once(
    deploy: Callable[..., World], one_sided: Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Slack down while a finding is announced: it is dead-lettered, not lost
    world = deploy(GracePeriodMinutes="0")
    world.slack.always = 500
    world.stack.deliver(route_event(one_sided))
    posts_while_down = len(world.slack.posts)
    world.slack.always = None  # Slack is back
    capsys.readouterr()  # the handler's own log lines

    def replay_dlq(*extra: str) -> int:
        return main(
            [
                "replay-dlq",
                "--queue-url",
                world.stack.physical["NotificationDeadLetterQueue"],
                "--table",
                world.stack.physical["StateTable"],
                "--slack-secret-arn",
                world.stack.parameters["SlackWebhookSecretArn"],
                "--region",
                "us-east-1",
                *extra,
            ],
            session=world.stack.clients.session,
        )

    # When the queue is replayed (a dry run first), then replayed again
    assert replay_dlq("--dry-run") == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"would deliver": 1}
    assert len(world.slack.posts) == posts_while_down  # a dry run sends nothing
    assert replay_dlq() == 0
    assert json.loads(capsys.readouterr().out)["counts"] == {"delivered": 1}
    assert replay_dlq() == 0

    # Then Slack got the finding once, and the queue is empty
    delivered = world.slack.posts[posts_while_down:]
    assert len(delivered) == 1
    assert "route.missing_reciprocal" in json.dumps(delivered[0]["body"])
    assert world.stack.messages("NotificationDeadLetterQueue") == []


def test_a_dead_letter_replayed_twice_at_once_is_delivered_once(
    deploy: Callable[..., World], one_sided: Pair
) -> None:
    world = deploy(GracePeriodMinutes="0")
    world.slack.always = 500
    world.stack.deliver(route_event(one_sided))
    world.slack.always = None
    before = len(world.slack.posts)
    (dead,) = world.stack.messages("NotificationDeadLetterQueue")
    # the same message twice in the queue: two replays racing, or a crash before the delete
    for _ in range(2):
        world.stack.sqs.send_message(
            QueueUrl=world.stack.physical["NotificationDeadLetterQueue"],
            MessageBody=dead["raw"]["Body"],
        )
    clients = world.stack.clients
    notifier = SlackNotifier(
        world.stack.parameters["SlackWebhookSecretArn"], clients.client("secretsmanager")
    )
    report = replay(
        clients.client("sqs"),
        world.stack.physical["NotificationDeadLetterQueue"],
        {"slack": notifier},
        clients.client("dynamodb"),
        world.stack.physical["StateTable"],
        datetime.now(UTC),
    )
    assert report.counts == {"delivered": 1, "already delivered": 1}
    assert len(world.slack.posts) == before + 1
