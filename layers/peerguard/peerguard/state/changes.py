"""Change records in DynamoDB: who changed what, before/after, and the call that undoes it.

`Recorder` is what the executor writes to; `DynamoRecorder` puts one item per change in the
shared table (never overwriting one), `MemoryRecorder` keeps them for the CLI and tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from boto3.dynamodb.types import TypeSerializer

from peerguard.domain.plans.actions import ChangeRecord

CHANGE_PREFIX = "change#"
DEFAULT_RETENTION = timedelta(days=365)


def to_item(change: ChangeRecord, retention: timedelta = DEFAULT_RETENTION) -> dict[str, Any]:
    """The DynamoDB item (plain Python values; None attributes are left out)."""
    item: dict[str, Any] = {
        "pk": f"{CHANGE_PREFIX}{change.when.strftime('%Y-%m-%dT%H:%M:%S.%fZ')}#{change.id}",
        "when": change.when.isoformat(),
        "trigger": change.trigger,
        "fingerprint": change.fingerprint,
        "check_id": change.check_id,
        "change": change.change,
        "account_id": change.account_id,
        "region": change.region,
        "call": change.call,
        "undo": change.undo,
        "before": change.before,
        "after": change.after,
        "result": change.result,
        "ttl": int((change.when + retention).timestamp()),
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
        self, dynamodb: Any, table_name: str, retention: timedelta = DEFAULT_RETENTION
    ) -> None:
        if not table_name:
            raise ValueError("no DynamoDB table name given for change records")
        self.dynamodb = dynamodb
        self.table_name = table_name
        self.retention = retention
        self._ser = TypeSerializer()

    def record(self, change: ChangeRecord) -> None:
        item = {k: self._ser.serialize(v) for k, v in to_item(change, self.retention).items()}
        self.dynamodb.put_item(
            TableName=self.table_name,
            Item=item,
            ConditionExpression="attribute_not_exists(pk)",  # never overwrite a record
        )
