"""The flow analyzer's state in the shared DynamoDB table: its watermark and the baselines.

- `flow#watermark#<account>#<region>`: `next_window`, the start (epoch seconds) of the first
  window not analysed yet, and a `revision`. Advancing is conditional on the revision read,
  so of two overlapping runs only one moves it (the other stops).
- `flow#baseline#<pcx id>`: one peering's `PeeringBaseline` as JSON (bounded by
  `baseline.Limits`: well under DynamoDB's 400 KB item limit), expiring 30 days after the
  last write, so the baselines of deleted peerings go away by themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from peerguard.domain.flows.baseline import Baseline, PeeringBaseline

WATERMARK = "flow#watermark#"
BASELINE = "flow#baseline#"
_BATCH_GET = 100
_BATCH_WRITE = 25


@dataclass(frozen=True)
class Watermark:
    next_window: int  # epoch seconds: the first window not analysed yet
    revision: int


class FlowStore:
    """Watermark and baselines; the low-level DynamoDB client is passed in."""

    def __init__(self, dynamodb: Any, table: str, retention: timedelta = timedelta(days=30)):
        if not table:
            raise ValueError("no state table name given (set PEERGUARD_TABLE)")
        self.dynamodb = dynamodb
        self.table = table
        self.retention = retention

    # -- the watermark -----------------------------------------------------------------

    @staticmethod
    def watermark_key(account_id: str, region: str) -> str:
        return f"{WATERMARK}{account_id}#{region}"

    def watermark(self, account_id: str, region: str) -> Watermark | None:
        item = self.dynamodb.get_item(
            TableName=self.table,
            Key={"pk": {"S": self.watermark_key(account_id, region)}},
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        return Watermark(int(item["next_window"]["N"]), int(item["revision"]["N"]))

    def advance(
        self, account_id: str, region: str, seen: Watermark | None, next_window: int, now: datetime
    ) -> Watermark | None:
        """Move the watermark to `next_window` if nobody moved it since `seen` was read;
        the new watermark, or None when another run got there first."""
        revision = (seen.revision if seen else 0) + 1
        values: dict[str, Any] = {
            ":next": {"N": str(next_window)},
            ":rev": {"N": str(revision)},
            ":now": {"S": now.astimezone(UTC).isoformat()},
        }
        if seen is None:
            condition = "attribute_not_exists(pk)"
        else:
            condition = "revision = :seen"
            values[":seen"] = {"N": str(seen.revision)}
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"pk": {"S": self.watermark_key(account_id, region)}},
                UpdateExpression="SET next_window = :next, revision = :rev, updated_at = :now",
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return None
            raise
        return Watermark(next_window, revision)

    # -- baselines ---------------------------------------------------------------------

    def baselines(self, peering_ids: Iterable[str]) -> Baseline:
        """The stored baselines of these peerings (a missing or unreadable one starts cold)."""
        ids = sorted(set(peering_ids))
        out: dict[str, PeeringBaseline] = {}
        for i in range(0, len(ids), _BATCH_GET):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"pk": {"S": BASELINE + p}} for p in ids[i : i + _BATCH_GET]],
                    "ConsistentRead": True,
                }
            }
            while request:
                resp = self.dynamodb.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self.table, []):
                    pcx = item["pk"]["S"].removeprefix(BASELINE)
                    try:
                        out[pcx] = PeeringBaseline.model_validate_json(item["baseline"]["S"])
                    except (KeyError, ValueError):
                        continue  # written by another version: learn again
                request = resp.get("UnprocessedKeys") or {}
        return Baseline(peerings=out)

    def save_baselines(self, baseline: Baseline, peering_ids: Iterable[str], now: datetime) -> None:
        ttl = str(int((now + self.retention).timestamp()))
        puts = [
            {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": BASELINE + pcx},
                        "baseline": {"S": baseline.of(pcx).model_dump_json()},
                        "ttl": {"N": ttl},
                    }
                }
            }
            for pcx in sorted(set(peering_ids))
        ]
        for i in range(0, len(puts), _BATCH_WRITE):
            request: dict[str, Any] = {self.table: puts[i : i + _BATCH_WRITE]}
            while request:
                resp = self.dynamodb.batch_write_item(RequestItems=request)
                request = resp.get("UnprocessedItems") or {}
