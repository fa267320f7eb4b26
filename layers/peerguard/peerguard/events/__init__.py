"""Typed parsing of the EventBridge events PeerGuard runs on, and what a change touched.

Two kinds of event arrive: EC2 API calls recorded by CloudTrail ("AWS API Call via
CloudTrail", source aws.ec2) and schedules ("Scheduled Event", source aws.events).
`parse_change` turns the first into a `Change`: who did what, whether it failed, and the
ids of every VPC, peering, route table, subnet, security group, network ACL and flow log
it touched, taken from both `requestParameters` and `responseElements`.

This module holds what every trigger needs (the envelope checks, the schedule); the
CloudTrail half (`peerguard.events.cloudtrail`, with the per-call models of
`peerguard.events.shapes`) is imported when a CloudTrail event is first parsed, so a
scheduled function never builds the 24 call models. Its names are importable from here.
"""

from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models.event_bridge import EventBridgeModel
from pydantic import ConfigDict, Field, ValidationError

from peerguard.aws.regions import check_region
from peerguard.domain.names import ACCOUNT_ID

if TYPE_CHECKING:
    from peerguard.events.cloudtrail import (
        CALL_MODELS,  # noqa: F401 (re-exported, see __getattr__)
        Change,
        CloudTrailRecord,  # noqa: F401 (re-exported, see __getattr__)
        Ec2CallEvent,  # noqa: F401 (re-exported, see __getattr__)
        UserIdentity,  # noqa: F401 (re-exported, see __getattr__)
        call_event_model,  # noqa: F401 (re-exported, see __getattr__)
        change_from_record,  # noqa: F401 (re-exported, see __getattr__)
        parse_call,  # noqa: F401 (re-exported, see __getattr__)
        parse_change,  # noqa: F401 (re-exported, see __getattr__)
        parse_record,  # noqa: F401 (re-exported, see __getattr__)
    )

# The CloudTrail half, loaded on first use (PEP 562).
_CLOUDTRAIL = {
    "CALL_MODELS",
    "Change",
    "CloudTrailRecord",
    "Ec2CallEvent",
    "UserIdentity",
    "call_event_model",
    "change_from_record",
    "parse_call",
    "parse_change",
    "parse_record",
}


