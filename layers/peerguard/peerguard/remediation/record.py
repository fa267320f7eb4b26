"""Change records: who changed what, before/after, and the call that undoes it.

`Recorder` is the interface; `DynamoRecorder` writes to the system's DynamoDB table
(partition key `pk` only), `MemoryRecorder` keeps them for the CLI and tests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from boto3.dynamodb.types import TypeSerializer

from peerguard.aws.clients import Clients

CHANGE_PREFIX = "change#"
DEFAULT_RETENTION = timedelta(days=365)


@dataclass(frozen=True)
class ChangeRecord:
    when: datetime
    trigger: str  # event id, "cli" or "sweep"
    fingerprint: str
    check_id: str
    account_id: str
    region: str
    call: dict[str, Any]  # {"operation", "parameters"}
    undo: dict[str, Any] | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    result: str  # applied | already done | failed: <code>
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def pk(self) -> str:
        return f"{CHANGE_PREFIX}{self.when.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{self.id}"

    def to_item(self, retention: timedelta = DEFAULT_RETENTION) -> dict[str, Any]:
        """The DynamoDB item (plain Python values; None attributes are left out)."""
        item: dict[str, Any] = {
            "pk": self.pk,
            "when": self.when.isoformat(),
            "trigger": self.trigger,
            "fingerprint": self.fingerprint,
            "check_id": self.check_id,
            "account_id": self.account_id,
            "region": self.region,
            "call": self.call,
            "undo": self.undo,
            "before": self.before,
            "after": self.after,
            "result": self.result,
            "ttl": int((self.when + retention).timestamp()),
        }
        return {k: v for k, v in item.items() if v is not None}


class Recorder(Protocol):
    def record(self, change: ChangeRecord) -> None: ...


@dataclass
class MemoryRecorder:
    records: list[ChangeRecord] = field(default_factory=list)

    def record(self, change: ChangeRecord) -> None:
        self.records.append(change)


class DynamoRecorder:
    """One item per change in the shared table; `ttl` expires it after `retention`."""

    def __init__(
        self, clients: Clients, table_name: str, retention: timedelta = DEFAULT_RETENTION
    ) -> None:
        if not table_name:
            raise ValueError("no DynamoDB table name given for change records")
        self.clients = clients
        self.table_name = table_name
        self.retention = retention
        self._ser = TypeSerializer()

    def record(self, change: ChangeRecord) -> None:
        item = {k: self._ser.serialize(v) for k, v in change.to_item(self.retention).items()}
        self.clients.client("dynamodb").put_item(
            TableName=self.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",  # never overwrite a record
        )


def now() -> datetime:
    return datetime.now(UTC)
