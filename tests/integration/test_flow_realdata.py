"""Every real flow-log sample in ../shared/realdata/flowlogs parses (see its PROVENANCE.md).

Samples are fed to the engine the way each arrives: CloudWatch Logs messages and S3 files
as they are, Firehose and subscription payloads decoded first, and the records printed in
the AWS documentation with the field order printed above them. Skipped when the
directory is absent from a clone, never on CI (CI=true), where it must be there.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from pathlib import Path

import pytest

from peerguard.aws.flows.engine import LogFile, analyse
from peerguard.aws.flows.sources import day_prefixes, parse_key
from peerguard.domain.flows.aggregates import Counts, Window, WindowAggregates
from peerguard.domain.flows.crossing import Crossing, Direction
from peerguard.domain.flows.formats import (
    DEFAULT,
    Format,
    looks_like_header,
    parse_header,
    parse_log_format,
)
from tests.flowdata import crossing, side, write
from tests.realdata import REALDATA, skip_unless

FLOWLOGS = REALDATA / "flowlogs"
pytestmark = skip_unless(FLOWLOGS)
ANY_TIME = Window(900)  # the samples are from 2014-2021: no window bounds


def run(path: Path, cs: tuple[Crossing, ...], fmt: Format | None = None) -> WindowAggregates:
    return analyse([LogFile(path, fmt)], cs, ANY_TIME)


def test_flowlogs_reader_v2_cloudwatch_messages(tmp_path: Path) -> None:
    pcx = crossing("pcx-1", side("a", "198.51.100.0/24"), side("b", "192.0.2.0/24"))
    aggs = run(FLOWLOGS / "flowlogs-reader__V2_RECORDS__cwl-messages.txt", (pcx,))
    assert aggs.counts == Counts(flows=3, nodata=1, skipdata=1)
    assert sorted((f.direction, f.src, f.port, f.action, f.reply) for f in aggs.flows) == [
        (Direction.ACCEPTER_TO_REQUESTER, "192.0.2.1", 443, "ACCEPT", False),
        (Direction.ACCEPTER_TO_REQUESTER, "192.0.2.1", 443, "REJECT", False),
        (Direction.REQUESTER_TO_ACCEPTER, "198.51.100.1", 443, "ACCEPT", True),
    ]


@pytest.mark.parametrize("name", ["V3_FILE__s3-with-header", "V4_FILE__s3-with-header"])
def test_flowlogs_reader_s3_files_with_a_header_in_alphabetical_order(name: str) -> None:
    # The packet-level addresses cross: 192.168.0.1 is behind the interface's own address.
    # The records name their interface's VPC (vpc-id): that VPC is a side of the peering.
    pcx = crossing("pcx-1", side("a", "192.168.0.0/16"), side("0461a061", "172.18.160.0/24"))
    aggs = run(FLOWLOGS / f"flowlogs-reader__{name}.log", (pcx,))
    assert aggs.counts == Counts(flows=2)
    assert sorted((f.src, f.dst, f.port, f.bytes) for f in aggs.flows) == [
        ("172.18.160.9", "192.168.0.1", 443, 1698),  # a reply from 443, under 443
        ("192.168.0.1", "172.18.160.93", 443, 6392),  # 443 -> 47460: also a reply
    ]


def test_firehose_records_are_base64_lines(tmp_path: Path) -> None:
    event = json.loads(
        (FLOWLOGS / "awsarchives__firehose-transform-event__v2-base64.json").read_text()
    )
    lines = [base64.b64decode(r["data"]).decode() for r in event["records"]]
    pcx = crossing("pcx-1", side("a", "10.3.0.0/16"), side("b", "172.31.0.0/16"))
    aggs = run(write(tmp_path / "firehose.log", lines), (pcx,))
    assert aggs.counts == Counts(flows=1, not_crossing=1)  # 72.21.196.65 is not a peer
    (f,) = aggs.flows
    assert (f.src, f.dst, f.port, f.packets, f.bytes) == (
        "10.3.45.44",
        "172.31.16.21",
        22,
        20,
        4249,
    )


def test_a_subscription_payload_of_something_else_is_counted_malformed(tmp_path: Path) -> None:
    event = json.loads((FLOWLOGS / "powertools__cloudWatchLogEvent.json").read_text())
    payload = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    lines = [e["message"] for e in payload["logEvents"]]
    aggs = run(write(tmp_path / "events.log", lines), ())
    assert aggs.counts == Counts(malformed=2)


def doc_records(path: Path) -> list[tuple[Format, list[str]]]:
    """The records in a doc's code blocks, with the field order printed before them."""
    fmt = DEFAULT
    out: list[tuple[Format, list[str]]] = []
    for block in re.findall(r"```\n(.*?)```", path.read_text(), re.S):
        lines = [ln for ln in block.splitlines() if ln.strip()]
        if len(lines) == 1 and looks_like_header(lines[0]):
            fmt = parse_header(lines[0])
        elif lines:
            out.append((fmt, lines))
    return out


