"""The catalogue: every kind of finding a user can receive, with its metadata beside it.

Checks register themselves with `@check(...)` (a pure function Snapshot -> findings);
the other kinds (what acceptance and remediation report, setup problems, flow anomalies)
with `define(...)` next to the code that raises them. Alerts, `peerguard checks` and the
README catalogue all read this one table, and every Finding is built by `Entry.finding`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from peerguard.domain.findings import Finding, Remediation, Severity

if TYPE_CHECKING:
    from peerguard.domain.checks.context import CheckContext
    from peerguard.domain.model import Snapshot

    CheckFn = Callable[[Snapshot, CheckContext], Iterable[Finding]]


class Kind(StrEnum):
    CHECK = "check"  # a check over the snapshot
    FLOW = "flow"  # a flow-log anomaly
    SETUP = "setup"  # PeerGuard itself is not set up right
    ACCEPTANCE = "acceptance"  # what the acceptance function decided or did
    REMEDIATION = "remediation"  # what a fix did


@dataclass(frozen=True)
class Entry:
    id: str
    kind: Kind
    severity: Severity  # the usual severity; a finding may raise it (e.g. near expiry)
    title: str
    risk: str
    fix: str
    resource_type: str
    # What PeerGuard does about it by itself (in fix mode or on acceptance); "" = nothing.
    automatic_fix: str = ""
    # What PeerGuard must be allowed to call to raise it (read) or fix it (write).
    iam_actions: tuple[str, ...] = ()
    needs_allowlist: bool = False  # judged only against an allowlist (none = not run)
    fn: CheckFn | None = field(default=None, repr=False, compare=False)

    def run(self, snapshot: Snapshot, ctx: CheckContext) -> list[Finding]:
        if self.fn is None:
            raise TypeError(f"{self.id} is not a check")
        return list(self.fn(snapshot, ctx))

    def finding(
        self,
        *,
        resource_id: str,
        account_id: str,
        region: str,
        detail: str,
        vpc_id: str | None = None,
        peering_connection_id: str | None = None,
        severity: Severity | None = None,
        remediation: Remediation | None = None,
        resource_type: str | None = None,
        title: str | None = None,
        key: str = "",
        extra: dict[str, Any] | None = None,
    ) -> Finding:
        """The one way to build a Finding: kind, title and severity come from here."""
        return Finding(
            check_id=self.id,
            severity=severity or self.severity,
            resource_type=resource_type or self.resource_type,
            resource_id=resource_id,
            account_id=account_id,
            region=region,
            vpc_id=vpc_id,
            peering_connection_id=peering_connection_id,
            title=title or self.title,
            detail=detail,
            remediation=remediation,
            extra=extra or {},
            key=key,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "title": self.title,
            "risk": self.risk,
            "fix": self.fix,
            "resource_type": self.resource_type,
            "automatic_fix": bool(self.automatic_fix),
            "automatic_fix_detail": self.automatic_fix or None,
            "iam_actions": list(self.iam_actions),
        }


_ENTRIES: dict[str, Entry] = {}


def define(entry: Entry) -> Entry:
    if entry.id in _ENTRIES:
        raise ValueError(f"catalogue entry {entry.id} defined twice")
    _ENTRIES[entry.id] = entry
    return entry


def check(
    id: str,
    severity: Severity,
    title: str,
    *,
    risk: str,
    fix: str,
    resource_type: str,
    iam_actions: tuple[str, ...],
    automatic_fix: str = "",
    needs_allowlist: bool = False,
) -> Callable[[CheckFn], CheckFn]:
    """Register a check function under its stable id, with its metadata."""

    def register(fn: CheckFn) -> CheckFn:
        define(
            Entry(
                id,
                Kind.CHECK,
                severity,
                title,
                risk,
                fix,
                resource_type,
                automatic_fix,
                iam_actions,
                needs_allowlist,
                fn,
            )
        )
        return fn

    return register


# The catalogue's order: what is wrong (setup, network, traffic), then what PeerGuard did.
# By kind, not by import order, so the README table and `peerguard checks` never depend
# on which module happened to be imported first.
_ORDER = (Kind.SETUP, Kind.CHECK, Kind.FLOW, Kind.REMEDIATION, Kind.ACCEPTANCE)


def _registered() -> dict[str, Entry]:
    # The modules that define entries; importing them registers them.
    import peerguard.domain.checks
    import peerguard.domain.flows.rules
    import peerguard.domain.plans
    import peerguard.domain.setup  # noqa: F401

    return _ENTRIES


def entries() -> dict[str, Entry]:
    """Every entry, in catalogue order (by kind; checks by area, as defined)."""
    return dict(sorted(_registered().items(), key=lambda kv: _ORDER.index(kv[1].kind)))


def entry(id: str) -> Entry:
    try:
        return _registered()[id]
    except KeyError:
        raise KeyError(f"no catalogue entry {id!r}") from None


def checks() -> dict[str, Entry]:
    return {i: e for i, e in entries().items() if e.kind is Kind.CHECK}
