"""`peerguard flows` on a moto topology with flow-log records it has never seen: the planted
anomalies on the right peering, nothing on a peering whose traffic matches its baseline,
nothing for traffic that crosses no peering; from CloudWatch Logs, S3 and files, in the
default and custom formats; the chart, parsed."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from peerguard.cli import EXIT_ERROR, EXIT_FINDINGS, main
from peerguard.domain.flows.aggregates import iso
from peerguard_lab.flowlab import (
    V2_FIELDS,
    V5_FIELDS,
    Record,
    Traffic,
    deliver_to_bucket,
    deliver_to_log_group,
)
from tests.conftest import ACCOUNT, REGION
from tests.flowdata import write
from tests.integration import awsnet

W = 900
NOW = int(time.time())  # moto keeps log events of the last 14 days
UNTIL = NOW - NOW % W - W
SINCE = UNTIL - 2 * W
BASELINE_START = SINCE - 12 * W
ANOMALY = UNTIL - W  # the last window analysed
V5 = V5_FIELDS
CACHE_FORMAT = ("version", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets",
                "bytes", "start", "end", "action", "log-status", "account-id")  # fmt: skip
NS = {"svg": "http://www.w3.org/2000/svg"}


@dataclass(frozen=True)
class Topology:
    app: str
    db: str
    cache: str
    app_db: str  # anomalies planted here
    app_cache: str  # traffic as usual here
    s3_flow_log: str
    records: tuple[Record, ...]


def _traffic() -> Traffic:
    t = Traffic()
    t.steady("10.0.1.10", "10.1.1.20", 5432, BASELINE_START, 14)  # app -> db, every window
    t.steady("10.0.1.10", "10.2.1.30", 6379, BASELINE_START, 14)  # app -> cache, every window
    t.port_scan("10.0.1.66", "10.1.1.20", ANOMALY, range(1000, 1030))  # across app-db
    t.reject_spike("10.0.1.11", "10.1.1.21", 6379, ANOMALY)  # across app-db
    t.port_scan("10.0.1.66", "10.9.1.5", ANOMALY, range(2000, 2040))  # to a VPC not peered
    return t


@pytest.fixture
def topology(ec2: Any) -> Topology:
    """app 10.0/16 peered with db 10.1/16 and cache 10.2/16; other 10.9/16 peered with
    nobody. app logs to CloudWatch Logs (default format), cache too (a custom format,
    declared in its LogFormat), db to S3 (v5 fields, with a header line)."""
    app, db, app_db = awsnet.peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")
    cache = awsnet.vpc(ec2, "10.2.0.0/16")
    app_cache = awsnet.peer(ec2, app, cache)
    awsnet.vpc(ec2, "10.9.0.0/16")
    logs = boto3.client("logs", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    for vpc, group, fields in ((app, "/vpc/app", V2_FIELDS), (cache, "/vpc/cache", CACHE_FORMAT)):
        logs.create_log_group(logGroupName=group)
        ec2.create_flow_logs(
            ResourceIds=[vpc.vpc_id],
            ResourceType="VPC",
            TrafficType="ALL",
            LogDestinationType="cloud-watch-logs",
            LogGroupName=group,
            DeliverLogsPermissionArn=awsnet.FLOW_LOG_ROLE,
            LogFormat=" ".join(f"${{{f}}}" for f in fields),
        )
    s3.create_bucket(Bucket="flow-archive")
    fl = ec2.create_flow_logs(
        ResourceIds=[db.vpc_id],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination="arn:aws:s3:::flow-archive",  # moto takes no prefix here
        LogFormat=" ".join(f"${{{f}}}" for f in V5),
    )["FlowLogIds"][0]
    records = tuple(_traffic().records)
    deliver_to_log_group(logs, "/vpc/app", records, account=ACCOUNT)  # app sees all of it
    on = {"10.1.": db.vpc_id, "10.2.": cache.vpc_id}
    for prefix, vpc_id in on.items():
        theirs = [
            Record(**{**r.__dict__, "vpc_id": vpc_id})
            for r in records
            if r.dst.startswith(prefix) or r.src.startswith(prefix)
        ]
        if prefix == "10.1.":
            deliver_to_bucket(s3, "flow-archive", fl, theirs, account=ACCOUNT, region=REGION,
                              fields=V5)  # fmt: skip
        else:
            deliver_to_log_group(logs, "/vpc/cache", theirs, account=ACCOUNT, fields=CACHE_FORMAT)
    return Topology(app.vpc_id, db.vpc_id, cache.vpc_id, app_db, app_cache, fl, records)


def flows(args: list[str], tmp_path: Path) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "flows.json"
    times = ["--since", iso(SINCE), "--until", str(UNTIL), "--baseline-start", iso(BASELINE_START)]
    code = main(
        ["flows", *args, *times, "--region", REGION, "--format", "json", "--output", str(out)],
        session=boto3.Session(region_name=REGION),
    )
    return code, json.loads(out.read_text())


def planted(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["check_id"], f["peering_connection_id"]) for f in report["findings"]}


def test_cloudwatch_and_s3_records_show_the_planted_anomalies_on_their_peering_only(
    topology: Topology, tmp_path: Path
) -> None:
    # When the three flow logs are read: two log groups (default and custom format) and S3
    code, report = flows(
        ["--log-group", "/vpc/app", "--log-group", "/vpc/cache", "--s3", "s3://flow-archive"],
        tmp_path,
    )
    # Then the scan and the spike are reported on app-db, nothing on app-cache
    assert code == EXIT_FINDINGS
    assert planted(report) == {
        ("flow.port_scan", topology.app_db),
        ("flow.reject_spike", topology.app_db),
    }
    scan = next(f for f in report["findings"] if f["check_id"] == "flow.port_scan")
    assert scan["evidence"]["source"] == "10.0.1.66"
    assert scan["evidence"]["distinct_ports"] == 30  # the 40 ports of 10.9.1.5 are not here
    assert scan["evidence"]["window_start"] == iso(ANOMALY)
    spike = next(f for f in report["findings"] if f["check_id"] == "flow.reject_spike")
    assert spike["evidence"]["packets"] >= 2000 and spike["evidence"]["baseline"] == 2.0
    s = report["summary"]
    assert s["baseline_windows"] == {topology.app_db: 12, topology.app_cache: 12}
    # And the window's aggregates are per peering, with nothing to or from the unpeered VPC
    assert {f["peering_connection_id"] for f in report["flows"]} == {
        topology.app_db,
        topology.app_cache,
    }
    assert not [f for f in report["flows"] if "10.9." in f["source"] + f["destination"]]
    assert s["records"]["not_crossing"] == 40  # the scan of 10.9.1.5, in app's log
    # And each crossing flow read (baseline windows too) is counted once though both sides
    # logged it
    steady = 14 * 2 * (4 * 2 + 1)  # 12 + 2 windows, two peerings
    assert s["records"]["flows"] == steady + 30 + 20
    assert s["records"]["seen_twice"] == steady + 30 + 20
    assert s["records"]["malformed"] == 0 and not s["warnings"]


def test_local_files_in_two_formats_give_the_same_verdict(
    topology: Topology, tmp_path: Path
) -> None:
    # Given app's records in a plain file without a header (the format given) and the same
    # records again in a gzip file with a v5 header line
    records = topology.records
    plain = write(tmp_path / "app.log", [r.line(CACHE_FORMAT, ACCOUNT) for r in records])
    (tmp_path / "v5").mkdir()
    write(tmp_path / "v5" / "app.log.gz", [r.line(V5, ACCOUNT) for r in records],
          header=" ".join(V5))  # fmt: skip
    for args in (
        ["--file", str(plain), "--log-format", " ".join(f"${{{f}}}" for f in CACHE_FORMAT)],
        ["--file", str(tmp_path / "v5")],
    ):
        code, report = flows(args, tmp_path)
        assert code == EXIT_FINDINGS
        assert planted(report) == {
            ("flow.port_scan", topology.app_db),
            ("flow.reject_spike", topology.app_db),
        }, args
        assert report["summary"]["records"]["not_crossing"] == 40


def _strip_doctype(text: str) -> str:
    return text.split("\n", 1)[1] if text.startswith("<!DOCTYPE") else text


def test_the_chart_marks_the_anomalies_on_their_peering(topology: Topology, tmp_path: Path) -> None:
    page, picture = tmp_path / "flows.html", tmp_path / "flows.svg"
    for chart in (page, picture):
        code, _ = flows(["--log-group", "/vpc/app", "--chart", str(chart)], tmp_path)
        assert code == EXIT_FINDINGS
    # The page: self-contained (no script, nothing fetched), one section per peering
    text = page.read_text()
    assert "<script" not in text and "http://" not in text.replace(NS["svg"], "")
    root = ET.fromstring(_strip_doctype(text))
    sections = {s.findtext("h2"): s for s in root.iter("section")}
    assert set(sections) == {topology.app_db, topology.app_cache}
    for pcx, section in sections.items():
        (svg,) = section.findall("svg:svg", NS)
        assert svg.find(".//svg:polyline[@class='accepted']", NS) is not None
        rejected = svg.find(".//svg:polyline[@class='rejected']", NS)
        assert rejected is not None and len(rejected.get("points", "").split()) == 14
        marked = [g.get("data-window") for g in svg.iterfind(".//svg:g[@class='anomaly']", NS)]
        assert marked == ([iso(ANOMALY)] if pcx == topology.app_db else []), pcx
    # The SVG alone: the same panels, well-formed
    doc = ET.fromstring(picture.read_text())
    panels = {g.get("data-peering") for g in doc.iterfind("svg:g[@class='peering']", NS)}
    assert panels == {topology.app_db, topology.app_cache}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "name the records to read"),
        (["--file", "x.log", "--since", "yesterday"], "bad time 'yesterday'"),
        (["--file", "nowhere.log"], "no such file"),
        (["--log-group", "/g", "--chart", "out.png"], "expected a file ending in .html or .svg"),
        (["--log-group", "/g", "--log-format", "${srcaddr} ${nonsense}"], "--log-format"),
        (["--s3", "bucket/prefix"], "expected s3://BUCKET/PREFIX"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    aws: None, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code = main(["flows", *args, "--region", REGION], session=boto3.Session(region_name=REGION))
    err = capsys.readouterr().err
    assert code == EXIT_ERROR and message in err and len(err.strip().splitlines()) == 1, err
