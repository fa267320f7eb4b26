"""Acceptance: the 5-minute schedule and CreateVpcPeeringConnection events.

The accepter account receives no CloudTrail event for a request, so the function polls. It
lists the requests waiting for this account (home region and PEERGUARD_PEER_REGIONS), reads
the accepter VPCs, decides per request (`peerguard.domain.plans.acceptance`), and hands the
planned groups (accept + return routes + DNS option, or reject) to the one executor. Only
requests whose accepter VPC is in the home region are acted on: the stack and its IAM grants
are per region; those waiting elsewhere are alerted. Everything is announced like any
other finding.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from peerguard.aws.reader import Reader
from peerguard.domain import catalogue
from peerguard.domain.allowlist import ALLOWLIST_INVALID, allowlist_finding
from peerguard.domain.checks import CheckContext, run_checks, runnable
from peerguard.domain.coverage import Coverage
from peerguard.domain.findings import Finding
from peerguard.domain.model import PeeringConnection, Snapshot
from peerguard.domain.plans import acceptance as plans
from peerguard.domain.plans.acceptance import Policy, Verdict, decide
from peerguard.domain.plans.actions import Outcome, announcements
from peerguard.domain.scope import Scope
from peerguard.events import Change, parse_event
from peerguard.observability import logger
from peerguard.settings import AcceptanceSettings
from peerguard.usecases import pipeline
from peerguard.usecases.pipeline import Runtime


def on_acceptance(rt: Runtime, event: Any, context: Any = None) -> dict[str, Any]:
    """A schedule tick or a CreateVpcPeeringConnection event. Never raises for a bad event."""
    trigger = pipeline.parse_or_report(parse_event, event)
    if isinstance(trigger, dict):
        return trigger
    pcx_ids: frozenset[str] | None = None
    if isinstance(trigger, Change):
        if trigger.event_name != "CreateVpcPeeringConnection":
            return pipeline.ignored(f"{trigger.event_name} is not a request")
        if trigger.failed:
            return pipeline.ignored(f"the request failed ({trigger.error_code})")
        if not trigger.peering_ids:
            return pipeline.ignored("the event names no peering connection")
        pcx_ids = trigger.peering_ids
        logger.append_keys(event_id=trigger.event_id, event_name=trigger.event_name)
    event_id = str(event["id"])
    rt.invoked(context)
    work = lambda: accept_pending(rt, pcx_ids=pcx_ids, trigger=event_id)  # noqa: E731
    return pipeline.once_per_event(rt, event, work, context)


@dataclass
class AcceptanceRun:
    """What one run saw, decided, did and will announce."""

    trigger: str
    pending: list[PeeringConnection]
    verdicts: list[Verdict]
    outcomes: list[Outcome]
    findings: list[Finding]
    coverage: Coverage
    warnings: list[str]
    allowlist_error: str = ""

    @property
    def changes(self) -> int:
        return sum(1 for o in self.outcomes if o.made)

    def summary(self) -> dict[str, Any]:
        return {
            "status": "done",
            "trigger": self.trigger,
            "pending": len(self.pending),
            "allowlist_error": self.allowlist_error or None,
            "verdicts": {v.pcx_id: {"action": v.action, "reason": v.reason} for v in self.verdicts},
            "changes": self.changes,
            "outcomes": [o.to_json() for o in self.outcomes],
            "findings": dict(Counter(f.check_id for f in self.findings)),
            "warnings": self.warnings,
        }


def accept_pending(
    rt: Runtime, *, pcx_ids: frozenset[str] | None = None, trigger: str = "schedule"
) -> dict[str, Any]:
    """Judge and act on the requests waiting for this account, then announce it all."""
    run = run_acceptance(rt, pcx_ids=pcx_ids, trigger=trigger)
    summary = {**run.summary(), "notify": pipeline.announce(rt, run.findings, run.coverage)}
    logger.info("acceptance finished", extra={"summary": summary})
    return summary


def policy_of(s: AcceptanceSettings) -> Policy:
    hours = s.reject_unlisted_after_hours
    return Policy(
        mode=s.mode,
        auto_accept=s.auto_accept,
        accept_routes=s.accept_routes,
        accept_dns=s.accept_dns,
        reject_after=timedelta(hours=hours) if hours else None,
    )


def run_acceptance(
    rt: Runtime, *, pcx_ids: frozenset[str] | None = None, trigger: str = "schedule"
) -> AcceptanceRun:
    """Read, decide and act (only on `pcx_ids`, if given); nothing is announced here."""
    s = rt.settings
    assert isinstance(s, AcceptanceSettings), "the acceptance function's settings"
    ctx = rt.check_context()
    account = rt.clients.account_id()
    reader = Reader(rt.clients, account)
    pending, listed, warnings = reader.pending_requests(rt.regions, pcx_ids)
    for w in warnings:
        logger.warning(w)
    snap = read_accepters(reader, rt, account, pending)
    policy = policy_of(s)
    verdicts, groups = [], []
    for p in pending:
        pcx = snap.peerings.get(p.pcx_id, p)
        v = home_only(decide(snap, pcx, ctx, reject_unlisted_after=policy.reject_after), rt.region)
        verdicts.append(v)
        groups.append(plans.plan_request(snap, pcx, v, policy, ctx))
    outcomes = rt.executor(trigger).run(groups)
    pipeline.count_outcomes(outcomes, "Acceptance")
    findings = _check_findings(plans.after(snap, outcomes), ctx, {p.pcx_id for p in pending})
    findings += announcements(outcomes) + plans.standing_findings(snap, outcomes, verdicts)
    if ctx.allowlist.error:
        findings.append(allowlist_finding(ctx.allowlist, account, rt.region))
    return AcceptanceRun(
        trigger=trigger,
        pending=pending,
        verdicts=verdicts,
        outcomes=outcomes,
        findings=findings,
        coverage=_coverage(account, listed, pending, ctx),
        warnings=warnings + list(snap.warnings),
        allowlist_error=ctx.allowlist.error,
    )


def _coverage(
    account: str, listed: Sequence[str], pending: Sequence[PeeringConnection], ctx: CheckContext
) -> Coverage:
    """Only what this run looked at can be resolved by it: the requests it listed (an
    accepted one's pending finding goes away) and the allowlist's health."""
    checks = [c.id for c in runnable([catalogue.entry(i) for i in plans.CHECKS], ctx)]
    return Coverage(
        account_id=account,
        regions=frozenset(listed),
        check_ids=frozenset(checks) | plans.STANDING | {ALLOWLIST_INVALID.id},
        resource_ids=frozenset({p.pcx_id for p in pending} | {ctx.allowlist.source}),
    )


def home_only(v: Verdict, home: str) -> Verdict:
    """Act only in the home region: the stack is deployed per region and its permissions
    name its own region. A request waiting in a peer region is alerted from here and acted
    on by the stack of that region."""
    if v.region == home or v.action not in ("accept", "reject"):
        return v
    reason = f"{v.reason}; its accepter VPC is in {v.region}: the PeerGuard stack there acts on it"
    return Verdict(v.pcx_id, "alert", reason, v.region)


def read_accepters(
    reader: Reader, rt: Runtime, account: str, pending: Sequence[PeeringConnection]
) -> Snapshot:
    """The accepter VPCs with their route tables and every peering they already have."""
    snap: Snapshot | None = None
    by_region: dict[str, list[PeeringConnection]] = {}
    for p in pending:
        by_region.setdefault(p.accepter.region, []).append(p)
    for region, group in sorted(by_region.items()):
        scope = Scope(
            vpc_ids=frozenset(p.accepter.vpc_id for p in group),
            peering_ids=frozenset(p.pcx_id for p in group),
        )
        part = reader.scoped(region, scope, rt.regions)
        snap = part if snap is None else snap.merged(part)
    if snap is None:
        return Snapshot(account_id=account, taken_at=rt.now(), readable=frozenset())
    return snap


def _check_findings(snap: Snapshot, ctx: CheckContext, pcx_ids: set[str]) -> list[Finding]:
    checks = runnable([catalogue.entry(c) for c in plans.CHECKS], ctx)
    return [f for f in run_checks(snap, ctx, checks) if f.peering_connection_id in pcx_ids]
