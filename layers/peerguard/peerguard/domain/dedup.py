"""Dedup: which findings of an audit to announce, and which earlier findings are resolved.

Pure: the audit's findings, what it covered, and the stored states in; decisions out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from peerguard.domain.coverage import Coverage
from peerguard.domain.findings import Finding

OPEN = "open"
RESOLVED = "resolved"
DEFAULT_WINDOW = timedelta(hours=24)
# Longer than a Lambda can run: a claim older than this was abandoned by a dead invocation.
DEFAULT_LEASE = timedelta(minutes=20)


@dataclass(frozen=True)
class FindingState:
    """One finding as last announced. `status` is None while only claimed, never recorded."""

    fingerprint: str
    check_id: str
    severity: str
    resource_id: str
    account_id: str
    region: str
    first_seen: datetime
    last_seen: datetime
    revision: int
    peering_connection_id: str | None = None
    vpc_id: str | None = None
    status: str | None = None
    notified_at: datetime | None = None
    content_hash: str | None = None
    finding: Finding | None = None
    claimed_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    def in_flight(self, now: datetime, lease: timedelta) -> bool:
        """Claimed by an invocation that has not recorded the outcome yet, and not abandoned."""
        if self.claimed_at is None:
            return False
        unrecorded = self.notified_at is None or self.claimed_at > self.notified_at
        return unrecorded and now - self.claimed_at < lease


class Status(StrEnum):
    """Why a finding is announced (also the SNS `status` and the DLQ record)."""

    NEW = "new"
    CHANGED = "changed"
    REPEAT = "repeat"  # still open after the dedup window
    RESOLVED = "resolved"


def iso(when: datetime) -> str:
    """ISO 8601 UTC with milliseconds and a Z, the form ASFF uses."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Notification:
    finding: Finding
    status: Status
    first_seen: datetime
    observed_at: datetime  # this audit's time (for resolved: when it was found gone)

    @property
    def resolved(self) -> bool:
        return self.status is Status.RESOLVED

    def to_json(self) -> dict[str, Any]:
        """The finding as in the CLI JSON contract, plus why it is announced."""
        return {
            **self.finding.to_json(),
            "status": self.status.value,
            "first_seen": iso(self.first_seen),
            "observed_at": iso(self.observed_at),
        }

    def to_record(self) -> dict[str, Any]:
        """Everything needed to announce it again exactly (a dead letter's replay)."""
        return {
            "finding": self.finding.to_record(),
            "status": self.status.value,
            "first_seen": self.first_seen.isoformat(),
            "observed_at": self.observed_at.isoformat(),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Notification:
        return cls(
            Finding.from_record(record["finding"]),
            Status(record["status"]),
            datetime.fromisoformat(record["first_seen"]),
            datetime.fromisoformat(record["observed_at"]),
        )

    @property
    def delivery_key(self) -> str:
        """One announcement of one finding: the same key is never delivered twice."""
        return f"{self.finding.fingerprint}|{self.status.value}|{self.observed_at.isoformat()}"


class Kind(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    REPEAT = "repeat"  # still open, window passed: remind
    RESOLVED = "resolved"
    SUPPRESSED = "suppressed"  # still open, announced within the window (or being announced)


@dataclass(frozen=True)
class Decision:
    kind: Kind
    finding: Finding
    previous: FindingState | None

    @property
    def announce(self) -> bool:
        return self.kind is not Kind.SUPPRESSED

    def notification(self, now: datetime) -> Notification:
        first_seen = self.previous.first_seen if self.previous else now
        return Notification(self.finding, Status(self.kind.value), first_seen, now)


def decide(
    findings: Sequence[Finding],
    previous: Mapping[str, FindingState],
    coverage: Coverage,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
    lease: timedelta = DEFAULT_LEASE,
) -> list[Decision]:
    """One decision per current finding, plus RESOLVED for covered open findings now gone."""
    out: list[Decision] = []
    current: dict[str, Finding] = {}
    for f in findings:
        current.setdefault(f.fingerprint, f)
    for fp, f in current.items():
        out.append(Decision(_kind_of(f, previous.get(fp), now, window, lease), f, previous.get(fp)))
    for fp, state in sorted(previous.items()):
        if (
            fp not in current
            and state.is_open
            and state.finding is not None
            and coverage.covers(state)
            and not state.in_flight(now, lease)
        ):
            out.append(Decision(Kind.RESOLVED, state.finding, state))
    return out


def _kind_of(
    f: Finding, prev: FindingState | None, now: datetime, window: timedelta, lease: timedelta
) -> Kind:
    if prev is not None and prev.in_flight(now, lease):
        return Kind.SUPPRESSED  # another invocation is announcing it right now
    if prev is None or not prev.is_open or prev.notified_at is None:
        return Kind.NEW  # never announced, or announced resolved and back again
    if prev.content_hash != f.content_hash:
        return Kind.CHANGED
    if now - prev.notified_at >= window:
        return Kind.REPEAT
    return Kind.SUPPRESSED
