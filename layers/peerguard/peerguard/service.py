"""Use cases behind the Lambda handlers: each takes the Runtime and returns a summary."""

from __future__ import annotations

from typing import Any

from peerguard import checks as catalogue
from peerguard.audit import AuditResult, audit
from peerguard.checks import CheckContext
from peerguard.observability import MetricUnit, logger, metrics
from peerguard.runtime import Runtime


def check_context(rt: Runtime) -> CheckContext:
    return CheckContext(allowlist=rt.settings.allowlist)


def record(result: AuditResult) -> None:
    """Log and count an audit's outcome."""
    for w in result.warnings:
        logger.warning(w)
    metrics.add_metric(name="Findings", unit=MetricUnit.Count, value=len(result.findings))
    metrics.add_metric(name="ApiCalls", unit=MetricUnit.Count, value=result.api_calls)


def sweep(rt: Runtime) -> dict[str, Any]:
    """Full audit of the home region (and peer regions), all checks."""
    result = audit(rt.clients, rt.regions, check_context(rt), catalogue.resolve(None))
    record(result)
    summary = result.summary()
    logger.info("sweep finished", extra={"summary": summary})
    return summary
