"""The notify use case: dedup an audit's findings, deliver on every channel, lose nothing.

Each channel is delivered independently (one failing never blocks the others) and retries
within the invocation; what still fails goes to an SQS dead-letter queue, one message per
failed (channel, batch), holding the rendered payload and the findings, so it can be redriven.
A finding is recorded as notified once its delivery attempt is over (delivered or
dead-lettered); if even the dead-letter queue fails, it is left unrecorded and its claim
expires, so a later audit announces it again.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from peerguard.domain.coverage import Coverage
from peerguard.domain.dedup import (
    DEFAULT_LEASE,
    DEFAULT_WINDOW,
    OPEN,
    RESOLVED,
    Decision,
    Kind,
    Notification,
    decide,
    iso,
)
from peerguard.domain.findings import Finding
from peerguard.notify.core import Failure, Notifier
from peerguard.state.findings import FindingStore

log = logging.getLogger(__name__)

CHANNEL_OUTCOMES = ("delivered", "dead_lettered", "undelivered")
SQS_MAX_BYTES = 250_000  # SendMessage limit is 256 KiB, keep room for attributes


class DeadLetter:
    """An SQS queue for notifications no channel could deliver. The client is passed in."""

    def __init__(self, queue_url: str, sqs: Any) -> None:
        if not queue_url:
            raise ValueError("no dead-letter queue given (set PEERGUARD_NOTIFY_DLQ_URL)")
        self.queue_url = queue_url
        self.sqs = sqs

    def send(self, channel: str, failure: Failure, now: datetime) -> int:
        """Queue one failure; split in halves while too big for one SQS message.
        Returns the number of SQS messages sent."""
        body = {
            "channel": channel,
            "error": failure.error,
            "failed_at": iso(now),
            "notifications": [n.to_json() for n in failure.notifications],
            "payload": failure.payload,
            "replay": [n.to_record() for n in failure.notifications],  # peerguard replay-dlq
        }
        text = json.dumps(body, sort_keys=True, default=str)
        if len(text.encode()) > SQS_MAX_BYTES and len(failure.notifications) > 1:
            sent = 0
            for part in _halves(failure):
                sent += self.send(channel, part, now)
            return sent
        self.sqs.send_message(
            QueueUrl=self.queue_url,
            MessageBody=text,
            MessageAttributes={"channel": {"DataType": "String", "StringValue": channel}},
        )
        return 1


def _halves(failure: Failure) -> list[Failure]:
    """Split a failure's notifications (and a list payload, item for item) in two."""
    ns = failure.notifications
    mid = len(ns) // 2
    payload = failure.payload
    parts: tuple[Any, Any] = (None, None)  # a payload that cannot be split is dropped
    if isinstance(payload, list) and len(payload) == len(ns):
        parts = (payload[:mid], payload[mid:])
    return [
        Failure(ns[:mid], failure.error, parts[0]),
        Failure(ns[mid:], failure.error, parts[1]),
    ]


@dataclass
class DispatchSummary:
    """What happened, for handler logs and metrics."""

    decisions: Counter[str] = field(default_factory=Counter)
    channels: dict[str, Counter[str]] = field(default_factory=dict)
    raced: int = 0  # another invocation claimed them first; it announces them
    unrecorded: int = 0  # neither delivered nor dead-lettered; announced again later
    unsettled: set[str] = field(default_factory=set)  # their fingerprints

    def to_dict(self) -> dict[str, Any]:
        return {
            "decisions": {k.value: self.decisions.get(k.value, 0) for k in Kind},
            "channels": {
                name: {k: c.get(k, 0) for k in CHANNEL_OUTCOMES}
                for name, c in sorted(self.channels.items())
            },
            "raced": self.raced,
            "unrecorded": self.unrecorded,
        }


def dispatch(
    findings: Sequence[Finding],
    coverage: Coverage,
    now: datetime,
    store: FindingStore,
    notifiers: Sequence[Notifier],
    dead_letter: DeadLetter | None,
    *,
    window: timedelta = DEFAULT_WINDOW,
    lease: timedelta = DEFAULT_LEASE,
) -> DispatchSummary:
    """Announce what is new, changed, due again or resolved; stay quiet about the rest."""
    summary = DispatchSummary()
    previous = store.get_many(f.fingerprint for f in findings)
    for state in store.open_states(coverage):
        previous.setdefault(state.fingerprint, state)
    decisions = decide(findings, previous, coverage, now, window, lease)
    summary.decisions.update(d.kind.value for d in decisions)

    claimed: list[tuple[Decision, int]] = []
    for d in decisions:
        if not d.announce:
            store.touch(d.finding.fingerprint, now)
            continue
        revision = store.claim(d.finding, d.previous, now)
        if revision is None:
            summary.raced += 1
        else:
            claimed.append((d, revision))

    notifications = [d.notification(now) for d, _ in claimed]
    unsettled: set[str] = set()
    if notifications:
        for notifier in notifiers:
            unsettled |= _deliver(notifier, notifications, dead_letter, now, summary)

    for d, revision in claimed:
        if d.finding.fingerprint in unsettled:
            summary.unrecorded += 1
            summary.unsettled.add(d.finding.fingerprint)
            continue
        status = RESOLVED if d.kind is Kind.RESOLVED else OPEN
        store.record(d.finding, status, revision, now)
    return summary


def _deliver(
    notifier: Notifier,
    notifications: list[Notification],
    dead_letter: DeadLetter | None,
    now: datetime,
    summary: DispatchSummary,
) -> set[str]:
    """Deliver on one channel; dead-letter its failures. The fingerprints left unsettled."""
    counts = summary.channels.setdefault(notifier.name, Counter())
    try:
        failures = notifier.deliver(notifications)
    except Exception as e:  # a broken channel must not stop the others
        log.exception("notifier %s failed", notifier.name)
        failures = [Failure(tuple(notifications), f"{type(e).__name__}: {e}")]
    failed = {n.finding.fingerprint for f in failures for n in f.notifications}
    counts["delivered"] += sum(1 for n in notifications if n.finding.fingerprint not in failed)
    unsettled: set[str] = set()
    for failure in failures:
        fps = {n.finding.fingerprint for n in failure.notifications}
        try:
            if dead_letter is None:
                raise RuntimeError("no dead-letter queue configured")
            dead_letter.send(notifier.name, failure, now)
        except Exception:
            log.exception("dead-lettering %d %s notifications failed", len(fps), notifier.name)
            counts["undelivered"] += len(fps)
            unsettled |= fps
        else:
            counts["dead_lettered"] += len(fps)
    return unsettled
