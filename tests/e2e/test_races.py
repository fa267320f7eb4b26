"""Races, with threads against one moto server: exactly one notification and one change.

Each thread is its own invocation: its own boto3 session, clients and runtime, built from
the function's environment in template.yaml. A barrier on the wire (before a call is sent)
makes both invocations reach the contended call together, so the race is run every time,
not only when the scheduler happens to interleave them.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from peerguard.aws.clients import Clients
from peerguard.settings import ChangeAuditorSettings, SweepSettings
from peerguard.usecases.change import on_change
from peerguard.usecases.pipeline import Runtime, reset_runtimes
from peerguard.usecases.sweep import on_schedule
from peerguard_lab.emulator import REGION, Emulator
from peerguard_lab.events import load_sample, sample
from peerguard_lab.slack import FakeSlack, store_webhook
from peerguard_lab.stack import LambdaContext, Stack
from tests.integration import awsnet

AUDITOR, SWEEP = "ChangeAuditorFunction", "SweepFunction"
USE_CASES: dict[str, tuple[type[Any], Callable[..., Any]]] = {
    AUDITOR: (ChangeAuditorSettings, on_change),
    SWEEP: (SweepSettings, on_schedule),
}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


class Deployed:
    """The stack in the emulator, fix mode, no grace period, Slack and SNS on."""

    def __init__(self, emu: Emulator, slack: FakeSlack) -> None:
        self.emu = emu
        self.clients = Clients(emu.session(), endpoint_url=emu.url, default_region=REGION)
        secret = store_webhook(self.clients, slack.url)
        self.stack = Stack(
            {"Mode": "fix", "GracePeriodMinutes": "0", "SlackWebhookSecretArn": secret},
            self.clients,
        )
        self.topic = self.stack.subscribe_queue()
        self.slack = slack
        ec2 = self.clients.client("ec2")
        a, b = awsnet.vpc(ec2, "10.0.0.0/16"), awsnet.vpc(ec2, "10.1.0.0/16")
        for vpc, cidr in ((a, "10.0.1.0/24"), (b, "10.1.1.0/24")):
            awsnet.flow_log(ec2, vpc.vpc_id)
            awsnet.subnet(ec2, vpc, cidr)
        self.pcx = awsnet.peer(ec2, a, b)
        awsnet.route(ec2, a.main_table, b.cidr, self.pcx)
        self.ids = {
            "vpc-0a1b2c3d4e5f67890": a.vpc_id,
            "vpc-0b1c2d3e4f5a67891": b.vpc_id,
            "rtb-0a1b2c3d4e5f67890": a.main_table,
            "pcx-0a1b2c3d4e5f67890": self.pcx,
        }
        self.b = b

    def invocation(self, function: str, event: dict[str, Any], gate: Gate) -> Callable[[], Any]:
        settings_type, use_case = USE_CASES[function]
        settings = settings_type.from_env(self.stack.environment(function))

        def invoke() -> Any:
            session = self.emu.session()
            gate.install(session)
            rt = Runtime(
                Clients(session, endpoint_url=self.emu.url, default_region=REGION), settings
            )
            return use_case(rt, event, LambdaContext(function))

        return invoke

    def announced(self) -> Counter[str]:
        return Counter(m["body"]["check_id"] for m in self.stack.messages(self.topic))

    def routes_to_a(self) -> int:
        tables = self.clients.client("ec2").describe_route_tables(
            RouteTableIds=[self.b.main_table]
        )["RouteTables"]
        return sum(1 for r in tables[0]["Routes"] if r.get("VpcPeeringConnectionId") == self.pcx)


class Gate:
    """Holds the first `operation` call of each invocation until all `parties` reach it."""

    def __init__(self, operation: str, parties: int = 2) -> None:
        self.operation = operation
        self.barrier = threading.Barrier(parties, timeout=20)
        self.passed: set[int] = set()

    def install(self, session: boto3.Session) -> None:
        me = threading.get_ident()

        def wait(**_: Any) -> None:
            if me not in self.passed:
                self.passed.add(me)
                self.barrier.wait()

        session.events.register(f"before-send.*.{self.operation}", wait)


def together(*invocations: Callable[[], Any]) -> list[Any]:
    """Run the invocations at once; each result, or the exception Lambda would report."""
    with ThreadPoolExecutor(len(invocations)) as pool:
        futures = [pool.submit(i) for i in invocations]
    out: list[Any] = []
    for f in futures:
        error = f.exception()
        out.append(error if error is not None else f.result())
    return out


@pytest.fixture
def deployed(emulator: Emulator) -> Iterator[Deployed]:
    saved = dict(os.environ)
    # What Lambda sets; the idempotency records are keyed by the function name.
    os.environ.update(
        AWS_ENDPOINT_URL=emulator.url, AWS_LAMBDA_FUNCTION_NAME=AUDITOR, AWS_REGION=REGION
    )
    reset_runtimes()
    with FakeSlack() as slack:
        yield Deployed(emulator, slack)
    os.environ.clear()
    os.environ.update(saved)
    reset_runtimes()


def schedule() -> dict[str, Any]:
    return {**load_sample("schedule"), "id": str(uuid.uuid4())}


def test_the_same_event_delivered_to_two_invocations_at_once_fixes_and_tells_once(
    deployed: Deployed,
) -> None:
    event = sample("CreateRoute", deployed.ids)
    gate = Gate("PutItem")  # both reach the idempotency claim together

    results = together(
        deployed.invocation(AUDITOR, event, gate), deployed.invocation(AUDITOR, event, gate)
    )

    # One ran; the other was told the event is in progress (Lambda fails it and
    # EventBridge retries it later, when it gets the first result).
    done = [r for r in results if isinstance(r, dict)]
    assert len(done) >= 1, results
    for failed in (r for r in results if not isinstance(r, dict)):
        assert "progress" in str(failed).lower() or "Idempotency" in type(failed).__name__
    retried = deployed.invocation(AUDITOR, event, Gate("none", 1))()
    assert retried == done[0]
    assert deployed.routes_to_a() == 1
    assert deployed.announced()["remediation.applied"] == 1


def test_a_sweep_and_a_change_event_on_the_same_finding_fix_and_tell_once(
    deployed: Deployed,
) -> None:
    gate = Gate("CreateRoute")  # both fix runs send their CreateRoute together

    results = together(
        deployed.invocation(AUDITOR, sample("CreateRoute", deployed.ids), gate),
        deployed.invocation(SWEEP, schedule(), gate),
    )

    assert all(isinstance(r, dict) for r in results), results
    assert deployed.routes_to_a() == 1
    assert deployed.announced()["remediation.applied"] == 1
    assert len([p for p in deployed.slack.delivered if "remediation.applied" in str(p)]) == 1


def test_two_fix_runs_on_the_same_route_table_at_once_make_one_change(
    deployed: Deployed,
) -> None:
    gate = Gate("CreateRoute")

    results = together(
        deployed.invocation(SWEEP, schedule(), gate),
        deployed.invocation(SWEEP, schedule(), gate),
    )

    assert all(isinstance(r, dict) for r in results), results
    assert deployed.routes_to_a() == 1
    assert deployed.announced()["remediation.applied"] == 1
    records = deployed.stack.clients.client("dynamodb").scan(
        TableName=deployed.stack.physical["StateTable"]
    )["Items"]
    results_of = Counter(r["result"]["S"] for r in records if r["pk"]["S"].startswith("change#"))
    # Both runs recorded what they did: one made the route, one found it made.
    assert results_of["applied"] == 1
    assert sum(n for k, n in results_of.items() if k.startswith("already done")) == 1
