"""The analyzer's reading, per source: which flow logs it reads, the volume thresholds
(cut when pushdown is off, Athena when it is on), errors that skip a source or carry the
window."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from peerguard.aws.clients import Clients
from peerguard.aws.flows.sources import FlowLogInfo
from peerguard.domain.flows.aggregates import Window
from peerguard.domain.flows.crossing import crossings
from peerguard.settings import FlowSettings
from peerguard.usecases.flows import (
    BucketSource,
    FlowReader,
    LogGroupSource,
    as_of,
    plan_sources,
    settled_until,
)
from peerguard_lab.flowlab import Traffic, deliver_to_bucket, deliver_to_log_group
from tests.conftest import ACCOUNT, REGION
from tests.integration import awsnet

W = 900
NOW = int(time.time())
T = NOW - NOW % W - 4 * W
WINDOW = Window(W, T, T + W)


@pytest.fixture
def pair(ec2: Any) -> tuple[Any, ...]:
    a, b, pcx = awsnet.peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")
    return a, b, pcx


def test_one_flow_log_per_vpc_is_read_so_nothing_is_counted_twice(
    ec2: Any, clients: Clients, pair: tuple[Any, ...]
) -> None:
    a, b, _ = pair
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="archive")
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="/vpc/a")
    logs.create_log_group(logGroupName="/vpc/rejects")

    def flow_log(vpc: str, traffic: str, dest: str) -> None:
        kw: dict[str, Any] = (
            {"LogDestinationType": "s3", "LogDestination": "arn:aws:s3:::archive"}
            if dest == "s3"
            else {"LogGroupName": dest, "DeliverLogsPermissionArn": awsnet.FLOW_LOG_ROLE}
        )
        ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType=traffic, **kw)

    # a logs ALL twice (CloudWatch Logs and S3) and REJECT once; b only ACCEPT and REJECT
    flow_log(a.vpc_id, "ALL", "/vpc/a")
    flow_log(a.vpc_id, "ALL", "s3")
    flow_log(a.vpc_id, "REJECT", "/vpc/rejects")
    flow_log(b.vpc_id, "ACCEPT", "s3")
    flow_log(b.vpc_id, "REJECT", "/vpc/rejects")
    from peerguard.aws.reader import Reader

    snap = Reader(clients).full([REGION])
    plan = plan_sources(clients, crossings(snap), ACCOUNT, [REGION])
    assert plan.observers == {a.vpc_id, b.vpc_id} and not plan.warnings
    groups = [s for s in plan.sources if isinstance(s, LogGroupSource)]
    buckets = [s for s in plan.sources if isinstance(s, BucketSource)]
    # a: its CloudWatch Logs ALL log only; b: both of its logs
    assert [(g.log_group, g.observer) for g in groups] == [
        ("/vpc/a", a.vpc_id),
        ("/vpc/rejects", b.vpc_id),
    ]
    (bucket,) = buckets
    assert [(f.traffic_type, f.observer) for f in bucket.flow_logs] == [("ACCEPT", b.vpc_id)]


def _crossings(clients: Clients) -> Any:
    from peerguard.aws.reader import Reader

    return crossings(Reader(clients).full([REGION]))


def test_over_the_threshold_without_pushdown_the_window_is_cut_and_says_so(
    clients: Clients, pair: tuple[Any, ...]
) -> None:
    a, b, _ = pair
    logs = boto3.client("logs", region_name=REGION)
    records = Traffic().steady("10.0.1.10", "10.1.1.20", 5432, T, 1, per_window=10).records
    deliver_to_log_group(logs, "/vpc/a", records, account=ACCOUNT)
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="archive")
    deliver_to_bucket(s3, "archive", "fl-0123abcd", records, account=ACCOUNT, region=REGION)
    settings = FlowSettings(pushdown_log_events=5, pushdown_s3_bytes=1)
    reader = FlowReader(clients, settings, ACCOUNT)
    cs = _crossings(clients)
    got = reader.read(
        [LogGroupSource(REGION, "/vpc/a", observer=a.vpc_id),
         BucketSource(REGION, "archive", flow_logs=(
             FlowLogInfo("fl-0123abcd", b.vpc_id, "s3", bucket="archive"),))],
        cs, WINDOW, {a.vpc_id},
    )  # fmt: skip
    assert got.aggregates.truncated and len(got.cut) == 2, got
    assert "analysed the first 5" in got.cut[0] and "analysed 0 of" in got.cut[1]
    assert got.aggregates.counts.flows == 5  # the first five events, nothing from S3


def test_over_the_threshold_with_pushdown_s3_goes_to_athena(
    clients: Clients, pair: tuple[Any, ...]
) -> None:
    _, b, _ = pair
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="archive")
    records = Traffic().steady("10.0.1.10", "10.1.1.20", 5432, T, 1).records
    deliver_to_bucket(s3, "archive", "fl-0123abcd", records, account=ACCOUNT, region=REGION)
    cs = _crossings(clients)
    athena = clients.client("athena")  # the client the reader will use, stubbed
    stub = Stubber(athena)
    for qid in ("ddl-1", "query-1"):
        stub.add_response(
            "start_query_execution", {"QueryExecutionId": qid},
            {"QueryString": ANY, "WorkGroup": "peerguard-flows", **(
                {"QueryExecutionContext": {"Database": "peerguard_flows"}}
                if qid == "query-1" else {})},
        )  # fmt: skip
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"Status": {"State": "SUCCEEDED"},
                                "Statistics": {"DataScannedInBytes": 1234}}},
            {"QueryExecutionId": qid},
        )  # fmt: skip
    header = ["kind", "peering_id", "direction", "window_start", "src", "dst", "port",
              "protocol", "action", "reply", "packets", "bytes", "records", "seen_at"]  # fmt: skip
    stub.add_response(
        "get_query_results",
        {"ResultSet": {"Rows": [{"Data": [{"VarCharValue": h} for h in header]}]}},
        {"QueryExecutionId": "query-1"},
    )
    settings = FlowSettings(
        pushdown_s3_bytes=1, athena_workgroup="peerguard-flows", athena_database="peerguard_flows"
    )
    reader = FlowReader(clients, settings, ACCOUNT, pushdown=True, sleep=lambda s: None)
    source = BucketSource(
        REGION, "archive", flow_logs=(FlowLogInfo("fl-0123abcd", b.vpc_id, "s3", bucket="archive"),)
    )
    with stub:
        got = reader.read([source], cs, WINDOW, {b.vpc_id})
    stub.assert_no_pending_responses()
    assert got.engines == {"athena": 1} and not got.cut and not got.warnings


def test_a_source_that_refuses_is_skipped_with_a_warning(
    clients: Clients, pair: tuple[Any, ...]
) -> None:
    cs = _crossings(clients)
    reader = FlowReader(clients, FlowSettings(), ACCOUNT)
    got = reader.read([LogGroupSource(REGION, "/vpc/none")], cs, WINDOW, set())
    assert not got.retry and got.warnings and "ResourceNotFoundException" in got.warnings[0]


def test_the_runs_time_is_the_ticks_when_recent_and_windows_settle_after_the_delay() -> None:
    now = datetime(2026, 12, 2, 14, 7, tzinfo=UTC)
    assert as_of(datetime(2026, 12, 2, 14, 0, tzinfo=UTC), now).minute == 0
    assert as_of(datetime(2026, 12, 2, 15, 0, tzinfo=UTC), now) == now  # from the future
    assert as_of(datetime(1999, 1, 1, tzinfo=UTC), now) == now  # replayed from long ago
    s = FlowSettings()  # 15-minute windows, 15 minutes of delivery delay
    assert datetime.fromtimestamp(settled_until(now, s), UTC).strftime("%H:%M") == "13:45"
