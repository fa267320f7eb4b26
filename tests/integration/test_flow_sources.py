"""Flow log sources in moto: FilterLogEvents over a window, S3 objects by the AWS key layout,
DescribeFlowLogs; then the engine over what they spooled."""

from __future__ import annotations

import gzip
import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from peerguard.aws.flows.engine import analyse
from peerguard.aws.flows.sources import (
    CloudWatchReader,
    S3Reader,
    VolumeExceeded,
    flow_logs,
    local_files,
    parse_flow_log,
    parse_key,
)
from peerguard.domain.flows.aggregates import Counts, Window
from peerguard.domain.flows.formats import DEFAULT, V2_FIELDS, parse_log_format
from tests.conftest import ACCOUNT, REGION
from tests.flowdata import V2_HEADER, crossing, side, v2, write
from tests.realdata import REALDATA, required

WEB = side("web", "10.0.0.0/16", owner=ACCOUNT)
DB = side("db", "10.1.0.0/16", owner=ACCOUNT)
PCX = crossing("pcx-web-db", WEB, DB)

# moto keeps log events of the last 14 days only: the window is an hour ago.
NOW = int(time.time())
T = NOW - NOW % 900 - 3600
SINCE, UNTIL = datetime.fromtimestamp(T, UTC), datetime.fromtimestamp(T + 900, UTC)
WINDOW = Window(900, T, T + 900)


def put_events(logs: object, group: str, stream: str, events: list[tuple[int, str]]) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName=stream)  # type: ignore[attr-defined]
    logs.put_log_events(  # type: ignore[attr-defined]
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": ts * 1000, "message": m} for ts, m in sorted(events)],
    )


def test_cloudwatch_events_of_the_window_are_read_page_by_page(aws: None, tmp_path: Path) -> None:
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="/vpc/flows")
    crossing_lines = [
        (T + i, v2("10.0.1.5", "10.1.2.7", 40000 + i, 443, start=T + i)) for i in range(120)
    ]
    put_events(logs, "/vpc/flows", "eni-1", crossing_lines)
    put_events(logs, "/vpc/flows", "eni-2", [
        (T - 60, v2("10.0.1.5", "10.1.2.7", start=T - 60)),  # before the window: not read
        (T + 910, v2("10.0.1.5", "10.1.2.7", start=T + 890)),  # delivered late: read, counted
        (T + 905, v2("10.0.1.5", "10.1.2.7", start=T + 905)),  # the next window's: outside
        (T + 3000, v2("10.0.1.5", "10.1.2.7", start=T + 3000)),  # past the slack: not read
    ])  # fmt: skip
    reader = CloudWatchReader(
        logs, "/vpc/flows", tmp_path, DEFAULT, "vpc-web", lines_per_file=50, page_size=40
    )
    files = list(reader.files(SINCE, UNTIL))
    assert reader.events == 122 and reader.pages >= 4
    assert [len(f.path.read_text().splitlines()) for f in files] == [50, 50, 22]
    assert all(f.temporary and f.observer == "vpc-web" for f in files)
    aggs = analyse(files, (PCX,), WINDOW)
    assert aggs.counts == Counts(flows=121, outside_window=1)
    assert not any(f.path.exists() for f in files)  # spooled files are gone once read


def test_too_many_log_events_stop_the_read_for_a_push_down(aws: None, tmp_path: Path) -> None:
    logs = boto3.client("logs", region_name=REGION)
    logs.create_log_group(logGroupName="/vpc/flows")
    put_events(logs, "/vpc/flows", "eni-1", [(T + i, v2(start=T + i)) for i in range(30)])
    reader = CloudWatchReader(logs, "/vpc/flows", tmp_path, max_events=25, page_size=10)
    with pytest.raises(VolumeExceeded, match=r"log group /vpc/flows: 26 exceeds .* 25") as e:
        list(reader.files(SINCE, UNTIL))
    assert (e.value.seen, e.value.limit) == (26, 25)
    assert reader.pages == 3  # it stopped there, without reading the rest


