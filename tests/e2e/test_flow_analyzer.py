"""The flow analyzer as deployed: template.yaml's schedule, its environment and state table, in
moto. Flow logs of two peered VPCs in CloudWatch Logs (default format) and S3 (a custom v5
format with its header line); the watermark, late records and carry-over across runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from peerguard_lab.flowlab import (
    V5_FIELDS,
    Record,
    Traffic,
    deliver_to_bucket,
    deliver_to_log_group,
)
from peerguard_lab.stack import LambdaContext
from tests.conftest import ACCOUNT, REGION
from tests.e2e.conftest import World
from tests.integration import awsnet

FN = "FlowAnalyzerFunction"
GROUP = "/vpc/app-flow-logs"
BUCKET = "db-flow-logs"
V5 = V5_FIELDS
W = 900
# moto keeps log events of the last 14 days: the story happens in the last few hours.
NOW = int(time.time())
NOW_WINDOW = NOW - NOW % W


def at(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


@dataclass(frozen=True)
class Net:
    app: awsnet.Vpc
    db: awsnet.Vpc
    pcx: str
    s3_flow_log: str


def build(ec2: Any) -> Net:
    """app (10.0.0.0/16) peered with db (10.1.0.0/16); app logs to CloudWatch Logs in the
    default format, db to S3 in a v5 format; an unpeered VPC (10.9.0.0/16) beside them."""
    app, db, pcx = awsnet.peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")
    awsnet.vpc(ec2, "10.9.0.0/16")
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName=GROUP)
    ec2.create_flow_logs(
        ResourceIds=[app.vpc_id],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName=GROUP,
        DeliverLogsPermissionArn=awsnet.FLOW_LOG_ROLE,
    )
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    fl = ec2.create_flow_logs(
        ResourceIds=[db.vpc_id],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::{BUCKET}",
        LogFormat=" ".join(f"${{{f}}}" for f in V5),
    )["FlowLogIds"][0]
    return Net(app, db, pcx, fl)


def deliver(net: Net, records: list[Record]) -> None:
    """Each record where both VPCs' flow logs put it (a crossing flow is logged on both
    sides: egress at the source, ingress at the destination)."""
    logs = boto3.client("logs", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    deliver_to_log_group(logs, GROUP, records, account=ACCOUNT)
    db_side = [
        Record(**{**r.__dict__, "vpc_id": net.db.vpc_id})
        for r in records
        if r.src.startswith("10.1.") or r.dst.startswith("10.1.")
    ]
    deliver_to_bucket(
        s3, BUCKET, net.s3_flow_log, db_side, account=ACCOUNT, region=REGION, fields=V5
    )


@pytest.fixture
def net(ec2: Any) -> Net:
    return build(ec2)


@pytest.fixture
def world(deploy: Callable[..., World]) -> World:
    return deploy()


def test_the_template_schedules_the_analyzer_every_15_minutes_by_default(world: World) -> None:
    props = world.stack.template["Resources"][FN]["Properties"]
    assert world.stack.schedules()[FN] == ["Analyse"]
    assert props["Events"]["Analyse"]["Properties"]["Schedule"] == {
        "Fn::Sub": "rate(${FlowAnalysisMinutes} minutes)"
    }
    assert world.stack.parameters["FlowAnalysisMinutes"] == "15"
    with pytest.raises(ValueError, match="no Schedule event"):
        world.stack.tick("ChangeAuditorFunction")


def test_a_port_scan_and_a_reject_spike_are_found_on_the_peering_from_both_sources(
    net: Net, deploy: Callable[..., World]
) -> None:
    # Given 12 windows of steady app->db traffic (what the baseline learns first), then, in
    # the last settled window, a port scan of a db host and a burst of refused connections,
    # and a scan between VPCs that are not peered (in the same log group)
    world = deploy(FlowBackfillMinutes=str(13 * 15))
    first = NOW_WINDOW - 14 * W
    scan_window = NOW_WINDOW - 2 * W  # settled: its end is 15 minutes ago or more
    traffic = Traffic().steady("10.0.1.10", "10.1.1.20", 5432, first, 14)
    traffic.port_scan("10.0.1.66", "10.1.1.20", scan_window, range(1000, 1030))
    traffic.reject_spike("10.0.1.11", "10.1.1.21", 6379, scan_window)
    traffic.port_scan("10.0.1.66", "10.9.1.5", scan_window, range(2000, 2040))
    deliver(net, traffic.records)
    # When the schedule ticks now (the first run reaches back FlowBackfillMinutes)
    result = world.stack.tick(FN, at(NOW))
    # Then every settled window was analysed, and both anomalies reported on the peering
    assert result["status"] == "analysed", result
    assert result["windows"] == 13 and result["carried"] == 0
    assert result["findings"] == {"flow.port_scan": 1, "flow.reject_spike": 1}, result
    assert result["sources"] == 2 and set(result["engines"]) == {"duckdb"}
    (message,) = world.slack.take()  # one message per peering
    text = str(message)
    assert net.pcx in text and "Port scan across a peering" in text
    assert "Spike in rejected traffic on a peering" in text
    sns = [m["body"] for m in world.sns()]
    assert {m["check_id"] for m in sns} == {"flow.port_scan", "flow.reject_spike"}
    assert {m["peering_connection_id"] for m in sns} == {net.pcx}
    scan = next(m for m in sns if m["check_id"] == "flow.port_scan")
    assert scan["evidence"]["source"] == "10.0.1.66"
    assert scan["evidence"]["distinct_ports"] == 30  # not the 40 ports of the unpeered VPC
    # And each crossing flow counted once, though both VPCs logged it
    steady = 13 * (4 * 2 + 1)  # the 13 windows analysed (the 14th is before the backfill)
    assert result["records"]["flows"] == steady + 30 + 20
    assert result["records"]["seen_twice"] == steady + 30 + 20


def test_a_second_run_counts_nothing_twice_and_a_late_record_once(net: Net, world: World) -> None:
    # Given traffic in the window that ended 10 minutes ago: not settled yet (delay 15)
    window = NOW_WINDOW - 3 * W
    tick = window + W + 10 * 60
    deliver(net, Traffic().steady("10.0.1.10", "10.1.1.20", 5432, window, 1).records)
    first = world.stack.tick(FN, at(tick))
    assert first["status"] == "analysed"
    assert first["last_window"] == datetime.fromtimestamp(window - W, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )  # the window before it was the last settled one
    # When a record of that window arrives 12 minutes after its start (within the delay)
    late = Record("10.0.1.12", "10.1.1.20", 41000, 5432, window + 400, delay=12 * 60)
    deliver(net, [late])
    # And the schedule ticks when the window has settled, then again
    second = world.stack.tick(FN, at(tick + 6 * 60))
    third = world.stack.tick(FN, at(tick + 6 * 60))
    # Then the window was analysed once, with the late record
    assert second["windows"] == 1 and second["records"]["flows"] == 4 * 2 + 1 + 1
    assert third["windows"] == 0 and third["records"]["flows"] == 0
    assert third["watermark"] == second["watermark"]


def test_out_of_time_the_rest_is_carried_to_the_next_run(
    net: Net, deploy: Callable[..., World]
) -> None:
    # Given 6 settled windows of traffic and no watermark yet
    first = NOW_WINDOW - 7 * W
    deliver(net, Traffic().steady("10.0.1.10", "10.1.1.20", 5432, first, 7).records)
    stack = deploy(FlowBackfillMinutes=str(6 * 15)).stack
    # When the first run has just the reserve left (60 s) when it starts
    reserve_ms = 60_000
    short = stack.tick(FN, at(NOW), remaining_ms=reserve_ms + 1)
    # Then it analyses one window and carries the rest, saying why
    assert short["windows"] == 1 and short["carried"] == 5
    assert "before the deadline" in short["stopped"]
    # And the next run, with time, picks up at the watermark and finishes
    rest = stack.tick(FN, at(NOW))
    assert rest["windows"] == 5 and rest["carried"] == 0
    assert rest["first_window"] == short["watermark"]
    total = short["records"]["flows"] + rest["records"]["flows"]
    assert total == 6 * (4 * 2 + 1)


def test_the_analyzer_context_default_leaves_time_for_windows() -> None:
    assert LambdaContext(FN).get_remaining_time_in_millis() == 120_000
