"""Sweep: a full audit of the account on a schedule; fixes (in fix mode) and resolves what
went away. It catches what events missed: CloudTrail-to-EventBridge delivery is best effort."""

from __future__ import annotations

from typing import Any

from peerguard.events import parse_schedule
from peerguard.observability import logger
from peerguard.usecases import pipeline
from peerguard.usecases.pipeline import Runtime


def on_schedule(rt: Runtime, event: Any) -> dict[str, Any]:
    tick = pipeline.parse_or_report(parse_schedule, event)
    if isinstance(tick, dict):
        return tick
    return sweep(rt)


def sweep(rt: Runtime) -> dict[str, Any]:
    """Full audit of the home region (and peer regions), all checks."""
    ctx = rt.context()
    result = pipeline.audit(rt.clients, rt.regions, ctx)
    pipeline.observe(result)
    findings = pipeline.remediate(rt, result, result.findings, ctx, trigger="sweep")
    summary = {**result.summary(), "notify": pipeline.announce(rt, findings, result.coverage())}
    logger.info("sweep finished", extra={"summary": summary})
    return summary
