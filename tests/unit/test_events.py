"""peerguard.events: the samples in events/ and the shapes CloudTrail really uses."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from peerguard.domain.scope import Scope
from peerguard.events import (
    CALL_MODELS,
    EVENT_NAMES,
    Change,
    MalformedEvent,
    NotOurs,
    ScheduledEvent,
    parse_call,
    parse_change,
    parse_event,
    parse_record,
    parse_schedule,
)
from peerguard.events.shapes import SHAPES, CreateFlowLogsRequest, DeleteFlowLogsRequest

REPO = Path(__file__).resolve().parents[2]
EVENTS = REPO / "events"

VPC_A, VPC_B, VPC_X = "vpc-0a1b2c3d4e5f67890", "vpc-0b1c2d3e4f5a67891", "vpc-0c1d2e3f4a5b67892"
PCX, PCX_X = "pcx-0a1b2c3d4e5f67890", "pcx-0d1e2f3a4b5c67893"
RTB_A, RTB_NEW = "rtb-0a1b2c3d4e5f67890", "rtb-0e1f2a3b4c5d67894"
SUBNET_A = "subnet-0a1b2c3d4e5f67890"
RTBASSOC, RTBASSOC_NEW = "rtbassoc-0a1b2c3d4e5f67890", "rtbassoc-0f1a2b3c4d5e67895"
SG = "sg-0a1b2c3d4e5f67890"
ACL = "acl-0a1b2c3d4e5f67890"
ACLASSOC, ACLASSOC_NEW = "aclassoc-0a1b2c3d4e5f67890", "aclassoc-0b1c2d3e4f5a67891"
FL = "fl-0a1b2c3d4e5f67890"
CIDR_ASSOC = "vpc-cidr-assoc-0a1b2c3d4e5f67890"

# sample file stem -> the ids the change touched (kinds not listed must be empty).
EXPECTED: dict[str, dict[str, set[str]]] = {
    "CreateVpcPeeringConnection": {
        "vpc_ids": {VPC_A, VPC_X},
        "peering_ids": {PCX_X},
        "peer_regions": {"us-west-2"},
        "peer_account_ids": {"210987654321"},
    },
    "AcceptVpcPeeringConnection": {"vpc_ids": {VPC_A, VPC_B}, "peering_ids": {PCX}},
    "RejectVpcPeeringConnection": {"peering_ids": {PCX_X}},
    "DeleteVpcPeeringConnection": {"peering_ids": {PCX}},
    "ModifyVpcPeeringConnectionOptions": {"peering_ids": {PCX}},
    "CreateRoute": {"route_table_ids": {RTB_A}, "peering_ids": {PCX}},
    "ReplaceRoute": {"route_table_ids": {RTB_A}, "peering_ids": {PCX_X}},
    "DeleteRoute": {"route_table_ids": {RTB_A}},
    "CreateRouteTable": {"vpc_ids": {VPC_A}, "route_table_ids": {RTB_NEW}},
    "DeleteRouteTable": {"route_table_ids": {RTB_NEW}},
    "AssociateRouteTable": {
        "route_table_ids": {RTB_NEW},
        "subnet_ids": {SUBNET_A},
        "association_ids": {RTBASSOC_NEW},
    },
    "DisassociateRouteTable": {"association_ids": {RTBASSOC}},
    "ReplaceRouteTableAssociation": {
        "route_table_ids": {RTB_A},
        "association_ids": {RTBASSOC, RTBASSOC_NEW},
    },
    "AssociateVpcCidrBlock": {"vpc_ids": {VPC_A}, "association_ids": {CIDR_ASSOC}},
    "DisassociateVpcCidrBlock": {"vpc_ids": {VPC_A}, "association_ids": {CIDR_ASSOC}},
    "AuthorizeSecurityGroupIngress": {"security_group_ids": {SG}},
    "RevokeSecurityGroupIngress": {"security_group_ids": {SG}},
    "ModifySecurityGroupRules": {"security_group_ids": {SG}},
    "CreateNetworkAclEntry": {"network_acl_ids": {ACL}},
    "ReplaceNetworkAclEntry": {"network_acl_ids": {ACL}},
    "DeleteNetworkAclEntry": {"network_acl_ids": {ACL}},
    "ReplaceNetworkAclAssociation": {
        "network_acl_ids": {ACL},
        "association_ids": {ACLASSOC, ACLASSOC_NEW},
    },
    "CreateFlowLogs": {"vpc_ids": {VPC_A}, "flow_log_ids": {FL}},
    "DeleteFlowLogs": {"flow_log_ids": {FL}},
    "CreateVpcPeeringConnection.failed": {"vpc_ids": {VPC_A, "vpc-0123456789abcdef0"}},
    "CreateRoute.failed": {"route_table_ids": {RTB_A}, "peering_ids": {PCX}},
}
ID_KINDS = (
    "vpc_ids",
    "peering_ids",
    "route_table_ids",
    "subnet_ids",
    "security_group_ids",
    "network_acl_ids",
    "flow_log_ids",
    "association_ids",
    "peer_regions",
    "peer_account_ids",
)
FAILED = {
    "CreateVpcPeeringConnection.failed": "Client.InvalidVpcID.NotFound",
    "CreateRoute.failed": "Client.RouteAlreadyExists",
}


def refusal(parse: Callable[[Any], object], event: Any) -> MalformedEvent:
    """The MalformedEvent that `parse(event)` raises."""
    with pytest.raises(MalformedEvent) as raised:
        parse(event)
    return raised.value


def load(stem: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{stem}.json").read_text())


def test_event_names_are_the_design_list_in_order_and_each_has_a_shape() -> None:
    assert len(EVENT_NAMES) == len(set(EVENT_NAMES)) == 24
    assert EVENT_NAMES[0] == "CreateVpcPeeringConnection"
    assert EVENT_NAMES[-1] == "DeleteFlowLogs"
    assert tuple(SHAPES) == EVENT_NAMES
    assert tuple(CALL_MODELS) == EVENT_NAMES


def test_every_file_in_events_is_covered_by_these_tests() -> None:
    stems = {p.stem for p in EVENTS.glob("*.json")}
    extras = {"schedule", "malformed.missing-event-name", "not-ours.AuthorizeSecurityGroupEgress"}
    assert stems == set(EXPECTED) | extras
    assert set(EVENT_NAMES) <= stems


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_sample_parses_into_its_model_and_yields_the_ids_it_touched(stem: str) -> None:
    # Given a sample event, when it is parsed
    event = load(stem)
    parsed = parse_call(event)
    change = parse_change(event)

    # Then the detail is the model of its own call, and the ids are those of the sample
    name = stem.split(".")[0]
    assert type(parsed.detail) is CALL_MODELS[name]
    assert isinstance(parsed.detail.request_parameters, SHAPES[name][0])
    assert change.event_name == name
    assert change.event_id == event["detail"]["eventID"]
    assert change.region == "us-east-1"
    assert change.account_id == "123456789012"
    assert change.event_time == datetime.fromisoformat(event["detail"]["eventTime"])
    assert change.actor == event["detail"]["userIdentity"]["arn"]
    for kind in ID_KINDS:
        assert getattr(change, kind) == frozenset(EXPECTED[stem].get(kind, set())), kind
    assert change.failed is (stem in FAILED)
    assert change.error_code == FAILED.get(stem)
    assert (change.error_message is not None) is change.failed


def test_scope_carries_the_ids_the_snapshot_reader_can_read() -> None:
    change = parse_change(load("AssociateRouteTable"))
    assert change.scope() == Scope(
        route_table_ids=frozenset({RTB_NEW}), subnet_ids=frozenset({SUBNET_A})
    )

    peering = parse_change(load("CreateVpcPeeringConnection")).scope()
    assert peering.vpc_ids == {VPC_A, VPC_X} and peering.peering_ids == {PCX_X}


def test_security_group_acl_and_flow_log_calls_are_scoped_by_what_they_name() -> None:
    assert parse_change(load("AuthorizeSecurityGroupIngress")).scope() == Scope(
        security_group_ids=frozenset({SG})
    )
    assert parse_change(load("ModifySecurityGroupRules")).scope() == Scope(
        security_group_ids=frozenset({SG})
    )
    assert parse_change(load("ReplaceNetworkAclAssociation")).scope() == Scope(
        network_acl_ids=frozenset({ACL})
    )
    assert parse_change(load("CreateFlowLogs")).scope() == Scope(
        vpc_ids=frozenset({VPC_A}), flow_log_ids=frozenset({FL})
    )
    assert parse_change(load("DeleteFlowLogs")).scope() == Scope(flow_log_ids=frozenset({FL}))


def test_disassociate_route_table_names_only_an_association_so_its_scope_is_empty() -> None:
    change = parse_change(load("DisassociateRouteTable"))
    assert change.association_ids == {RTBASSOC}
    assert not change.scope()


def test_typed_parameters_keep_what_the_checks_need() -> None:
    create = parse_call(load("CreateVpcPeeringConnection")).detail
    pcx = create.response_elements.vpc_peering_connection  # type: ignore[union-attr]
    assert pcx.status.code == "initiating-request"
    assert pcx.requester_vpc_info.cidr_block == "10.0.0.0/16"
    assert pcx.accepter_vpc_info.region == ("us-west-2",)

    ingress = parse_call(load("AuthorizeSecurityGroupIngress")).detail.request_parameters
    (rule,) = ingress.ip_permissions  # type: ignore[union-attr]
    assert (rule.ip_protocol, rule.cidrs, rule.groups) == ("-1", ("10.1.0.0/16",), ())

    entry = parse_call(load("CreateNetworkAclEntry")).detail.request_parameters
    assert (entry.rule_number, entry.egress, entry.rule_action) == (90, False, "deny")  # type: ignore[union-attr]
    assert entry.port_range.from_ is None  # type: ignore[union-attr]  # {} = no port range

    modify = parse_call(load("ModifySecurityGroupRules")).detail.request_parameters
    (update,) = modify.security_group_rule  # type: ignore[union-attr]
    assert update.security_group_rule_id == "sgr-0a1b2c3d4e5f67890"
    assert update.security_group_rule["cidrIpv4"] == "10.0.0.0/8"


def test_unknown_keys_are_kept_not_rejected() -> None:
    event = load("CreateRoute")
    event["detail"]["requestParameters"]["carrierGatewayId"] = "cagw-1"
    event["detail"]["someFutureField"] = {"x": 1}
    change = parse_change(event)
    assert change.route_table_ids == {RTB_A}
    assert change.record is not None
    assert change.record.request_parameters.carrierGatewayId == "cagw-1"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("params", "flow_logs"),
    [
        ({"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-1", "tag": 1}}}, {"fl-1"}),
        (
            {
                "DeleteFlowLogsRequest": {
                    "FlowLogId": [{"content": "fl-1", "tag": 1}, {"content": "fl-2", "tag": 2}]
                }
            },
            {"fl-1", "fl-2"},
        ),
        ({"flowLogId": ["fl-1", "fl-2"]}, {"fl-1", "fl-2"}),  # legacy list form
        ({"flowLogIdSet": {"items": [{"flowLogId": "fl-3"}]}}, {"fl-3"}),  # items wrapper
        ({"flowLogId": {}}, set()),  # {} is an empty list
    ],
)
def test_delete_flow_logs_in_every_shape(params: dict[str, Any], flow_logs: set[str]) -> None:
    parsed = DeleteFlowLogsRequest.model_validate(params)
    assert set(parsed.flow_log_id) | set(parsed.flow_log_id_set) == flow_logs


@pytest.mark.parametrize(
    ("params", "vpcs", "subnets"),
    [
        (
            {"CreateFlowLogsRequest": {"ResourceId": {"content": "vpc-1", "tag": 1}}},
            {"vpc-1"},
            set(),
        ),
        (
            {
                "CreateFlowLogsRequest": {
                    "ResourceId": [
                        {"content": "vpc-1", "tag": 1},
                        {"content": "subnet-2", "tag": 2},
                        {"content": "eni-3", "tag": 3},
                    ]
                }
            },
            {"vpc-1"},
            {"subnet-2"},
        ),
        ({"resourceIdSet": {"items": [{"resourceId": "vpc-4"}]}}, {"vpc-4"}, set()),
    ],
)
def test_create_flow_logs_resources_are_told_apart_by_prefix(
    params: dict[str, Any], vpcs: set[str], subnets: set[str]
) -> None:
    event = load("CreateFlowLogs")
    event["detail"]["requestParameters"] = params
    change = parse_change(event)
    assert change.vpc_ids == vpcs and change.subnet_ids == subnets  # eni- is not in a scope
    assert isinstance(change.record.request_parameters, CreateFlowLogsRequest)  # type: ignore[union-attr]


def test_flat_security_group_form_parses() -> None:
    # The Stratus AuthorizeSecurityGroupIngress record: one rule at the top level, ipPermissions {}.
    event = load("AuthorizeSecurityGroupIngress")
    event["detail"]["requestParameters"] = {
        "groupId": "sg-1",
        "ipPermissions": {},
        "ipProtocol": "tcp",
        "fromPort": 22,
        "toPort": 22,
        "cidrIp": "0.0.0.0/0",
    }
    params = parse_call(event).detail.request_parameters
    assert params.ip_permissions == () and params.cidr_ip == "0.0.0.0/0"  # type: ignore[union-attr]


def test_a_failed_call_has_no_response_and_still_names_its_target() -> None:
    change = parse_change(load("CreateVpcPeeringConnection.failed"))
    assert change.failed
    assert change.error_message == "The vpc ID 'vpc-0123456789abcdef0' does not exist"
    assert change.peering_ids == frozenset()  # no pcx was created


def test_schedule_parses_and_is_not_a_change() -> None:
    event = load("schedule")
    schedule = parse_schedule(event)
    assert isinstance(schedule, ScheduledEvent)
    assert isinstance(parse_event(event), ScheduledEvent)
    assert isinstance(parse_event(load("CreateRoute")), Change)
    error = refusal(parse_change, event)
    assert isinstance(error, NotOurs)
    assert "expected detail-type 'AWS API Call via CloudTrail'" in str(error)
    error = refusal(parse_schedule, load("CreateRoute"))
    assert isinstance(error, NotOurs)
    assert "expected detail-type 'Scheduled Event'" in str(error)


def _without(key: str) -> dict[str, Any]:
    event = load("CreateRoute")
    del event[key]
    return event


def _without_in_detail(key: str) -> dict[str, Any]:
    event = load("CreateRoute")
    del event["detail"][key]
    return event


def _with_detail(**changes: Any) -> dict[str, Any]:
    event = load("CreateRoute")
    event["detail"].update(changes)
    return event


def _with_params(params: Any) -> dict[str, Any]:
    return _with_detail(requestParameters=params)


@pytest.mark.parametrize(
    ("event", "error", "message"),
    [
        (load("malformed.missing-event-name"), MalformedEvent, "detail.eventName is missing"),
        (
            load("not-ours.AuthorizeSecurityGroupEgress"),
            NotOurs,
            "event name 'AuthorizeSecurityGroupEgress' is not one PeerGuard audits",
        ),
        ([1, 2], MalformedEvent, "event is not a JSON object (got list)"),
        ({"foo": 1}, MalformedEvent, "not an EventBridge event: missing version, id, detail-type"),
        (_without("detail"), MalformedEvent, "not an EventBridge event: missing detail"),
        (_with_detail(eventTime="yesterday"), MalformedEvent, "detail.eventTime: Input should be"),
        (_with_detail(eventSource="s3.amazonaws.com"), MalformedEvent, "detail.eventSource:"),
        (_with_detail(eventID=None), MalformedEvent, "detail.eventID is missing or not"),
        (_without_in_detail("awsRegion"), MalformedEvent, "detail.awsRegion: bad region None"),
        (
            _with_params({"routeTableId": RTB_A, "destinationCidrBlock": ["x"]}),
            MalformedEvent,
            "detail.requestParameters.destinationCidrBlock: Input should be a valid string",
        ),
        (_with_params("rtb-1"), MalformedEvent, "detail.requestParameters: Input should be"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_events_are_refused_with_one_line_naming_the_problem(
    event: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        parse_change(event)
    text = str(raised.value)
    assert text.startswith(message)
    assert "\n" not in text


def test_a_detail_that_is_not_an_object_is_refused() -> None:
    event = load("CreateRoute")
    event["detail"] = "CreateRoute"
    error = refusal(parse_change, event)
    assert isinstance(error, MalformedEvent)
    assert str(error) == "detail is not a JSON object (got str)"


def test_sample_files_are_not_changed_by_parsing() -> None:
    event = load("ModifySecurityGroupRules")
    before = copy.deepcopy(event)
    parse_change(event)
    assert event == before


def test_times_without_a_zone_are_read_as_utc() -> None:
    event = load("CreateRoute")
    event["detail"]["eventTime"] = "2024-11-26 19:29:38.000000000"  # Panther's export format
    assert parse_change(event).event_time == datetime(2024, 11, 26, 19, 29, 38, tzinfo=UTC)


def test_parse_record_reads_a_bare_cloudtrail_record_and_parse_change_refuses_it() -> None:
    record = load("CreateRoute")["detail"]
    assert parse_record(record).route_table_ids == {RTB_A}
    error = refusal(parse_change, record)
    assert isinstance(error, MalformedEvent)
    assert str(error) == "a bare CloudTrail record, not an EventBridge event"
