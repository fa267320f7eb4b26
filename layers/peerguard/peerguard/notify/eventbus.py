"""EventBridge: one event per finding on a bus (the organization's central bus,
org/central.yaml), for rules anywhere in the organization to route."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from peerguard.notify.core import Failure, Notification

log = logging.getLogger(__name__)

SOURCE = "peerguard"
DETAIL_TYPE = "PeerGuard Finding"
BATCH = 10  # PutEvents limit


def entry(n: Notification, bus_arn: str) -> dict[str, Any]:
    """One PutEvents entry. The finding's own account and region are in the detail (the
    event's `account` is the sender's); rules match on detail.check_id, detail.account_id, ..."""
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(n.to_json(), sort_keys=True),
        "EventBusName": bus_arn,
        "Time": n.observed_at,
    }


class EventBusNotifier:
    name = "eventbridge"

    def __init__(self, bus_arn: str, events: Any) -> None:
        if not bus_arn.startswith("arn:"):
            raise ValueError(f"bad event bus ARN {bus_arn!r}")
        self.bus_arn = bus_arn
        self.events = events

    def deliver(self, notifications: Sequence[Notification]) -> list[Failure]:
        failures: list[Failure] = []
        for i in range(0, len(notifications), BATCH):
            batch = list(notifications[i : i + BATCH])
            entries = [entry(n, self.bus_arn) for n in batch]
            try:
                resp = self.events.put_events(Entries=entries)
            except Exception as e:  # botocore has already retried throttling and 5xx
                log.warning("events put_events failed: %s", e)
                failures.append(Failure(tuple(batch), f"{type(e).__name__}: {e}", entries))
                continue
            for n, sent, result in zip(batch, entries, resp.get("Entries", []), strict=False):
                if result.get("ErrorCode"):
                    error = f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}"
                    failures.append(Failure((n,), error, [sent]))
        return failures
