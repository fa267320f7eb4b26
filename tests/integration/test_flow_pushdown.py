"""Athena and Logs Insights call shapes, with botocore's Stubber (moto runs neither query)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from peerguard.aws.flows.pushdown import (
    ATHENA,
    EMBEDDED,
    INSIGHTS,
    INSIGHTS_MAX_QUERY,
    Athena,
    AthenaTable,
    Insights,
    PushdownError,
    athena_query,
    insights_queries,
    label,
    path_for,
)
from peerguard.aws.flows.sources import FlowLogInfo
from peerguard.domain.flows.aggregates import Counts, Window, seen_once
from peerguard.domain.flows.crossing import Direction
from peerguard.domain.flows.formats import DEFAULT, parse_log_format
from tests.flowdata import ACCOUNT, REGION, T0, crossing, side

WEB = side("web", "10.0.0.0/16", "2600:1f18:a:100::/56")
DB = side("db", "10.1.0.0/16")
PCX = crossing("pcx-web-db", WEB, DB)
WINDOW = Window(900, T0, T0 + 900)
TABLE = AthenaTable("peerguard", "vpc_flow_lines", "flow-bucket", ACCOUNT)
S3_LOG = FlowLogInfo("fl-0aa11", "vpc-db", "s3", bucket="flow-bucket")
CWL_LOG = FlowLogInfo("fl-0bb22", "vpc-db", "cloud-watch-logs", log_group="/vpc/flows")


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def client(service: str) -> tuple[Any, Stubber]:
    c = boto3.client(service, region_name=REGION)
    return c, Stubber(c)


def cell(v: str | None) -> dict[str, str]:
    return {} if v is None else {"VarCharValue": v}


HEADER = ["kind", "peering_id", "direction", "window_start", "src", "dst", "port", "protocol",
          "action", "reply", "packets", "bytes", "records", "seen_at"]  # fmt: skip


def test_path_for_switches_at_the_volume_threshold() -> None:
    assert path_for(100, 100, ATHENA) == EMBEDDED
    assert path_for(101, 100, ATHENA) == ATHENA
    assert path_for(5, 0, INSIGHTS) == INSIGHTS


def test_athena_runs_the_shared_query_polls_and_pages_its_results() -> None:
    athena, stub = client("athena")
    sql = athena_query(TABLE, REGION, [S3_LOG], (PCX,), WINDOW)
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": "q-1"},
        {
            "QueryString": sql,
            "WorkGroup": "peerguard",
            "QueryExecutionContext": {"Database": "peerguard"},
            "ResultConfiguration": {"OutputLocation": "s3://results/peerguard/"},
        },
    )
    for state in ("QUEUED", "RUNNING"):
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"Status": {"State": state}}},
            {"QueryExecutionId": "q-1"},
        )
    stub.add_response(
        "get_query_execution",
        {"QueryExecution": {"Status": {"State": "SUCCEEDED"},
                            "Statistics": {"DataScannedInBytes": 12345}}},
        {"QueryExecutionId": "q-1"},
    )  # fmt: skip
    flow = ["flow", "pcx-web-db", "requester-to-accepter", str(T0), "10.0.1.5", "10.1.2.7",
            "5432", "6", "ACCEPT", "0", "15", "1500", "2", "dst"]  # fmt: skip
    copy = [*flow[:10], "1", "100", "1", "src"]  # the same flow in web's log: a copy
    stats = ["nodata", None, None, None, None, None, None, None, None, None, None, None, "3", None]
    stub.add_response(
        "get_query_results",
        {"ResultSet": {"Rows": [{"Data": [cell(h) for h in HEADER]},
                                {"Data": [cell(v) for v in flow]}]},
         "NextToken": "page-2"},
        {"QueryExecutionId": "q-1"},
    )  # fmt: skip
    stub.add_response(
        "get_query_results",
        {
            "ResultSet": {
                "Rows": [{"Data": [cell(v) for v in stats]}, {"Data": [cell(v) for v in copy]}]
            }
        },
        {"QueryExecutionId": "q-1", "NextToken": "page-2"},
    )
    sleeps = Sleeps()
    runner = Athena(athena, "peerguard", "s3://results/peerguard/", sleep=sleeps)
    with stub:
        aggs = runner.analyse(TABLE, REGION, [S3_LOG], (PCX,), WINDOW)
    stub.assert_no_pending_responses()
    assert sleeps.calls == [1.0, 1.0] and runner.scanned_bytes == 12345
    (f,) = aggs.flows
    assert (f.direction, f.port, f.reply, f.packets, f.bytes, f.records) == (
        Direction.REQUESTER_TO_ACCEPTER, 5432, False, 15, 1500, 2,
    )  # fmt: skip
    # db's log is read, so the copy web's log has of a flow into db is not counted again.
    assert aggs.counts == Counts(flows=2, nodata=3, seen_twice=1) and aggs.engine == "athena"


def test_athena_creates_its_table_and_says_why_a_query_failed() -> None:
    athena, stub = client("athena")
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": "ddl"},
        {"QueryString": TABLE.ddl(), "WorkGroup": "primary"},
    )
    stub.add_response(
        "get_query_execution",
        {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}},
        {"QueryExecutionId": "ddl"},
    )
    stub.add_response(
        "start_query_execution", {"QueryExecutionId": "q-2"}, {"QueryString": ANY,
        "WorkGroup": "primary", "QueryExecutionContext": {"Database": "peerguard"}},
    )  # fmt: skip
    stub.add_response(
        "get_query_execution",
        {"QueryExecution": {"Status": {"State": "FAILED",
                                       "StateChangeReason": "TABLE_NOT_FOUND: vpc_flow_lines"}}},
        {"QueryExecutionId": "q-2"},
    )  # fmt: skip
    runner = Athena(athena, sleep=Sleeps())
    with stub:
        runner.create_table(TABLE)
        with pytest.raises(PushdownError, match="q-2 failed: TABLE_NOT_FOUND"):
            runner.run("SELECT 1", "peerguard")
    stub.assert_no_pending_responses()


def test_athena_stops_a_query_that_runs_too_long() -> None:
    athena, stub = client("athena")
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-3"}, None)
    for _ in range(3):
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"Status": {"State": "RUNNING"}}},
            {"QueryExecutionId": "q-3"},
        )
    stub.add_response("stop_query_execution", {}, {"QueryExecutionId": "q-3"})
    runner = Athena(athena, poll_seconds=5, timeout_seconds=10, sleep=Sleeps())
    with stub, pytest.raises(PushdownError, match="still running after 10 s"):
        runner.run("SELECT 1")
    stub.assert_no_pending_responses()


def insights_row(**values: str) -> list[dict[str, str]]:
    return [{"field": k, "value": v} for k, v in values.items()] + [
        {"field": "@ptr", "value": "abc"}
    ]


def test_insights_runs_request_and_reply_stats_queries_and_labels_the_rows() -> None:
    logs, stub = client("logs")
    queries = insights_queries(DEFAULT, (PCX,), WINDOW)
    assert [r for r, _ in queries] == [False, True]
    start, end = T0, T0 + 900 + 900  # the window plus the delivery slack
    rows = {
        False: [insights_row(window_start=str(T0), src="10.0.1.5", dst="10.1.2.7", port="5432",
                             protocol="6", action="ACCEPT", packets="15", bytes="1500",
                             records="2"),
                insights_row(window_start=str(T0), src="10.0.1.5", dst="10.0.9.9", port="22",
                             protocol="6", action="ACCEPT", packets="1", bytes="60",
                             records="1")],  # not across the peering (Insights' CIDR match
                                             # is per side; this one is ours to drop)
        True: [insights_row(window_start=str(T0), src="10.1.2.7", dst="10.0.1.5", port="5432",
                            protocol="6", action="ACCEPT", packets="9", bytes="9000",
                            records="2")],
    }  # fmt: skip
    for i, (replies, q) in enumerate(queries):
        stub.add_response(
            "start_query",
            {"queryId": f"iq-{i}"},
            {"logGroupName": "/vpc/flows", "startTime": start, "endTime": end,
             "queryString": q, "limit": 10000},
        )  # fmt: skip
        stub.add_response("get_query_results", {"status": "Running", "results": []},
                          {"queryId": f"iq-{i}"})  # fmt: skip
        stub.add_response(
            "get_query_results",
            {"status": "Complete", "results": rows[replies],
             "statistics": {"bytesScanned": 1000.0}},
            {"queryId": f"iq-{i}"},
        )  # fmt: skip
    sleeps = Sleeps()
    runner = Insights(logs, sleep=sleeps)
    with stub:
        aggs = runner.analyse(CWL_LOG, (PCX,), WINDOW)
    stub.assert_no_pending_responses()
    assert sleeps.calls == [1.0, 1.0] and runner.scanned_bytes == 2000
    got = sorted(
        (f.direction.value, f.src, f.port, f.reply, f.packets, f.records) for f in aggs.flows
    )
    assert got == [
        ("accepter-to-requester", "10.1.2.7", 5432, True, 9, 2),
        ("requester-to-accepter", "10.0.1.5", 5432, False, 15, 2),
    ]
    assert aggs.counts == Counts(flows=4) and aggs.engine == "logs-insights"
    assert not aggs.truncated


def test_insights_query_text() -> None:
    (_, requests), (_, replies) = insights_queries(DEFAULT, (PCX,), WINDOW)
    fields = ", ".join("f_" + f.replace("-", "_") for f in DEFAULT.fields)
    assert requests.startswith(f'parse @message "{" ".join(["*"] * 14)}" as {fields}\n')
    assert (
        'isIpInSubnet(f_srcaddr, "10.0.0.0/16") or isIpInSubnet(f_srcaddr, "2600:1f18:a:100::/56")'
        in requests
    )
    assert f"f_start >= {T0} and f_start < {T0 + 900}" in requests
    assert 'f_log_status = "OK"' in requests
    assert "| filter not (f_srcport < 32768 and f_dstport >= 32768)" in requests
    assert "f_dstport as port" in requests and "f_srcport as port" in replies
    assert (
        "| stats sum(f_packets) as packets, sum(f_bytes) as bytes, count(*) as records" in requests
    )
    with pytest.raises(ValueError, match="needs the fields"):
        insights_queries(parse_log_format("${srcaddr} ${dstaddr}"), (PCX,), WINDOW)


def test_insights_queries_stay_under_the_size_limit() -> None:
    many = tuple(
        crossing(
            f"pcx-{i}",
            side(f"a{i}", f"10.{i}.0.0/16"),
            side(f"b{i}", f"172.{16 + i % 16}.{i}.0/24"),
        )
        for i in range(120)
    )
    queries = insights_queries(DEFAULT, many, WINDOW)
    assert len(queries) > 2 and len(queries) % 2 == 0
    assert all(len(q) <= INSIGHTS_MAX_QUERY for _, q in queries)
    text = "".join(q for _, q in queries)
    assert all(f'"10.{i}.0.0/16"' in text for i in range(120))


def test_insights_failure_and_truncation() -> None:
    logs, stub = client("logs")
    stub.add_response("start_query", {"queryId": "iq"}, None)
    stub.add_response("get_query_results", {"status": "Failed", "results": []}, {"queryId": "iq"})
    start = datetime.fromtimestamp(T0, UTC)
    with stub, pytest.raises(PushdownError, match="iq on /vpc/flows: Failed"):
        Insights(logs, sleep=Sleeps()).run("/vpc/flows", "q", start, start)
    logs, stub = client("logs")
    stub.add_response("start_query", {"queryId": "iq"}, None)
    full = [insights_row(src="10.0.0.1") for _ in range(10_000)]
    stub.add_response("get_query_results", {"status": "Complete", "results": full}, None)
    runner = Insights(logs, sleep=Sleeps())
    with stub:
        assert len(runner.run("/vpc/flows", "q", start, start)) == 10_000
    assert runner.truncated


def test_insights_rows_seen_by_both_vpcs_count_once() -> None:
    rows = [(False, {"window_start": str(T0), "src": "10.0.1.5", "dst": "10.1.2.7",
                     "port": "22", "protocol": "6", "action": "ACCEPT", "packets": "1",
                     "bytes": "60", "records": "1"})]  # fmt: skip
    ((f, at),) = label(rows, (PCX,), "vpc-web")
    assert at == "src" and f.direction is Direction.REQUESTER_TO_ACCEPTER
    assert label(rows, (PCX,), "vpc-db")[0][1] == "dst"
    assert label(rows, (PCX,), "vpc-other") == []  # logged by a VPC of neither side
    assert label(rows, (PCX,), None)[0][1] is None
    both = seen_once(label(rows, (PCX,), "vpc-web") + label(rows, (PCX,), "vpc-db"), (PCX,),
                     {"vpc-web", "vpc-db"})  # fmt: skip
    assert len(both[0]) == 1 and both[1] == 1
