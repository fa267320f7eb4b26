"""Dedup: which findings of an audit to announce, and which earlier findings are resolved.

Pure: the audit's findings, what it covered, and the stored states in; decisions out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from peerguard.findings import Finding
from peerguard.notify.core import Notification, Status
from peerguard.state import FindingState

if TYPE_CHECKING:
    from peerguard.audit import AuditResult
    from peerguard.aws.snapshot import Scope
    from peerguard.model import Snapshot

DEFAULT_WINDOW = timedelta(hours=24)
# Longer than a Lambda can run: a claim older than this was abandoned by a dead invocation.
DEFAULT_LEASE = timedelta(minutes=20)


@dataclass(frozen=True)
class Coverage:
    """Which findings an audit could have produced, so only those can be resolved by it.

    A stored finding is covered when its check ran, its account and region were read in
    full, and (for a scoped audit) its resource was looked at. `resource_ids` None means
    every resource of the regions (a full audit).
    """

    account_id: str
    regions: frozenset[str]
    check_ids: frozenset[str]
    resource_ids: frozenset[str] | None = None

    def covers(self, state: FindingState) -> bool:
        return (
            state.check_id in self.check_ids
            and state.account_id == self.account_id
            and state.region in self.regions
            and (self.resource_ids is None or state.resource_id in self.resource_ids)
        )

    @classmethod
    def of_snapshot(
        cls, snapshot: Snapshot, check_ids: Iterable[str], scope: Scope | None = None
    ) -> Coverage:
        """What an audit over `snapshot` covered. Regions where a describe call failed are left
        out: a finding there may only look gone because it could not be read."""
        broken = {region for region, _ in snapshot.partial}
        regions = frozenset(
            r for acct, r in snapshot.readable if acct == snapshot.account_id and r not in broken
        )
        resource_ids: frozenset[str] | None = None
        if scope is not None:
            # Looked up but not found counts as covered: a deleted route table resolves.
            read_vpcs = set(snapshot.vpcs)
            peerings = {
                p.pcx_id
                for p in snapshot.peerings.values()
                if p.pcx_id in scope.peering_ids or {s.vpc_id for s in p.sides} & read_vpcs
            }
            resource_ids = frozenset(
                scope.vpc_ids
                | scope.peering_ids
                | scope.route_table_ids
                | scope.subnet_ids
                | read_vpcs
                | set(snapshot.subnets)
                | set(snapshot.route_tables)
                | peerings
            )
        return cls(snapshot.account_id, regions, frozenset(check_ids), resource_ids)

    @classmethod
    def of_audit(cls, result: AuditResult, scope: Scope | None = None) -> Coverage:
        return cls.of_snapshot(result.snapshot, result.checks, scope)


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
