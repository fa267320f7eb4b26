"""The fault matrix: every AWS call each function makes, failing every way AWS fails.

For each function (as deployed from template.yaml, in fix mode, with SNS, Slack and
Security Hub on) and each call it makes, the call is throttled twice then served,
throttled for good, denied, answered with a 5xx, or timed out — on the wire, so botocore
retries it as it would a real one. Then what the platform does next: an invocation that
raised is retried by EventBridge (or the scheduler runs again), and the hourly sweep
runs. Afterwards, for every case:

- nothing lost: every announcement reached each channel, or that channel's dead letters;
- nothing twice: no announcement delivered (or dead-lettered) twice on a channel;
- no change twice: each EC2 change succeeded once, and is recorded once.

The README's reliability table counts these cases.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer

from peerguard import clock
from peerguard.domain.dedup import DEFAULT_LEASE
from peerguard.domain.findings import Finding
from peerguard.settings import SweepSettings
from peerguard.usecases.pipeline import Runtime
from peerguard.usecases.sweep import on_schedule
from peerguard_lab.events import load_sample, sample
from peerguard_lab.faults import Faults, instant_retries
from peerguard_lab.stack import LambdaContext
from tests.e2e.conftest import World
from tests.e2e.test_acceptance import PARTNER, network
from tests.integration import awsnet

# What the platform does when an invocation raises: EventBridge retries it (twice, then
# the event dead-letter queue); a schedule simply runs again.
KINDS = ("throttled-then-served", "throttled", "denied", "5xx", "timeout")
MUTATIONS = ("Create", "Delete", "Accept", "Reject", "Modify", "Revoke", "Replace")


@dataclass(frozen=True)
class Scenario:
    function: str
    parameters: dict[str, str]
    build: Callable[[Any], dict[str, Any]]  # ec2 -> the event that triggers the function
    calls: tuple[tuple[str, str], ...]  # every (service, operation) a clean run makes


def _one_sided(ec2: Any) -> None:
    a, b = awsnet.vpc(ec2, "10.0.0.0/16"), awsnet.vpc(ec2, "10.1.0.0/16")
    for vpc, cidr in ((a, "10.0.1.0/24"), (b, "10.1.1.0/24")):
        awsnet.flow_log(ec2, vpc.vpc_id)
        awsnet.subnet(ec2, vpc, cidr)
    pcx = awsnet.peer(ec2, a, b)
    awsnet.route(ec2, a.main_table, b.cidr, pcx)
    _story.update(
        {
            "vpc-0a1b2c3d4e5f67890": a.vpc_id,
            "vpc-0b1c2d3e4f5a67891": b.vpc_id,
            "rtb-0a1b2c3d4e5f67890": a.main_table,
            "pcx-0a1b2c3d4e5f67890": pcx,
        }
    )


_story: dict[str, str] = {}


def _schedule() -> dict[str, Any]:
    return {**load_sample("schedule"), "id": str(uuid.uuid4())}


def _route_event(ec2: Any) -> dict[str, Any]:
    _one_sided(ec2)
    return sample("CreateRoute", _story)


def _sweep_event(ec2: Any) -> dict[str, Any]:
    _one_sided(ec2)
    return _schedule()


def _acceptance_event(ec2: Any) -> dict[str, Any]:
    network()
    return _schedule()


READS = (
    ("ec2", "DescribeFlowLogs"),
    ("ec2", "DescribeNetworkAcls"),
    ("ec2", "DescribeRouteTables"),
    ("ec2", "DescribeSecurityGroupRules"),
    ("ec2", "DescribeSecurityGroups"),
    ("ec2", "DescribeSubnets"),
    ("ec2", "DescribeVpcAttribute"),
    ("ec2", "DescribeVpcPeeringConnections"),
    ("ec2", "DescribeVpcs"),
)
STATE = (
    ("dynamodb", "BatchGetItem"),
    ("dynamodb", "PutItem"),
    ("dynamodb", "Query"),
    ("dynamodb", "UpdateItem"),
)
CHANNELS = (
    ("secretsmanager", "GetSecretValue"),
    ("securityhub", "BatchImportFindings"),
    ("sns", "PublishBatch"),
    ("sts", "GetCallerIdentity"),
)
COMMON = {"Mode": "fix", "GracePeriodMinutes": "0", "EnableSecurityHub": "true"}
SCENARIOS = {
    "change": Scenario(
        "ChangeAuditorFunction",
        COMMON,
        _route_event,
        (*READS, *STATE, *CHANNELS, ("ec2", "CreateRoute")),
    ),
    "sweep": Scenario(
        "SweepFunction",
        COMMON,
        _sweep_event,
        (*READS, *STATE, *CHANNELS, ("ec2", "CreateRoute"), ("cloudtrail", "DescribeTrails")),
    ),
    "acceptance": Scenario(
        "AcceptanceFunction",
        {**COMMON, "AutoAcceptPeerings": "true", "AllowlistedAccounts": PARTNER},
        _acceptance_event,
        (*READS, *STATE, *CHANNELS, ("ec2", "AcceptVpcPeeringConnection"), ("ec2", "CreateRoute")),
    ),
}


def cases() -> Iterator[Any]:
    """Every call throttled (for a while, for good) and denied; 5xx and timeouts, which
    take the same path as endless throttling (retried, then raised), on one call of each
    service."""
    for name, scenario in SCENARIOS.items():
        services: set[str] = set()
        for service, operation in sorted(set(scenario.calls)):
            kinds = KINDS if service not in services else KINDS[:3]
            services.add(service)
            for kind in kinds:
                yield pytest.param(name, service, operation, kind, id=f"{name}-{operation}-{kind}")


# -- what the channels and EC2 saw -----------------------------------------------------

SLACK_LINE = re.compile(r"\* · (New|Changed|Repeat) · `([a-z_]+\.[a-z_]+)`")
SLACK_RESOLVED = re.compile(r"\*(RESOLVED)\* ~[A-Z]+~ `([a-z_]+\.[a-z_]+)`")


def announcements(world: World) -> dict[str, Counter[tuple[str, str, str]]]:
    """(status, check id, fingerprint) announced per channel, dead letters counted with
    their channel. Slack's text carries no fingerprint: its entries have none."""
    seen: dict[str, Counter[tuple[str, str, str]]] = {c: Counter() for c in ("sns", "slack", "hub")}
    for m in world.sns():
        body = m["body"]
        seen["sns"][(body["status"], body["check_id"], body["fingerprint"])] += 1
    for post in world.slack.delivered:
        for block in post["blocks"]:
            text = block.get("text", {}).get("text", "")
            for status, check in SLACK_LINE.findall(text) + SLACK_RESOLVED.findall(text):
                seen["slack"][(status.lower(), check, "")] += 1
    hub = world.stack.clients.client("securityhub").get_findings()["Findings"]
    for f in hub:  # one finding per fingerprint, updated in place: no status to count
        seen["hub"][("any", f["GeneratorId"], f["Id"])] += 1
    for m in world.stack.messages("NotificationDeadLetterQueue"):
        channel = {"securityhub": "hub"}.get(m["body"]["channel"], m["body"]["channel"])
        for n in m["body"]["replay"]:
            f = n["finding"]
            status = "any" if channel == "hub" else n["status"]
            which = "" if channel == "slack" else Finding.from_record(f).fingerprint
            seen[channel][(status, f["check_id"], which)] += 1
    return seen


