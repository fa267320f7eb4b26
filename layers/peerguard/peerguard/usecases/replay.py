"""Re-drive the notification dead-letter queue after an outage (`peerguard replay-dlq`).

Each dead letter holds the notifications one channel could not deliver. Replaying one sends
them again through that channel; a message is deleted only once it is delivered. Replays
are idempotent: each dead letter is claimed in the state table (`replayed#<channel>#<key>`)
before it is delivered and marked delivered after, so a message replayed twice (a crash
between delivering and deleting it, or two people replaying at once) is delivered once.
A claim left by a replay that died is taken over after `LEASE`.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from peerguard.domain.dedup import Notification
from peerguard.notify.core import Notifier

REPLAYED = "replayed#"
REMEMBER = timedelta(days=30)
LEASE = timedelta(minutes=10)


@dataclass
class ReplayReport:
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "errors": self.errors}


def _key(channel: str, notifications: list[Notification]) -> str:
    keys = sorted(n.delivery_key for n in notifications)
    digest = hashlib.sha256("\n".join(keys).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{REPLAYED}{channel}#{digest}"


def replay(
    sqs: Any,
    queue_url: str,
    notifiers: Mapping[str, Notifier],
    dynamodb: Any,
    table: str,
    now: datetime,
    *,
    limit: int = 1000,
    dry_run: bool = False,
) -> ReplayReport:
    """Deliver up to `limit` dead letters again; what happened to them."""
    report = ReplayReport()
    seen = 0
    looked_at: list[str] = []
    while seen < limit:
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, limit - seen),
            VisibilityTimeout=120,
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not got:
            break
        for message in got:
            seen += 1
            outcome = _one(message, notifiers, dynamodb, table, now, dry_run, report)
            report.counts[outcome] += 1
            handle = message["ReceiptHandle"]
            if dry_run:
                looked_at.append(handle)
            elif outcome in ("delivered", "already delivered"):
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=handle)
    for handle in looked_at:  # a dry run takes nothing: visible again at once
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    return report


def _one(
    message: dict[str, Any],
    notifiers: Mapping[str, Notifier],
    dynamodb: Any,
    table: str,
    now: datetime,
    dry_run: bool,
    report: ReplayReport,
) -> str:
    try:
        body = json.loads(message["Body"])
        channel = str(body["channel"])
        notifications = [Notification.from_record(r) for r in body["replay"]]
    except (ValueError, KeyError, TypeError) as e:
        report.errors.append(f"{message.get('MessageId')}: not a PeerGuard dead letter ({e})")
        return "unreadable"  # left in the queue for a person
    notifier = notifiers.get(channel)
    if notifier is None:
        report.errors.append(f"{message.get('MessageId')}: channel {channel} is not configured")
        return "no channel"
    key = _key(channel, notifications)
    if dry_run:
        done = dynamodb.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True)
        delivered = done.get("Item", {}).get("state", {}).get("S") == "delivered"
        return "already delivered" if delivered else "would deliver"
    claimed = _claim(dynamodb, table, key, now)
    if claimed != "claimed":
        return claimed
    failures = notifier.deliver(notifications)
    if failures:
        report.errors.extend(f"{channel}: {f.error}" for f in failures)
        dynamodb.delete_item(TableName=table, Key={"pk": {"S": key}})  # free for the next try
        return "failed"  # visible again after its timeout: the next replay tries again
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": key}},
        UpdateExpression="SET #s = :delivered",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":delivered": {"S": "delivered"}},
    )
    return "delivered"


def _claim(dynamodb: Any, table: str, key: str, now: datetime) -> str:
    """'claimed', or why not: 'already delivered', or 'in progress' (another replay)."""
    try:
        dynamodb.put_item(
            TableName=table,
            Item={
                "pk": {"S": key},
                "state": {"S": "replaying"},
                "claimed_at": {"S": now.isoformat()},
                "ttl": {"N": str(int((now + REMEMBER).timestamp()))},
            },
            ConditionExpression="attribute_not_exists(pk) "
            "OR (#s = :replaying AND claimed_at < :stale)",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={
                ":replaying": {"S": "replaying"},
                ":stale": {"S": (now - LEASE).isoformat()},
            },
        )
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        item = dynamodb.get_item(TableName=table, Key={"pk": {"S": key}}, ConsistentRead=True)
        state = item.get("Item", {}).get("state", {}).get("S")
        return "already delivered" if state == "delivered" else "in progress"
    return "claimed"
