"""Flow log formats: header lines, DescribeFlowLogs LogFormat, --log-format (pure)."""

from __future__ import annotations

import pytest

from peerguard.domain.flows.formats import (
    DEFAULT,
    V2_FIELDS,
    Format,
    FormatError,
    column,
    looks_like_header,
    parse_header,
    parse_log_format,
)

V3_HEADER = (
    "account-id bytes dstaddr dstport end instance-id packets pkt-dstaddr pkt-srcaddr "
    "protocol srcaddr srcport start subnet-id tcp-flags type version vpc-id"
)


def test_the_default_format_is_the_fourteen_v2_fields() -> None:
    assert DEFAULT.fields == V2_FIELDS and len(V2_FIELDS) == 14
    assert DEFAULT.is_default and DEFAULT.version == 2 and DEFAULT.analysable
    assert DEFAULT.position("srcaddr") == 4 and DEFAULT.position("log-status") == 14
    assert DEFAULT.position("vpc-id") is None


def test_log_format_notation_and_plain_lists_give_the_same_format() -> None:
    logformat = "${version} ${vpc-id} ${srcaddr} ${dstaddr} ${traffic-path} ${flow-direction}"
    a = parse_log_format(logformat)
    b = parse_log_format("version vpc-id srcaddr dstaddr traffic-path flow-direction")
    c = parse_log_format("version,vpc-id, srcaddr,dstaddr,traffic-path,flow-direction")
    assert a == b == c
    assert a.version == 5  # the highest field version, as AWS writes it
    assert a.log_format == logformat
    assert parse_log_format(a.log_format) == a


def test_a_header_line_names_the_format_in_its_order() -> None:
    fmt = parse_header(V3_HEADER + "\n")
    assert fmt.fields[0] == "account-id" and fmt.position("version") == 17
    assert fmt.version == 3
    assert column("pkt-srcaddr") == "pkt_srcaddr"


@pytest.mark.parametrize(
    "line",
    [
        "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 "
        "1418530010 1418530070 ACCEPT OK",
        "- eni-1235b8ca123456789 10.0.1.5 10.0.0.220 10.0.1.5 203.0.113.5",
        "vpc-abcdefab012345678 subnet-aaaaaaaa012345678",  # ids look like names, but are not
        "ingress egress",  # values of flow-direction, not field names
        "",
    ],
)
def test_records_are_not_header_lines(line: str) -> None:
    assert not looks_like_header(line)


def test_header_lines_are_recognised_even_with_a_field_newer_than_this_code() -> None:
    assert looks_like_header(V3_HEADER)
    assert looks_like_header("version srcaddr dstaddr some-future-field")
    assert parse_header("version srcaddr dstaddr some-future-field").unknown == (
        "some-future-field",
    )
    with pytest.raises(FormatError, match="not a flow log header"):
        parse_header("2 111 eni-1 - - - - - - - 1 2 - NODATA")


def test_a_typed_format_is_checked_strictly_with_a_hint() -> None:
    hint = r"unknown flow log field 'srcadr' \(did you mean 'srcaddr'\?\)"
    with pytest.raises(FormatError, match=hint):
        parse_log_format("${version} ${srcadr}")
    # What AWS reports is trusted: an unknown field is an opaque column.
    assert parse_log_format("${srcaddr} ${dstaddr} ${new-thing}", strict=False).unknown == (
        "new-thing",
    )


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "empty log format"),
        ("${srcaddr} ${srcaddr}", "appears twice"),
        ("${srcaddr} and ${dstaddr}", "unexpected text 'and'"),
        ("${Src_Addr}", "not a flow log field name"),
    ],
)
def test_bad_formats_name_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(FormatError, match=error):
        parse_log_format(text, strict=False)


def test_newer_documented_fields_are_known() -> None:
    fmt = parse_log_format("${srcaddr} ${dstaddr} ${ecs-task-id} ${reject-reason}")
    assert fmt.unknown == () and fmt.version == 8


def test_a_format_without_both_addresses_cannot_be_analysed() -> None:
    assert not Format(("version", "srcaddr", "action")).analysable
    assert Format(("pkt-srcaddr", "pkt-dstaddr")).analysable
