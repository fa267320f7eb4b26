"""SNS: one JSON message per finding, with attributes for subscription filter policies."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from typing import Any

from peerguard.notify import core
from peerguard.notify.core import (
    Failure,
    Notification,
    Sleep,
    Status,
    backoff_delays,
)

log = logging.getLogger(__name__)

MAX_SUBJECT = 99  # SNS: "less than 100 characters"
BATCH_ENTRIES = 10  # PublishBatch limit
BATCH_BYTES = 240_000  # PublishBatch total payload limit is 256 KiB


# -- rendering (pure) ------------------------------------------------------------------------


def subject(n: Notification) -> str:
    """E.g. `[HIGH] route.missing_reciprocal rtb-1 (pcx-2)`; ASCII, one line, < 100 chars."""
    f = n.finding
    tag = f.severity.value.upper()
    if n.status is not Status.NEW:
        tag += f" {n.status.value.upper()}"
    text = f"[{tag}] {f.check_id} {f.resource_id}"
    if f.peering_connection_id and f.peering_connection_id != f.resource_id:
        text += f" ({f.peering_connection_id})"
    text = text.encode("ascii", "replace").decode()
    text = re.sub(r"[\x00-\x1f\x7f\s]+", " ", text).strip()
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 3] + "..."


def attributes(n: Notification) -> dict[str, dict[str, str]]:
    f = n.finding
    values = {
        "severity": f.severity.value,
        "check_id": f.check_id,
        "account_id": f.account_id,
        "status": n.status.value,
    }
    return {k: {"DataType": "String", "StringValue": v} for k, v in values.items()}


def entry(n: Notification, entry_id: str) -> dict[str, Any]:
    """One PublishBatch entry (Publish takes the same fields without `Id`)."""
    return {
        "Id": entry_id,
        "Message": json.dumps(n.to_json(), sort_keys=True),
        "Subject": subject(n),
        "MessageAttributes": attributes(n),
    }


def batches(notifications: Sequence[Notification]) -> list[list[Notification]]:
    """Groups of at most 10 entries and about 240 KB, the PublishBatch limits."""
    out: list[list[Notification]] = []
    size = 0
    for n in notifications:
        n_size = len(entry(n, "x")["Message"].encode()) + 1024
        if not out or len(out[-1]) >= BATCH_ENTRIES or size + n_size > BATCH_BYTES:
            out.append([])
            size = 0
        out[-1].append(n)
        size += n_size
    return out


# -- delivery -------------------------------------------------------------------------------


class SnsNotifier:
    name = "sns"

    def __init__(
        self,
        topic_arn: str,
        sns: Any,
        *,
        attempts: int = 3,
        backoff: float = 1.0,
        sleep: Sleep | None = None,
        name: str = "sns",
    ) -> None:
        self.name = name  # "central-sns": the organization's topic beside the stack's own
        if not topic_arn.startswith("arn:"):
            raise ValueError(f"bad SNS topic ARN {topic_arn!r}")
        self.topic_arn = topic_arn
        self.sns = sns
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.sleep = sleep or core.default_sleep  # looked up late: tests swap it

    def deliver(self, notifications: Sequence[Notification]) -> list[Failure]:
        failures: list[Failure] = []
        for batch in batches(notifications):
            failures.extend(self._publish(batch))
        return failures

    def _publish(self, batch: list[Notification]) -> list[Failure]:
        """PublishBatch, then again for the entries SNS failed on its side (not our fault)."""
        by_id = {str(i): n for i, n in enumerate(batch)}
        pending = list(by_id)
        errors: dict[str, str] = {}
        delays = backoff_delays(self.attempts, self.backoff)
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(delays[attempt - 1])
            for i in pending:
                errors.pop(i, None)
            try:
                resp = self.sns.publish_batch(
                    TopicArn=self.topic_arn,
                    PublishBatchRequestEntries=[entry(by_id[i], i) for i in pending],
                )
            except Exception as e:  # botocore has already retried throttling and 5xx
                log.warning("sns publish_batch failed: %s", e)
                errors.update(dict.fromkeys(pending, f"{type(e).__name__}: {e}"))
                break
            failed = resp.get("Failed", [])
            for item in failed:
                errors[item["Id"]] = f"{item.get('Code')}: {item.get('Message', '')}"
            pending = [item["Id"] for item in failed if not item.get("SenderFault")]
            if not pending:
                break
        return [Failure((by_id[i],), err, entry(by_id[i], i)) for i, err in sorted(errors.items())]