def test_every_record_printed_in_the_aws_flow_log_examples_parses(tmp_path: Path) -> None:
    blocks = doc_records(FLOWLOGS / "awsdocs__flow-logs-records-examples.md")
    assert len(blocks) == 18 and len({fmt for fmt, _ in blocks}) == 5
    files = [
        LogFile(write(tmp_path / f"b{i}.log", lines), fmt) for i, (fmt, lines) in enumerate(blocks)
    ]
    cs = (
        # the records name their interface's VPC: vpc-abcdefab012345678 is the server's side
        crossing("pcx-tcp", side("c", "52.213.0.0/16"), side("abcdefab012345678", "10.0.0.0/24")),
        crossing(
            "pcx-v6", side("e", "2001:db8:1234:a100::/64"), side("f", "2001:db8:1234:a102::/64")
        ),
    )
    aggs = analyse(files, cs, ANY_TIME)
    total = sum(len(lines) for _, lines in blocks)
    assert aggs.counts.lines == total == 28
    # A doubled space, a "..." line and two lines with a trailing "#comment" are not
    # records; the NAT and transit-gateway formats have no times, so fit no window.
    assert aggs.counts == Counts(
        flows=8, not_crossing=6, nodata=1, skipdata=1, malformed=4, untimed=8
    )
    got = sorted((f.peering_id, f.window_start, f.src, f.port, f.reply, f.packets, f.bytes,
                  f.records) for f in aggs.flows)  # fmt: skip
    assert got == [
        # the TCP flag example: client 52.213.180.42 to server 10.0.0.62:5001; SYN-ACK (18),
        # and a FIN from the low port, mark the replies; "bytes packets" in that order
        ("pcx-tcp", 1566848700, "10.0.0.62", 5001, True, 1238, 64396, 3),
        ("pcx-tcp", 1566848700, "52.213.180.42", 5001, False, 15852, 23395857, 3),
        ("pcx-tcp", 1566932400, "52.213.180.42", 5001, False, 17, 1260, 1),
        ("pcx-v6", 1477913400, "2001:db8:1234:a100:8d6e:3477:df66:f105", 22, False, 54, 8855, 1),
    ]


def test_the_documented_s3_layout_log_format_and_object_name_parse() -> None:
    s3_doc = (FLOWLOGS / "awsdocs__flow-logs-s3.md").read_text()
    (logformat,) = re.findall(r"--log-format '([^']+)'", s3_doc)
    fmt = parse_log_format(logformat)
    assert fmt.fields[:3] == ("version", "vpc-id", "subnet-id") and fmt.version == 3
    obj = parse_key("123456789012_vpcflowlogs_us-east-1_fl-1234abcd_20180620T1620Z_fe123456.log.gz")
    assert obj is not None and obj.flow_log_id == "fl-1234abcd"
    assert f"{obj.written_at:%Y-%m-%d %H:%M}" == "2018-06-20 16:20"
    (plain,) = day_prefixes(
        "p/", "123456789012", "us-east-1", obj.written_at, obj.written_at, hive=False
    )
    assert (
        "bucket-and-optional-prefix/AWSLogs/account_id/vpcflowlogs/region/year/month/day/" in s3_doc
    )
    assert plain == "p/AWSLogs/123456789012/vpcflowlogs/us-east-1/2018/06/20/"
    (hive,) = day_prefixes(
        "", "123456789012", "us-east-1", obj.written_at, obj.written_at, hive=True
    )
    assert "aws-account-id=account_id/aws-service=vpcflowlogs/aws-region=region/" in s3_doc
    assert hive == (
        "AWSLogs/aws-account-id=123456789012/aws-service=vpcflowlogs/aws-region=us-east-1/"
        "year=2018/month=06/day=20/"
    )


# Every file and the test above that reads it (by name, so a new sample fails until read).
HANDLED = {
    "PROVENANCE.md",  # not a sample
    "flowlogs-reader__V2_RECORDS__cwl-messages.txt",  # ..._v2_cloudwatch_messages
    "flowlogs-reader__V3_FILE__s3-with-header.log",  # ..._s3_files_with_a_header...
    "flowlogs-reader__V4_FILE__s3-with-header.log",
    "awsarchives__firehose-transform-event__v2-base64.json",  # ..._firehose_records...
    "powertools__cloudWatchLogEvent.json",  # ..._subscription_payload...
    "awsdocs__flow-logs-records-examples.md",  # ..._printed_in_the_aws_flow_log_examples...
    "awsdocs__flow-logs-s3.md",  # ..._documented_s3_layout...
}
NO_RECORDS = {  # documentation without a single flow log record in it
    "awsdocs__athena-vpc-flow-logs.md",
    "awsdocs__cwl-SubscriptionFilters.md",
    "awsdocs__flow-logs-cwl.md",
    "awsdocs__flow-logs.md",
}


def test_every_sample_file_is_read_by_a_test_above() -> None:
    names = {p.name for p in FLOWLOGS.iterdir()}
    assert names == set(HANDLED) | NO_RECORDS
    for name in NO_RECORDS:
        text = (FLOWLOGS / name).read_text()
        assert not re.search(r"^[2-8] \d{12} eni-", text, re.M), name
