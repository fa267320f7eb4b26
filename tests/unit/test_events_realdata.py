"""Every real CloudTrail record in ../shared/realdata/cloudtrail parses or is refused for a reason.

The records come in four wrappings: bare records (Panther, Stratus arrays, Custodian raw),
EventBridge envelopes (Custodian), and StreamAlert test files whose `data` is either an
EventBridge-like envelope (redacted) or an S3 `{"Records": [...]}` batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from peerguard.events import MalformedEvent, NotOurs, parse_change, parse_record
from tests.realdata import REALDATA, skip_unless

CLOUDTRAIL = REALDATA / "cloudtrail"
pytestmark = skip_unless(CLOUDTRAIL)


def refusal(parse: Callable[[Any], object], event: Any) -> MalformedEvent:
    """The MalformedEvent that `parse(event)` raises."""
    with pytest.raises(MalformedEvent) as raised:
        parse(event)
    return raised.value


def read(name: str) -> Any:
    return json.loads((CLOUDTRAIL / name).read_text())


# Panther test records (bare CloudTrail): file stem fragment -> (ids, error code).
PANTHER = {
    "aws_ec2_manual_security_group_changes__test0": (
        {"security_group_ids": {"sg-04f0b44316f7d2471"}},
        None,
    ),
    "aws_ec2_manual_security_group_changes__test3": (
        {"security_group_ids": {"sg-0d921df5d84f7270a"}},
        None,
    ),
    "aws_ec2_manual_security_group_changes__test4": (
        {"security_group_ids": {"sg-04f0b44316f7d2471"}},
        "UnauthorizedOperation",
    ),
    "aws_ec2_network_acl_modified__test0": ({"network_acl_ids": {"acl-1"}}, None),
    "aws_ec2_network_acl_modified__test2": ({"network_acl_ids": {"acl-1"}}, "InvalidCharacter"),
    "aws_ec2_route_table_modified__test0": ({"route_table_ids": {"rtb-1"}}, None),
    "aws_ec2_route_table_modified__test2": ({"route_table_ids": {"rtb-1"}}, "Blocked"),
    "aws_ec2_security_group_modified__test0": ({"security_group_ids": {"sg-1"}}, None),
    "aws_ec2_security_group_modified__test2": ({"security_group_ids": {"sg-1"}}, "RequestExpired"),
    "aws_network_acl_permissive_entry__test0": ({"network_acl_ids": {"acl-1111"}}, None),
    "aws_network_acl_permissive_entry__test1": ({"network_acl_ids": {"acl-1111"}}, None),
    "aws_network_acl_permissive_entry__test2": (
        {"network_acl_ids": {"acl-1111"}},
        "ValidationError",
    ),
    "aws_vpc_flow_logs_deleted__test0": ({"flow_log_ids": {"fl-0ef673ef70c4f07cc"}}, None),
}
ID_KINDS = ("vpc_ids", "peering_ids", "route_table_ids", "subnet_ids", "security_group_ids",
            "network_acl_ids", "flow_log_ids")  # fmt: skip


def panther(fragment: str) -> dict[str, Any]:
    (path,) = (CLOUDTRAIL / "panther_extracted").glob(f"panther__{fragment}__*.json")
    return json.loads(path.read_text())


def test_every_panther_record_is_listed_here() -> None:
    found = {p.name.split("__")[1] + "__" + p.name.split("__")[2]
             for p in (CLOUDTRAIL / "panther_extracted").glob("*.json")}  # fmt: skip
    assert found == set(PANTHER) | {"aws_ec2_manual_security_group_changes__test2"}


@pytest.mark.parametrize("fragment", sorted(PANTHER))
def test_panther_record_parses_with_its_ids_and_failure(fragment: str) -> None:
    record = panther(fragment)
    ids, error_code = PANTHER[fragment]

    change = parse_record(record)

    assert change.event_name == record["eventName"]
    assert change.actor == record["userIdentity"]["arn"]
    for kind in ID_KINDS:
        assert getattr(change, kind) == frozenset(ids.get(kind, set())), kind
    assert change.failed is (error_code is not None)
    assert change.error_code == error_code


def test_panther_egress_record_is_not_ours() -> None:
    record = panther("aws_ec2_manual_security_group_changes__test2")
    error = refusal(parse_record, record)
    assert isinstance(error, NotOurs)
    assert str(error).startswith("event name 'AuthorizeSecurityGroupEgress' is not one")


def test_panther_records_are_bare_records_not_eventbridge_events() -> None:
    error = refusal(parse_change, panther("aws_ec2_route_table_modified__test0"))
    assert isinstance(error, MalformedEvent)
    assert str(error) == "a bare CloudTrail record, not an EventBridge event"


def test_stratus_delete_flow_logs_xml_shape_parses() -> None:
    (record,) = read("stratus__DeleteFlowLogs__vpc-remove-flow-logs.json")
    # Its region was scrambled when it was published: refused before anything reads AWS.
    error = refusal(parse_record, record)
    assert isinstance(error, MalformedEvent)
    assert str(error) == (
        "record.awsRegion: bad region 'megov-south-1r' (expected a name like us-east-1)"
    )
    change = parse_record({**record, "awsRegion": "me-south-1"})
    assert change.flow_log_ids == {"fl-0e17aa62a21d4bbfe"}
    assert change.actor == "arn:aws:iam::498376118699:user/christophe"
    assert (change.region, change.account_id) == ("me-south-1", "498376118699")
    assert not change.failed


def test_custodian_eventbridge_record_is_not_ours() -> None:
    # A real aws.ec2 CloudTrail envelope, for a call PeerGuard does not watch.
    event = read("custodian__eventbridge__DeleteTransitGatewayVpcAttachment.json")
    error = refusal(parse_change, event)
    assert isinstance(error, NotOurs)
    assert str(error).startswith("event name 'DeleteTransitGatewayVpcAttachment' is not one")


def test_custodian_envelope_parses_once_the_call_is_one_of_ours() -> None:
    # Same real envelope (extra "debug" key, XML-style parameters), renamed to a watched call.
    event = read("custodian__eventbridge__DeleteTransitGatewayVpcAttachment.json")
    event["detail"]["eventName"] = "DeleteVpcPeeringConnection"
    change = parse_change(event)
    assert change.account_id == "012345678912"
    assert change.actor == "arn:aws:sts::012345678912:assumed-role/c7nbot/pmuniswamy"
    assert change.peering_ids == frozenset()  # its parameters name a TGW attachment, not a pcx


def test_custodian_raw_run_instances_is_not_ours() -> None:
    error = refusal(parse_record, read("custodian__raw__RunInstances.json"))
    assert isinstance(error, NotOurs)
    assert str(error) == "event name 'RunInstances' is not one PeerGuard audits"


@pytest.mark.parametrize(
    "name",
    ["streamalert__AuthorizeSecurityGroupIngress__cwe_tests.json",
     "streamalert__CreateNetworkAclEntry__cwe_tests.json"],
)  # fmt: skip
def test_streamalert_envelopes_are_redacted_and_refused(name: str) -> None:
    # Their envelopes carry "..." for detail-type and source: not events EventBridge sends.
    for case in read(name):
        error = refusal(parse_change, case["data"])
        assert isinstance(error, NotOurs)
        assert str(error).startswith("expected detail-type 'AWS API Call via CloudTrail'")


def test_streamalert_security_group_detail_is_refused_for_its_redacted_region() -> None:
    details = [case["data"]["detail"] for case in read(
        "streamalert__AuthorizeSecurityGroupIngress__cwe_tests.json")]  # fmt: skip
    for detail in details:
        error = refusal(parse_record, detail)
        assert isinstance(error, MalformedEvent)
        assert str(error).startswith("record.awsRegion: bad region '...'")
    # With a region and an event id, the redacted group id ("...") is refused too.
    unredacted = {**details[0], "awsRegion": "us-east-1", "eventID": "e0a5b3c4-1"}
    unredacted["recipientAccountId"] = "123456789012"
    error = refusal(parse_record, unredacted)
    assert str(error) == "detail: '...' is not a well-formed security group id"
    # ... and with a group id, the rule's ranges are read from its ipPermissions.
    detail = dict(unredacted)
    detail["requestParameters"] = {**detail["requestParameters"], "groupId": "sg-0123abcd"}
    change = parse_record(detail)
    assert change.security_group_ids == {"sg-0123abcd"}
    first = change.record.request_parameters.ip_permissions[0]  # type: ignore[union-attr]
    assert first.cidrs == ("0.0.0.0/0", "::/0")


def test_streamalert_network_acl_detail_is_too_redacted_to_use() -> None:
    for case in read("streamalert__CreateNetworkAclEntry__cwe_tests.json"):
        error = refusal(parse_record, case["data"]["detail"])
        assert isinstance(error, MalformedEvent)
        assert str(error).startswith("record.awsRegion: bad region '...'")


def test_streamalert_s3_batches_hold_one_legacy_delete_flow_logs_and_others_not_ours() -> None:
    records = [r for case in read("streamalert__critical_api_calls__incl_DeleteFlowLogs.json")
               for r in case["data"]["Records"]]  # fmt: skip
    parsed, not_ours, malformed = [], [], []
    for record in records:
        try:
            parsed.append(parse_record(record))
        except NotOurs as refused:
            not_ours.append(str(refused))
        except MalformedEvent as refused:
            malformed.append(str(refused))

    assert parsed == []
    (legacy,) = malformed
    assert legacy == "detail: '...' is not a well-formed flow log id"  # redacted
    assert len(not_ours) == len(records) - 1
    assert "event name 'DescribeFlowLogs' is not one PeerGuard audits" in not_ours
    error = refusal(
        parse_change, read("streamalert__critical_api_calls__incl_DeleteFlowLogs.json")[0]["data"]
    )
    assert isinstance(error, MalformedEvent)
    assert str(error).startswith("not an EventBridge event: missing version")


def test_powertools_sample_is_another_detail_type() -> None:
    path = REALDATA / "eventbridge-securityhub-slack" / "powertools__eventBridgeEvent.json"
    error = refusal(parse_change, json.loads(path.read_text()))
    assert isinstance(error, NotOurs)
    assert "got 'EC2 Instance State-change Notification' from 'aws.ec2'" in str(error)
