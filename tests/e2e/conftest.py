"""Fixtures for the end-to-end tests: the stack from template.yaml in moto, a loopback Slack whose
webhook URL is kept in a Secrets Manager secret, fast Slack retries, and captured logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from peerguard.aws.clients import Clients
from peerguard.notify import core
from peerguard.notify import slack as slack_module
from peerguard_lab.slack import FakeSlack, store_webhook
from peerguard_lab.stack import Stack
from tests.integration import awsnet


@dataclass
class World:
    """A deployed stack: its resources, the topic's SQS subscriber, Slack, and Slack's sleeps."""

    stack: Stack
    subscriber: str
    slack: FakeSlack
    sleeps: list[float]

    def sns(self) -> list[dict[str, Any]]:
        return self.stack.messages(self.subscriber)


@pytest.fixture
def slack() -> Iterator[tuple[FakeSlack, str]]:
    with FakeSlack() as server:
        yield server, server.url


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The handlers build notifiers without a sleep argument: the default one records the
    waits instead of sleeping; the per-container webhook cache is reset."""
    waits: list[float] = []
    monkeypatch.setattr(core, "default_sleep", waits.append)
    monkeypatch.setattr(slack_module, "_WEBHOOKS", {})
    return waits


@pytest.fixture
def deploy(
    clients: Clients, slack: tuple[FakeSlack, str], sleeps: list[float]
) -> Callable[..., World]:
    """`deploy(GracePeriodMinutes="0", ...)`: the stack with these parameters and Slack."""
    fake, url = slack
    secret = store_webhook(clients, url)

    def make(**parameters: str) -> World:
        stack = Stack({"SlackWebhookSecretArn": secret, **parameters}, clients)
        return World(stack, stack.subscribe_queue(), fake, sleeps)

    return make


@dataclass(frozen=True)
class Pair:
    """Two peered VPCs (10.0.0.0/16 and 10.1.0.0/16, as in the samples), one subnet each."""

    a: awsnet.Vpc
    b: awsnet.Vpc
    pcx: str

    def ids(self) -> dict[str, str]:
        """The samples' story ids -> these ones."""
        return {
            "vpc-0a1b2c3d4e5f67890": self.a.vpc_id,
            "vpc-0b1c2d3e4f5a67891": self.b.vpc_id,
            "rtb-0a1b2c3d4e5f67890": self.a.main_table,
            "pcx-0a1b2c3d4e5f67890": self.pcx,
        }


@pytest.fixture
def one_sided(ec2: Any) -> Pair:
    """Given a peering where A routes to B but B has no return route yet (both VPCs well
    built otherwise: default security groups and ACLs, a flow log each)."""
    a, b = awsnet.vpc(ec2, "10.0.0.0/16"), awsnet.vpc(ec2, "10.1.0.0/16")
    awsnet.flow_log(ec2, a.vpc_id)
    awsnet.flow_log(ec2, b.vpc_id)
    awsnet.subnet(ec2, a, "10.0.1.0/24")
    awsnet.subnet(ec2, b, "10.1.1.0/24")
    pcx = awsnet.peer(ec2, a, b)
    awsnet.route(ec2, a.main_table, b.cidr, pcx)
    return Pair(a, b, pcx)


@pytest.fixture
def logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The Powertools logger's JSON lines (its handler writes to the stdout of import time)."""
    from peerguard.observability import logger

    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    sink = io.StringIO()
    previous = handler.setStream(sink)
    try:
        yield lambda: [json.loads(line) for line in sink.getvalue().splitlines() if line.strip()]
    finally:
        if previous is not None:
            handler.setStream(previous)


def emf_metrics(stdout: str) -> dict[str, float]:
    """Metric name -> value summed over the EMF records printed on stdout."""
    totals: dict[str, float] = {}
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "_aws" not in record:
            continue
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                values = record[metric["Name"]]
                total = sum(values) if isinstance(values, list) else values
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + total
    return totals