def s3_key(prefix: str, flow_log: str, when: datetime, *, hive: bool = False) -> str:
    name = f"{ACCOUNT}_vpcflowlogs_{REGION}_{flow_log}_{when:%Y%m%dT%H%MZ}_5f3a9c1b.log.gz"
    if hive:
        folder = (f"AWSLogs/aws-account-id={ACCOUNT}/aws-service=vpcflowlogs/"
                  f"aws-region={REGION}/year={when:%Y}/month={when:%m}/day={when:%d}/")  # fmt: skip
    else:
        folder = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{when:%Y/%m/%d}/"
    return prefix + folder + name


def put_object(s3: object, key: str, lines: list[str], header: str = V2_HEADER) -> None:
    body = gzip.compress(("\n".join([header, *lines]) + "\n").encode())
    s3.put_object(Bucket="flow-bucket", Key=key, Body=body)  # type: ignore[attr-defined]


@pytest.mark.parametrize("hive", [False, True])
def test_s3_objects_are_found_by_the_key_layout_and_read_as_gzip(
    aws: None, tmp_path: Path, hive: bool
) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="flow-bucket")
    at = SINCE + timedelta(minutes=5)
    line = v2("10.0.1.5", "10.1.2.7", 40001, 443, start=T + 30)
    put_object(s3, s3_key("org/", "fl-0aa11", at, hive=hive), [line, line])
    put_object(s3, s3_key("org/", "fl-0bb22", at, hive=hive), [line])  # another VPC's log
    put_object(s3, s3_key("org/", "fl-0aa11", SINCE - timedelta(hours=2), hive=hive), [line])
    put_object(s3, s3_key("org/", "fl-0aa11", UNTIL + timedelta(hours=2), hive=hive), [line])
    s3.put_object(
        Bucket="flow-bucket",
        Key=s3_key("org/", "fl-0aa11", at, hive=hive)[:-7] + ".parquet",
        Body=b"PAR1",
    )
    reader = S3Reader(s3, "flow-bucket", ACCOUNT, REGION, tmp_path, prefix="org/", hive=hive,
                      observers={"fl-0aa11": "vpc-web", "fl-0bb22": "vpc-db"})  # fmt: skip
    objects = reader.objects(SINCE, UNTIL)
    assert [o.flow_log_id for o in objects] == ["fl-0aa11", "fl-0bb22"]
    assert reader.skipped == 1 and reader.listed_bytes == sum(o.size for o in objects) > 0
    files = list(reader.files(objects))
    assert [f.observer for f in files] == ["vpc-web", "vpc-db"]
    aggs = analyse(files, (PCX,), WINDOW)
    # The same flow logged by both VPCs: counted once, where it arrived (db's log).
    assert aggs.counts == Counts(flows=1, seen_twice=2)
    only_web = S3Reader(s3, "flow-bucket", ACCOUNT, REGION, tmp_path, prefix="org/", hive=hive,
                        observers={"fl-0aa11": "vpc-web"})  # fmt: skip
    assert [o.flow_log_id for o in only_web.objects(SINCE, UNTIL)] == ["fl-0aa11"]


def test_s3_volume_over_the_threshold_asks_for_athena(aws: None, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="flow-bucket")
    put_object(s3, s3_key("", "fl-0aa11", SINCE), [v2(start=T)] * 500)
    reader = S3Reader(s3, "flow-bucket", ACCOUNT, REGION, tmp_path)
    objects = reader.objects(SINCE, UNTIL)
    reader.check_volume(objects, limit=reader.listed_bytes)  # at the threshold: embedded
    with pytest.raises(VolumeExceeded, match="s3://flow-bucket/"):
        reader.check_volume(objects, limit=reader.listed_bytes - 1)


