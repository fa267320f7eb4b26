"""The grace queue's message: a change whose findings wait to be confirmed (routes, security
groups, network ACLs, flow logs: `peerguard.usecases.change.grace_checks`).

The change auditor writes it, the SQS delay queue holds it for the grace period, and the
same function reads it back. Anything on the queue that is not exactly this is malformed:
logged and counted, never retried.
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from peerguard.aws.regions import check_region
from peerguard.domain.names import RESOURCE_ID
from peerguard.domain.scope import Scope
from peerguard.events import MalformedEvent, one_line

MAX_IDS = 1000  # far more than one EC2 call touches


def _resource_id(value: str) -> str:
    if not RESOURCE_ID.match(value):
        raise ValueError(f"{value[:40]!r} is not an EC2 resource id")
    return value


ResourceId = Annotated[str, AfterValidator(_resource_id)]
Region = Annotated[str, AfterValidator(check_region)]
Ids = Annotated[frozenset[ResourceId], Field(max_length=MAX_IDS)]


class GraceScope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    vpc_ids: Ids = frozenset()
    peering_ids: Ids = frozenset()
    route_table_ids: Ids = frozenset()
    subnet_ids: Ids = frozenset()
    security_group_ids: Ids = frozenset()
    network_acl_ids: Ids = frozenset()
    flow_log_ids: Ids = frozenset()


class GraceBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    event_id: str = Field(min_length=1, max_length=128, pattern=r"^[\w.:/-]+$")
    event_name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z]+$")
    regions: tuple[Region, ...] = Field(min_length=1, max_length=32)
    scope: GraceScope

    def to_scope(self) -> Scope:
        return Scope(**{k: frozenset(v) for k, v in self.scope.model_dump().items()})

    @classmethod
    def of(cls, event_id: str, event_name: str, regions: list[str], scope: Scope) -> GraceBody:
        body = {
            "event_id": event_id,
            "event_name": event_name,
            "regions": regions,
            "scope": scope.to_json(),
        }
        return cls.model_validate_json(json.dumps(body))


def parse_grace(body: object) -> GraceBody:
    """A grace-queue message body (JSON text) -> GraceBody, or MalformedEvent in one line."""
    if not isinstance(body, str | bytes):
        raise MalformedEvent(f"grace message body is not text (got {type(body).__name__})")
    try:
        return GraceBody.model_validate_json(body)
    except ValidationError as e:
        raise MalformedEvent("grace message " + one_line(e, ())) from None
    except (ValueError, RecursionError) as e:
        raise MalformedEvent(f"grace message is not valid JSON ({type(e).__name__})") from None