def __getattr__(name: str) -> Any:
    if name in _CLOUDTRAIL:
        return getattr(importlib.import_module("peerguard.events.cloudtrail"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


EVENT_NAMES: tuple[str, ...] = (
    "CreateVpcPeeringConnection",
    "AcceptVpcPeeringConnection",
    "RejectVpcPeeringConnection",
    "DeleteVpcPeeringConnection",
    "ModifyVpcPeeringConnectionOptions",
    "CreateRoute",
    "ReplaceRoute",
    "DeleteRoute",
    "CreateRouteTable",
    "DeleteRouteTable",
    "AssociateRouteTable",
    "DisassociateRouteTable",
    "ReplaceRouteTableAssociation",
    "AssociateVpcCidrBlock",
    "DisassociateVpcCidrBlock",
    "AuthorizeSecurityGroupIngress",
    "RevokeSecurityGroupIngress",
    "ModifySecurityGroupRules",
    "CreateNetworkAclEntry",
    "ReplaceNetworkAclEntry",
    "DeleteNetworkAclEntry",
    "ReplaceNetworkAclAssociation",
    "CreateFlowLogs",
    "DeleteFlowLogs",
)

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"
EC2_SOURCE = "aws.ec2"
EC2_EVENT_SOURCE = "ec2.amazonaws.com"
SCHEDULE_DETAIL_TYPE = "Scheduled Event"
SCHEDULE_SOURCE = "aws.events"

# EventBridge ids and CloudTrail eventIDs are UUIDs; allow any plain token of sane length.
_EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}\Z")
_ENVELOPE_KEYS = (
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
)


MAX_DEPTH = 32  # CloudTrail parameters nest a few levels; 250 levels is an attack
MAX_NODES = 20_000  # values in one event (CloudTrail caps a record at 256 KB)


class MalformedEvent(ValueError):
    """The event cannot be used; the message is one line naming what is wrong."""


class NotOurs(MalformedEvent):
    """A well-formed event PeerGuard does not handle (another detail-type, source or call).

    Seeing one means an EventBridge rule matches more than it should: log it, do not retry.
    """


class ScheduledEvent(EventBridgeModel):
    """EventBridge "Scheduled Event": `resources` holds the rule ARN, `detail` is {}."""

    model_config = ConfigDict(defer_build=True)

    detail_type: Literal["Scheduled Event"] = Field(alias="detail-type")
    source: Literal["aws.events"]
    detail: dict[str, Any] = Field(default_factory=dict)


# -- entry points ---------------------------------------------------------------------------


def one_line(error: ValidationError, drop: tuple[str, ...] = EVENT_NAMES) -> str:
    """pydantic's multi-line report -> "detail.eventTime: Input should be ... (got '...')"."""
    errors = error.errors()
    first = errors[0]
    # The union tag (an event name) is an artefact of the model, not a key of the event.
    loc = ".".join(str(p) for p in first["loc"] if p not in drop) or "event"
    got = ""
    if first["type"] != "missing":  # for a missing key the input is the whole parent
        shown = repr(first.get("input"))
        got = f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{loc}: {first['msg']}{got}{more}"


def check_sane(value: Any, what: str = "event") -> None:
    """Bounded depth and size, and text that is valid Unicode, before any parsing: a
    hostile or broken event fails here in one line instead of deep inside a library."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            raise MalformedEvent(f"{what} nests deeper than {MAX_DEPTH} levels")
        if nodes > MAX_NODES:
            raise MalformedEvent(f"{what} has more than {MAX_NODES} values")
        if isinstance(item, dict):
            for k, v in item.items():
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise MalformedEvent(f"{what} holds text that is not valid Unicode") from None
        elif not isinstance(item, int | float | bool) and item is not None:
            raise MalformedEvent(f"{what} holds a {type(item).__name__}, not JSON")


def _check_envelope(event: Any, detail_type: str, source: str) -> None:
    if not isinstance(event, dict):
        raise MalformedEvent(f"event is not a JSON object (got {type(event).__name__})")
    check_sane(event)
    missing = [key for key in _ENVELOPE_KEYS if key not in event]
    if missing and "eventName" in event:
        raise MalformedEvent("a bare CloudTrail record, not an EventBridge event")
    if missing:
        raise MalformedEvent(f"not an EventBridge event: missing {', '.join(missing)}")
    event_id = event["id"]
    if not isinstance(event_id, str) or not _EVENT_ID.match(event_id):
        raise MalformedEvent("id is empty or not an EventBridge event id")
    kind, src = event["detail-type"], event["source"]
    if not isinstance(kind, str) or not isinstance(src, str):
        raise MalformedEvent("detail-type and source must be strings")
    if kind != detail_type or src != source:
        raise NotOurs(
            f"expected detail-type {detail_type!r} from {source!r}, "
            f"got {kind[:60]!r} from {src[:60]!r}"
        )
    try:
        check_region(event["region"])
    except ValueError as e:
        raise MalformedEvent(f"region: {e}") from None
    account = event["account"]
    if not (isinstance(account, str) and ACCOUNT_ID.match(account)):
        raise MalformedEvent("account is not a 12-digit account id")


def parse_schedule(event: Any) -> ScheduledEvent:
    """Validate an EventBridge "Scheduled Event"."""
    _check_envelope(event, SCHEDULE_DETAIL_TYPE, SCHEDULE_SOURCE)
    try:
        return parse(event=event, model=ScheduledEvent)
    except ValidationError as error:
        raise MalformedEvent(one_line(error)) from None


def parse_event(event: Any) -> Change | ScheduledEvent:
    """Either kind of trigger (the acceptance function gets both)."""
    if isinstance(event, dict) and event.get("detail-type") == SCHEDULE_DETAIL_TYPE:
        return parse_schedule(event)
    from peerguard.events.cloudtrail import parse_change

    return parse_change(event)