def test_objects_spanning_midnight_are_listed_from_both_days(aws: None, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="flow-bucket")
    midnight = datetime(2024, 6, 2, tzinfo=UTC)
    put_object(s3, s3_key("", "fl-0aa11", midnight - timedelta(minutes=5)), [v2()])
    put_object(s3, s3_key("", "fl-0aa11", midnight + timedelta(minutes=5)), [v2()])
    reader = S3Reader(s3, "flow-bucket", ACCOUNT, REGION, tmp_path)
    got = reader.objects(midnight - timedelta(minutes=15), midnight)
    assert [f"{o.written_at:%d %H:%M}" for o in got] == ["01 23:55", "02 00:05"]


def test_describe_flow_logs_gives_destinations_and_formats(aws: None) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="flow-bucket")
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName="/vpc/flows")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    fmt = "${version} ${vpc-id} ${srcaddr} ${dstaddr} ${traffic-path}"
    ec2.create_flow_logs(ResourceIds=[vpc], ResourceType="VPC", TrafficType="ALL",
                         LogDestinationType="s3", LogDestination="arn:aws:s3:::flow-bucket",
                         LogFormat=fmt)  # fmt: skip
    role = f"arn:aws:iam::{ACCOUNT}:role/flow-logs"
    ec2.create_flow_logs(ResourceIds=[vpc, other], ResourceType="VPC", TrafficType="ALL",
                         LogGroupName="/vpc/flows", DeliverLogsPermissionArn=role)  # fmt: skip
    mine = flow_logs(ec2, [vpc])
    assert {(f.destination_type, f.observer) for f in mine} == {
        ("s3", vpc),
        ("cloud-watch-logs", vpc),
    }
    s3 = next(f for f in mine if f.destination_type == "s3")
    assert (s3.bucket, s3.prefix, s3.format) == ("flow-bucket", "", parse_log_format(fmt))
    cwl = next(f for f in mine if f.destination_type == "cloud-watch-logs")
    assert cwl.log_group == "/vpc/flows" and cwl.format.fields == V2_FIELDS
    assert len(flow_logs(ec2)) == 3 and flow_logs(ec2, []) == []


def test_describe_flow_logs_as_the_aws_cli_documents_it() -> None:
    rst = required(REALDATA / "ec2-api-responses" / "awscli__describe-flow-logs.rst").read_text()
    body = re.search(r"Output::\n\n(.*?)\n\n\*\*", rst, re.S)
    assert body, "no output block"
    items = json.loads(body.group(1))["FlowLogs"]
    cwl, s3 = (parse_flow_log(i) for i in items)
    assert (cwl.log_group, cwl.observer, cwl.format.is_default) == ("FlowLogGroup", None, True)
    assert (s3.bucket, s3.prefix, s3.observer) == (
        "my-flow-log-bucket",
        "custom/",
        "vpc-00112233445566778",
    )
    assert s3.format.position("pkt-srcaddr") == 12 and s3.traffic_type == "ACCEPT"


def test_local_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    write(tmp_path / "a" / "x.log", [v2()])
    write(tmp_path / "a" / "y.log.gz", [v2()])
    single = write(tmp_path / "z.log", [v2()])
    fmt = parse_log_format("${srcaddr} ${dstaddr}")
    files = local_files([tmp_path / "a", single], log_format=fmt, observer="vpc-web")
    assert [f.path.name for f in files] == ["x.log", "y.log.gz", "z.log"]
    assert all(f.format == fmt and f.observer == "vpc-web" and not f.temporary for f in files)


def test_s3_keys_that_are_not_flow_log_text_are_ignored() -> None:
    assert parse_key("AWSLogs/1/vpcflowlogs/r/2024/01/01/x.parquet") is None
    assert parse_key("AWSLogs/aws-account-id=1/x/README") is None
    ok = parse_key(f"{ACCOUNT}_vpcflowlogs_eu-west-1_fl-0123abcd_20240601T1205Z_abcdef01.log")
    assert ok is not None and ok.written_at == datetime(2024, 6, 1, 12, 5, tzinfo=UTC)
