"""The grace period of a change is over: re-read the live state, and announce (and fix, in
fix mode) the route findings that are still there."""

from __future__ import annotations

from typing import Any

from peerguard.domain import catalogue
from peerguard.events.grace import GraceBody, parse_grace
from peerguard.usecases import pipeline
from peerguard.usecases.change import route_checks
from peerguard.usecases.pipeline import Runtime


def on_grace_message(rt: Runtime, body: Any) -> dict[str, Any]:
    """One grace-queue message body. A malformed one is logged and counted, not retried."""
    parsed = pipeline.parse_or_report(parse_grace, body)
    if isinstance(parsed, dict):
        return parsed
    return confirm(rt, parsed)


def confirm(rt: Runtime, body: GraceBody) -> dict[str, Any]:
    scope = body.to_scope()
    checks = [catalogue.entry(c) for c in sorted(route_checks())]
    ctx = rt.context()
    regions = list(body.regions)
    result = pipeline.audit(rt.clients, regions, ctx, checks, scope=scope)
    pipeline.observe(result)
    findings = pipeline.remediate(rt, result, result.findings, ctx, body.event_id, regions)
    return {
        "event_id": body.event_id,
        "confirmed": len(result.findings),
        "notify": pipeline.announce(rt, findings, result.coverage(scope)),
    }