def change_records(world: World) -> Counter[str]:
    table = world.stack.physical["StateTable"]
    items = world.stack.clients.client("dynamodb").scan(TableName=table)["Items"]
    plain = [{k: TypeDeserializer().deserialize(v) for k, v in i.items()} for i in items]
    return Counter(
        f"{r['change']} {r['result']} {sorted(r['call'].items())}"
        for r in plain
        if str(r["pk"]).startswith("change#")
    )


class Mutations:
    """EC2 changes that succeeded, counted on the wire (after the faults had their say)."""

    def __init__(self, session: boto3.Session) -> None:
        self.made: Counter[str] = Counter()
        events = session._session.get_component("event_emitter")
        events.register("before-call.ec2", self._before_call)
        events.register("after-call.ec2", self._after_call)

    @staticmethod
    def _before_call(params: Any, context: Any, **_: Any) -> None:
        context["peerguard_params"] = sorted(params.items())  # after-call is not given them

    def _after_call(self, http_response: Any, model: Any, context: Any, **_: Any) -> None:
        params = context.get("peerguard_params", [])
        made = model.name.startswith(MUTATIONS) and http_response.status_code == 200
        if made and ("DryRun", True) not in params:
            self.made[f"{model.name}:{params}"] += 1


def inject(faults: Faults, kind: str, service: str, operation: str) -> None:
    if kind == "throttled-then-served":
        faults.throttle(service, operation, times=2)
    elif kind == "throttled":
        faults.throttle(service, operation)
    elif kind == "denied":
        faults.deny(service, operation)
    elif kind == "5xx":
        faults.server_error(service, operation)
    else:
        faults.timeout(service, operation)


def run(world: World, s: Scenario, event: dict[str, Any], faults: Faults) -> bool:
    """The faulty invocation, what the platform does next, and the hourly sweep; whether
    the faulty invocation raised."""
    with instant_retries():
        try:
            world.stack.invoke(s.function, event)
            raised = False
        except Exception:
            raised = True
        faults.clear()
        if raised:
            world.stack.invoke(s.function, event)  # EventBridge retries the event
        elif s.function != "ChangeAuditorFunction":
            world.stack.invoke(s.function, _schedule())  # the schedule's next run
        world.stack.invoke("SweepFunction", _schedule())  # the hourly backstop
    return raised


