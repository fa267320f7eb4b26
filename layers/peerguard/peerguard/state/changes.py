"""Change records in DynamoDB: who changed what, before/after, and the call that undoes it.

`Recorder` is what the executor writes to; `DynamoRecorder` puts one item per change in the
shared table (never overwriting one), `MemoryRecorder` keeps them for the CLI and tests.

A record is also the outbox of its announcement: until the announcement is delivered (or
dead-lettered) the item sits in the sparse open-findings index under
`unannounced#<account>#<region>`, and every announce picks up what is waiting there. A run
that made a change and then failed (state table throttled, out of time) loses nothing;
dedup keeps the second attempt from announcing it twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from peerguard.domain.findings import Finding
from peerguard.domain.plans.actions import ChangeRecord

CHANGE_PREFIX = "change#"
DEFAULT_RETENTION = timedelta(days=365)
OPEN_INDEX = "open-findings"


def outbox_scope(account_id: str, region: str) -> str:
    return f"unannounced#{account_id}#{region}"


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
    if change.announcement is not None:
        item["announcement"] = json.dumps(change.announcement, sort_keys=True)
        item["open_scope"] = outbox_scope(change.account_id, change.region)
        item["resource_id"] = item["pk"]  # the index's sort key
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


class Outbox:
    """The announcements of recorded changes not delivered yet, and their settling."""

    def __init__(self, dynamodb: Any, table_name: str) -> None:
        self.dynamodb = dynamodb
        self.table_name = table_name

    def waiting(self, account_id: str, regions: Iterable[str]) -> Iterator[tuple[str, Finding]]:
        """(record key, announcement) of every change in these regions not announced yet."""
        plain = TypeDeserializer()
        for region in sorted(regions):
            pages = self.dynamodb.get_paginator("query").paginate(
                TableName=self.table_name,
                IndexName=OPEN_INDEX,
                KeyConditionExpression="open_scope = :s",
                ExpressionAttributeValues={":s": {"S": outbox_scope(account_id, region)}},
            )
            for page in pages:
                for item in page.get("Items", []):
                    record = json.loads(plain.deserialize(item["announcement"]))
                    yield plain.deserialize(item["pk"]), Finding.from_record(record)

    def settle(self, keys: Iterable[str]) -> None:
        """Out of the outbox: the announcement was delivered or dead-lettered."""
        for key in keys:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": key}},
                UpdateExpression="REMOVE open_scope, resource_id",
                ConditionExpression="attribute_exists(pk)",
            )
