"""CloudTrail-via-EventBridge events: the record, one model per EC2 call (made on first
use), and `Change`, what a call touched. Importable from `peerguard.events`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models.event_bridge import EventBridgeModel
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from peerguard.aws.regions import check_region
from peerguard.domain.names import ACCOUNT_ID, RESOURCE_ID, resource_id_of
from peerguard.domain.scope import Scope
from peerguard.events import (
    _EVENT_ID,
    CLOUDTRAIL_DETAIL_TYPE,
    EC2_SOURCE,
    MalformedEvent,
    NotOurs,
    _check_envelope,
    check_sane,
    one_line,
)
from peerguard.events.shapes import SHAPES, Request, Response, Touches, UtcDatetime, touched

# -- the CloudTrail record and the envelopes ------------------------------------------


class UserIdentity(BaseModel):
    """Loose: exporters differ in key case ("accountId" / "accountid") and content."""

    # defer_build: a model's validator is built when it first validates, so a cold start
    # builds only the models of the call it parses (see tests/bench/coldstart.py).
    model_config = ConfigDict(frozen=True, extra="allow", defer_build=True)

    type: str | None = None
    arn: str | None = None
    principal_id: str | None = Field(None, alias="principalId")
    invoked_by: str | None = Field(None, alias="invokedBy")


class CloudTrailRecord(BaseModel):
    """One CloudTrail record of an EC2 call (the `detail` of the EventBridge event)."""

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True, defer_build=True)

    event_version: str = Field(alias="eventVersion")
    event_id: str = Field(alias="eventID")
    event_name: str = Field(alias="eventName")
    event_source: Literal["ec2.amazonaws.com"] = Field(alias="eventSource")
    event_time: UtcDatetime = Field(alias="eventTime")
    aws_region: str = Field(alias="awsRegion")
    recipient_account_id: str | None = Field(None, alias="recipientAccountId")
    user_identity: UserIdentity = Field(default_factory=UserIdentity, alias="userIdentity")
    source_ip_address: str | None = Field(None, alias="sourceIPAddress")
    user_agent: str | None = Field(None, alias="userAgent")
    request_id: str | None = Field(None, alias="requestID")
    request_parameters: Request | None = Field(None, alias="requestParameters")
    response_elements: Response | None = Field(None, alias="responseElements")
    error_code: str | None = Field(None, alias="errorCode")
    error_message: str | None = Field(None, alias="errorMessage")


def _call_model(name: str, request: type[Request], response: type[Response]) -> type[Any]:
    """CloudTrailRecord narrowed to one event name, with its typed parameters."""
    fields: dict[str, Any] = {
        "event_name": (Literal[(name,)], Field(alias="eventName")),
        "request_parameters": (request | None, Field(None, alias="requestParameters")),
        "response_elements": (response | None, Field(None, alias="responseElements")),
    }
    return create_model(f"{name}Call", __base__=CloudTrailRecord, **fields)


class _CallModels(Mapping[str, type[CloudTrailRecord]]):
    """Event name -> its CloudTrailRecord model, made on first use: a cold start makes the
    one model of the call it parses, not all 24."""

    def __getitem__(self, name: str) -> type[CloudTrailRecord]:
        return _call_model_of(name)

    def __iter__(self) -> Iterator[str]:
        return iter(SHAPES)

    def __len__(self) -> int:
        return len(SHAPES)


@cache
def _call_model_of(name: str) -> type[CloudTrailRecord]:
    if name not in SHAPES:
        raise KeyError(name)
    return _call_model(name, *SHAPES[name])


CALL_MODELS: Mapping[str, type[CloudTrailRecord]] = _CallModels()


class Ec2CallEvent(EventBridgeModel):
    """EventBridge envelope of an EC2 API call recorded by CloudTrail (`detail` narrowed
    to the call's own model by `call_event_model`)."""

    model_config = ConfigDict(defer_build=True)

    detail_type: Literal["AWS API Call via CloudTrail"] = Field(alias="detail-type")
    source: Literal["aws.ec2"]
    detail: CloudTrailRecord


@cache
def call_event_model(name: str) -> type[Ec2CallEvent]:
    """The envelope whose detail is the model of call `name` (made once, on first use)."""
    fields: dict[str, Any] = {"detail": (CALL_MODELS[name], ...)}
    return create_model(f"{name}Event", __base__=Ec2CallEvent, **fields)


# -- what a change touched ----------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """An EC2 call PeerGuard watches, reduced to who, what, and which resources."""

    event_id: str
    event_name: str
    region: str
    account_id: str
    event_time: datetime
    actor: str | None
    error_code: str | None = None
    error_message: str | None = None
    vpc_ids: frozenset[str] = frozenset()
    peering_ids: frozenset[str] = frozenset()
    route_table_ids: frozenset[str] = frozenset()
    subnet_ids: frozenset[str] = frozenset()
    security_group_ids: frozenset[str] = frozenset()
    network_acl_ids: frozenset[str] = frozenset()
    flow_log_ids: frozenset[str] = frozenset()
    # rtbassoc-/aclassoc-/vpc-cidr-assoc- ids: all DisassociateRouteTable says about its target.
    association_ids: frozenset[str] = frozenset()
    # Other regions and accounts the call names (a cross-region or cross-account peer).
    peer_regions: frozenset[str] = frozenset()
    peer_account_ids: frozenset[str] = frozenset()
    record: CloudTrailRecord | None = field(default=None, compare=False, repr=False)

    @property
    def failed(self) -> bool:
        """The call was refused: it changed nothing (a failed peering request is still news)."""
        return self.error_code is not None

    def scope(self) -> Scope:
        """What the snapshot reader should read to judge this change."""
        return Scope(
            vpc_ids=self.vpc_ids,
            peering_ids=self.peering_ids,
            route_table_ids=self.route_table_ids,
            subnet_ids=self.subnet_ids,
            security_group_ids=self.security_group_ids,
            network_acl_ids=self.network_acl_ids,
            flow_log_ids=self.flow_log_ids,
        )


_ID_SHAPES = {
    Touches.VPC: resource_id_of("vpc"),
    Touches.PEERING: resource_id_of("pcx"),
    Touches.ROUTE_TABLE: resource_id_of("rtb"),
    Touches.SUBNET: resource_id_of("subnet"),
    Touches.SECURITY_GROUP: resource_id_of("sg"),
    Touches.NETWORK_ACL: resource_id_of("acl"),
    Touches.FLOW_LOG: resource_id_of("fl"),
    Touches.ASSOCIATION: RESOURCE_ID,
    Touches.ACCOUNT: ACCOUNT_ID,
}


def _well_formed(kind: Touches, value: str) -> None:
    """An id of the kind its field names, or MalformedEvent: nothing odd reaches AWS."""
    if kind is Touches.REGION:
        try:
            check_region(value)
        except ValueError as e:
            raise MalformedEvent(f"detail: {e}") from None
        return
    shape = _ID_SHAPES.get(kind)
    if shape is not None and not shape.match(value):
        shown = repr(value) if len(value) <= 60 else repr(value[:57]) + "..."
        raise MalformedEvent(
            f"detail: {shown} is not a well-formed {kind.value.replace('_', ' ')} id"
        )


def change_from_record(record: CloudTrailRecord, account_id: str | None = None) -> Change:
    """A parsed record -> Change (`account_id`: the envelope's, if the record has none)."""
    found: dict[Touches, set[str]] = {kind: set() for kind in Touches}
    for part in (record.request_parameters, record.response_elements):
        for kind, id_ in touched(part):
            _well_formed(kind, id_)
            found[kind].add(id_)
    account = record.recipient_account_id or account_id or ""
    identity = record.user_identity
    return Change(
        event_id=record.event_id,
        event_name=record.event_name,
        region=record.aws_region,
        account_id=account,
        event_time=record.event_time,
        actor=identity.arn or identity.invoked_by or identity.principal_id or identity.type,
        error_code=record.error_code,
        error_message=record.error_message,
        vpc_ids=frozenset(found[Touches.VPC]),
        peering_ids=frozenset(found[Touches.PEERING]),
        route_table_ids=frozenset(found[Touches.ROUTE_TABLE]),
        subnet_ids=frozenset(found[Touches.SUBNET]),
        security_group_ids=frozenset(found[Touches.SECURITY_GROUP]),
        network_acl_ids=frozenset(found[Touches.NETWORK_ACL]),
        flow_log_ids=frozenset(found[Touches.FLOW_LOG]),
        association_ids=frozenset(found[Touches.ASSOCIATION]),
        peer_regions=frozenset(found[Touches.REGION] - {record.aws_region}),
        peer_account_ids=frozenset(found[Touches.ACCOUNT] - {account}),
        record=record,
    )


def _check_name(detail: Any, where: str) -> None:
    if not isinstance(detail, dict):
        raise MalformedEvent(f"{where} is not a JSON object (got {type(detail).__name__})")
    name = detail.get("eventName")
    if name is None or name == "":
        raise MalformedEvent(f"{where}.eventName is missing")
    if not isinstance(name, str):
        raise MalformedEvent(f"{where}.eventName is not a string (got {type(name).__name__})")
    if name not in SHAPES:
        raise NotOurs(f"event name {name[:60]!r} is not one PeerGuard audits")
    region = detail.get("awsRegion")
    try:
        check_region(region)  # type: ignore[arg-type]
    except ValueError as e:
        raise MalformedEvent(f"{where}.awsRegion: {e}") from None
    event_id = detail.get("eventID")
    if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        raise MalformedEvent(f"{where}.eventID is missing or not a CloudTrail event id")
    account = detail.get("recipientAccountId")
    if account is not None and not (isinstance(account, str) and ACCOUNT_ID.match(account)):
        raise MalformedEvent(f"{where}.recipientAccountId is not a 12-digit account id")


def parse_call(event: Any) -> Ec2CallEvent:
    """Validate a CloudTrail-via-EventBridge event into its typed model."""
    _check_envelope(event, CLOUDTRAIL_DETAIL_TYPE, EC2_SOURCE)
    _check_name(event["detail"], "detail")
    try:
        return parse(event=event, model=call_event_model(event["detail"]["eventName"]))
    except ValidationError as error:
        raise MalformedEvent(one_line(error)) from None


def parse_change(event: Any) -> Change:
    """CloudTrail-via-EventBridge event -> Change. Raises MalformedEvent (NotOurs for
    events of another kind or call)."""
    parsed = parse_call(event)
    return change_from_record(parsed.detail, parsed.account)


def parse_record(record: Any) -> Change:
    """A bare CloudTrail record (as in S3 log files or `Records[]`) -> Change."""
    check_sane(record, "record")
    _check_name(record, "record")
    try:
        return change_from_record(CALL_MODELS[record["eventName"]].model_validate(record))
    except ValidationError as error:
        raise MalformedEvent(one_line(error)) from None
