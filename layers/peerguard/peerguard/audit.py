"""The audit use case: read the network, run the checks, summarise. Shared by CLI and Lambdas."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from peerguard.aws.clients import Clients
from peerguard.aws.snapshot import Reader, Scope
from peerguard.checks import Check, CheckContext, run_checks
from peerguard.findings import Finding, Severity
from peerguard.model import Snapshot


@dataclass
class AuditResult:
    snapshot: Snapshot
    findings: list[Finding]
    checks: list[str]
    api_calls: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.snapshot.warnings

    def at_or_above(self, level: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity.rank >= level.rank]

    def summary(self) -> dict[str, Any]:
        sev = Counter(f.severity.value for f in self.findings)
        return {
            "account_id": self.snapshot.account_id,
            "regions": sorted({r for _, r in self.snapshot.readable}),
            "taken_at": self.snapshot.taken_at.isoformat(),
            "total": len(self.findings),
            "by_severity": {s.value: sev.get(s.value, 0) for s in reversed(Severity)},
            "by_check": dict(sorted(Counter(f.check_id for f in self.findings).items())),
            "checks_run": self.checks,
            "peerings": len(self.snapshot.peerings),
            "vpcs": len(self.snapshot.vpcs),
            "route_tables": len(self.snapshot.route_tables),
            "api_calls": self.api_calls,
            "warnings": list(self.warnings),
            **self.extra,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": [f.model_dump(mode="json") for f in self.findings],
            "summary": self.summary(),
        }


def evaluate(snapshot: Snapshot, ctx: CheckContext, checks: Sequence[Check]) -> AuditResult:
    return AuditResult(snapshot, run_checks(snapshot, ctx, checks), [c.id for c in checks])


def audit(
    clients: Clients,
    regions: Iterable[str],
    ctx: CheckContext,
    checks: Sequence[Check],
    scope: Scope | None = None,
) -> AuditResult:
    """Full audit of `regions`, or, with a scope, just what a change in the first region touched."""
    regions = list(regions)
    before = clients.total_calls
    reader = Reader(clients)
    snapshot = reader.full(regions) if scope is None else reader.scoped(regions[0], scope, regions)
    result = evaluate(snapshot, ctx, checks)
    result.api_calls = clients.total_calls - before
    return result
