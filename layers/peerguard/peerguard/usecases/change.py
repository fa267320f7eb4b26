"""A CloudTrail-recorded EC2 call: audit just what it touched.

Findings of the kinds people build in several calls wait out the grace period (parked on
the grace queue, confirmed by `peerguard.usecases.grace` on the live state): routes, security
groups and network ACLs (a rule replaced is a revoke and an authorize, an ACL entry replaced
is a delete and a create), and flow logs (a peering is created before its flow log; a flow
log is replaced by a delete and a create). A new rule open to the internet is the exception:
it is announced (and, in fix mode, revoked) at once, as are the peering findings.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from peerguard.domain import catalogue
from peerguard.domain.coverage import Coverage
from peerguard.domain.findings import Finding
from peerguard.domain.scope import Scope
from peerguard.events import Change, parse_change
from peerguard.events.grace import GraceBody
from peerguard.observability import MetricUnit, logger, metrics
from peerguard.settings import ChangeAuditorSettings
from peerguard.usecases import pipeline
from peerguard.usecases.pipeline import Runtime

FAILED_REQUEST = "peering.failed"


GRACE_AREAS = ("route.", "sg.", "nacl.", "flowlogs.")
AT_ONCE = frozenset({"sg.open_to_world"})


def grace_checks() -> frozenset[str]:
    """The checks whose findings wait out the grace period."""
    return frozenset(c for c in catalogue.checks() if c.startswith(GRACE_AREAS)) - AT_ONCE


def on_change(rt: Runtime, event: Any, context: Any = None) -> dict[str, Any]:
    """One EventBridge event. Never raises for a bad event: it is logged and counted."""
    change = pipeline.parse_or_report(parse_change, event)
    if isinstance(change, dict):
        return change
    logger.append_keys(event_id=change.event_id, event_name=change.event_name)
    rt.invoked(context)
    return pipeline.once_per_event(rt, event, lambda: handle_change(rt, change), context)


def handle_change(rt: Runtime, change: Change) -> dict[str, Any]:
    if change.failed:
        return _failed_call(rt, change)
    scope = change.scope()
    if not scope:
        # A disassociation names only its (now gone) association id: the sweep covers it.
        logger.info("nothing in scope", extra={"association_ids": sorted(change.association_ids)})
        metrics.add_metric(name="OutOfScopeEvents", unit=MetricUnit.Count, value=1)
        return {"status": "out-of-scope", "event_name": change.event_name}
    regions = [change.region, *(r for r in rt.regions if r != change.region)]
    ctx = rt.check_context()
    members = rt.members()
    result = pipeline.audit(rt.clients, regions, ctx, scope=scope, members=members)
    pipeline.observe(result)
    waiting = grace_checks()
    later = [f for f in result.findings if f.check_id in waiting]
    coverage = result.coverage(scope)
    findings = result.findings
    deferred = bool(later) and defer(rt, change, regions, scope)
    if deferred:
        coverage = coverage.without(waiting)
        findings = [f for f in result.findings if f.check_id not in waiting]
    findings = pipeline.remediate(rt, result, findings, ctx, change.event_id, regions, members)
    return {
        "status": "audited",
        "event_name": change.event_name,
        "findings": len(result.findings),
        "deferred": len(later) if deferred else 0,
        "api_calls": result.api_calls,
        "notify": pipeline.announce(rt, findings, coverage),
    }


def defer(rt: Runtime, change: Change, regions: list[str], scope: Scope) -> bool:
    """Park a change's findings for the grace period; False when there is none."""
    s = rt.settings
    assert isinstance(s, ChangeAuditorSettings)
    if s.grace_minutes == 0 or not s.grace_queue_url:
        return False
    body = GraceBody.of(change.event_id, change.event_name, regions, scope)
    try:
        rt.clients.client("sqs").send_message(
            QueueUrl=s.grace_queue_url,
            MessageBody=body.model_dump_json(),
            DelaySeconds=s.grace_minutes * 60,
        )
    except (ClientError, BotoCoreError) as e:
        # A finding must not wait in a queue it never reached: announce it now instead.
        logger.warning("grace queue unavailable: announcing now", extra={"error": str(e)})
        metrics.add_metric(name="GraceQueueFailed", unit=MetricUnit.Count, value=1)
        return False
    metrics.add_metric(name="DeferredChanges", unit=MetricUnit.Count, value=1)
    return True


def _failed_call(rt: Runtime, change: Change) -> dict[str, Any]:
    """A refused call changed nothing; a refused peering request is still worth knowing."""
    if change.event_name != "CreateVpcPeeringConnection":
        return pipeline.ignored(f"the call failed ({change.error_code}): it changed nothing")
    finding = failed_request_finding(change)
    nothing = Coverage.nothing(change.account_id, change.region)
    return {"status": "failed-call", "notify": pipeline.announce(rt, [finding], nothing)}


def failed_request_finding(change: Change) -> Finding:
    vpcs = ", ".join(sorted(change.vpc_ids)) or "an unknown VPC"
    peers = ", ".join(sorted(change.peer_account_ids)) or change.account_id
    vpc_id = min(change.vpc_ids) if change.vpc_ids else None
    return catalogue.entry(FAILED_REQUEST).finding(
        resource_type="AWS::EC2::VPC",
        resource_id=vpc_id or change.event_id,
        account_id=change.account_id,
        region=change.region,
        vpc_id=vpc_id,
        title="Peering request refused by EC2",
        detail=f"{change.actor or 'Someone'} asked to peer {vpcs} with account {peers} at "
        f"{change.event_time:%Y-%m-%d %H:%M} UTC and EC2 refused: {change.error_code}: "
        f"{change.error_message or 'no message'}.",
        key=change.event_id,
    )
