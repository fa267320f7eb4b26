"""Sweep: a full audit of the account on a schedule; fixes (in fix mode) and resolves what
went away. It catches what events missed: CloudTrail-to-EventBridge delivery is best effort."""

from __future__ import annotations

from typing import Any

from peerguard.aws.trails import trails_of
from peerguard.domain.findings import Finding
from peerguard.domain.setup import NO_TRAIL, no_trail
from peerguard.events import parse_schedule
from peerguard.observability import logger
from peerguard.usecases import pipeline
from peerguard.usecases.pipeline import AuditResult, Runtime


def on_schedule(rt: Runtime, event: Any, context: Any = None) -> dict[str, Any]:
    tick = pipeline.parse_or_report(parse_schedule, event)
    if isinstance(tick, dict):
        return tick
    rt.invoked(context)
    return sweep(rt)


def sweep(rt: Runtime) -> dict[str, Any]:
    """Full audit of the home region (and peer regions), all checks."""
    ctx = rt.check_context()
    members = rt.members()
    result = pipeline.audit(rt.clients, rt.regions, ctx, members=members)
    setup = trail_coverage(rt, result)
    pipeline.observe(result)
    findings = pipeline.remediate(
        rt, result, result.findings, ctx, trigger="sweep", members=members
    )
    coverage = result.coverage()
    if setup is not None:
        findings += setup
        coverage = coverage.plus(NO_TRAIL.id)
    summary = {**result.summary(), "notify": pipeline.announce(rt, findings, coverage)}
    logger.info("sweep finished", extra={"summary": summary})
    return summary


def trail_coverage(rt: Runtime, result: AuditResult) -> list[Finding] | None:
    """`setup.no_trail` in the home region when no trail feeds EventBridge; None when
    CloudTrail could not be read (nothing is raised or resolved on a guess)."""
    trails, warning = trails_of(rt.clients, rt.region)
    if trails is None:
        logger.warning(warning)
        result.snapshot = result.snapshot.model_copy(
            update={"warnings": (*result.snapshot.warnings, warning)}
        )
        return None
    found = no_trail(trails, result.snapshot.account_id, rt.region)
    return [found] if found else []