def assert_nothing_lost_nothing_twice(
    world: World, scenario: str, mutations: Mutations, at_least_once: bool = False
) -> None:
    """`at_least_once`: a channel and the dead-letter queue were down together; what that
    channel missed is announced again on every channel (a duplicate where it was seen)."""
    seen = announcements(world)
    sns, slack, hub = seen["sns"], seen["slack"], seen["hub"]
    if at_least_once:
        sns, slack = Counter(set(sns)), Counter(set(slack))
    twice = {k: n for k, n in sns.items() if n > 1}
    assert not twice, f"sns: announced twice: {twice}"
    # Every channel got each announcement once, delivered or dead-lettered: none lost.
    assert slack == Counter((s, c, "") for s, c, _ in sns.elements()), (sns, slack)
    findings = {(c, r) for _, c, r in sns}  # Security Hub updates one finding in place
    assert Counter(c for _, c, _ in hub) == Counter(c for c, _ in findings), (sns, hub)
    told = {c for _, c, _ in sns}
    for done, failed in EXPECTED[scenario].items():
        assert done in told or failed in told, sns  # made, or its failure announced
    assert all(n == 1 for n in mutations.made.values()), mutations.made
    records = change_records(world)
    assert all(n == 1 for n in records.values()), records


# What each scenario must announce: the change, or (when the call itself keeps failing and
# nothing will make it later) the failure that names what to do.
EXPECTED = {
    "change": {"remediation.applied": "remediation.failed"},
    "sweep": {"remediation.applied": "remediation.failed"},
    "acceptance": {
        "acceptance.accepted": "acceptance.failed",
        "acceptance.route_added": "acceptance.failed",
    },
}


@pytest.mark.parametrize(("scenario", "service", "operation", "kind"), list(cases()))
def test_a_failing_aws_call_loses_nothing_and_does_nothing_twice(
    deploy: Callable[..., World], ec2: Any, scenario: str, service: str, operation: str, kind: str
) -> None:
    s = SCENARIOS[scenario]
    event = s.build(ec2)
    world = deploy(**s.parameters)
    faults = Faults(world.stack.clients.session)
    mutations = Mutations(world.stack.clients.session)
    inject(faults, kind, service, operation)
    rule = faults.rules[0]

    run(world, s, event, faults)

    assert rule.hits, f"{service}.{operation} was never called: the matrix is out of date"
    assert_nothing_lost_nothing_twice(world, scenario, mutations)


CHANNEL_FAULTS = {"sns": ("sns", "PublishBatch"), "hub": ("securityhub", "BatchImportFindings")}


@pytest.mark.parametrize("dead_letters_down", [False, True], ids=["dlq-up", "dlq-down"])
@pytest.mark.parametrize(
    "down",
    [
        {"sns"},
        {"slack"},
        {"hub"},
        {"sns", "slack"},
        {"sns", "hub"},
        {"slack", "hub"},
        {"sns", "slack", "hub"},
    ],
    ids=lambda d: "+".join(sorted(d)),
)
@pytest.mark.parametrize("scenario", ["change"])
def test_channels_failing_alone_and_together_lose_nothing(
    deploy: Callable[..., World],
    ec2: Any,
    monkeypatch: pytest.MonkeyPatch,
    scenario: str,
    down: set[str],
    dead_letters_down: bool,
) -> None:
    s = SCENARIOS[scenario]
    event = s.build(ec2)
    world = deploy(**s.parameters)
    faults = Faults(world.stack.clients.session)
    mutations = Mutations(world.stack.clients.session)
    for channel in down - {"slack"}:
        faults.server_error(*CHANNEL_FAULTS[channel])
    if dead_letters_down:
        faults.server_error("sqs", "SendMessage")
    if "slack" in down:
        world.slack.always = 503

    with instant_retries():
        try:
            world.stack.invoke(s.function, event)
            raised = False
        except Exception:
            raised = True
    faults.clear()
    world.slack.always = None
    with instant_retries():
        if raised:
            world.stack.invoke(s.function, event)
        if dead_letters_down:  # the undelivered claim is retried once its lease is over
            later = clock.now() + DEFAULT_LEASE + timedelta(minutes=1)
            sweep_later(world, monkeypatch, lambda: later)
        world.stack.invoke("SweepFunction", _schedule())

    assert_nothing_lost_nothing_twice(world, scenario, mutations, dead_letters_down)


def sweep_later(world: World, monkeypatch: pytest.MonkeyPatch, now: Callable[[], Any]) -> None:
    """The sweep as deployed, run at `now` (the stack's invoke runs at the real time)."""
    env = world.stack.environment("SweepFunction")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "SweepFunction")
    rt = Runtime(world.stack.clients, SweepSettings.from_env(env), now=now)
    on_schedule(rt, _schedule(), LambdaContext("SweepFunction"))


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_matrix_lists_every_call_the_function_makes(
    deploy: Callable[..., World], ec2: Any, scenario: str
) -> None:
    s = SCENARIOS[scenario]
    event = s.build(ec2)
    world = deploy(**s.parameters)
    faults = Faults(world.stack.clients.session)

    world.stack.invoke(s.function, event)

    assert set(faults.seen) == set(s.calls)
