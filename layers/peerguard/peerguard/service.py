"""Use cases behind the Lambda handlers: each takes the Runtime and returns a summary.

- `on_change`: a CloudTrail-recorded EC2 call. Audit just what it touched; announce
  non-route findings now, and park route findings on the grace queue.
- `on_grace_over`: the grace period of a change is over. Re-read the live state and
  announce (and fix, in fix mode) the route findings that are still there.
- `sweep`: full audit of the account; resolves what went away.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from peerguard import checks as catalogue
from peerguard.audit import AuditResult, audit
from peerguard.aws.snapshot import Scope
from peerguard.checks import REGISTRY, CheckContext
from peerguard.events import Change, MalformedEvent, NotOurs, parse_change
from peerguard.findings import Finding, Severity
from peerguard.notify import (
    Coverage,
    DeadLetter,
    DispatchSummary,
    Notifier,
    SecurityHubNotifier,
    SlackNotifier,
    SnsNotifier,
    dispatch,
)
from peerguard.observability import MetricUnit, logger, metrics
from peerguard.remediation import DynamoRecorder, Mode, RemediationConfig, remediate
from peerguard.remediation.record import now
from peerguard.runtime import Runtime
from peerguard.state import FindingStore

T = TypeVar("T")
ROUTE_CHECKS = frozenset(c for c in REGISTRY if c.startswith("route."))
IDEMPOTENCY_TTL = timedelta(hours=24)


def check_context(rt: Runtime) -> CheckContext:
    return CheckContext(allowlist=rt.settings.allowlist)


# -- notifications and fixes --------------------------------------------------------


def notifiers(rt: Runtime) -> list[Notifier]:
    """The channels the stack configured, and only those."""
    s, c = rt.settings, rt.clients
    out: list[Notifier] = []
    if s.topic_arn:
        out.append(SnsNotifier(s.topic_arn, c.client("sns")))
    if s.slack_secret_arn:
        out.append(SlackNotifier(s.slack_secret_arn, c.client("secretsmanager")))
    if s.security_hub:
        out.append(SecurityHubNotifier(c.client("securityhub"), rt.region, c.account_id()))
    return out


def announce(rt: Runtime, findings: Sequence[Finding], coverage: Coverage) -> dict[str, Any]:
    """Dedup against the state table, then deliver on every channel (DLQ for failures)."""
    s = rt.settings
    if not s.table_name:
        logger.warning("no state table configured: findings are logged, not notified")
        for f in findings:
            logger.info("finding", extra={"finding": f.model_dump(mode="json")})
        return {"logged": len(findings)}
    dlq = DeadLetter(s.notify_dlq_url, rt.clients.client("sqs")) if s.notify_dlq_url else None
    summary: DispatchSummary = dispatch(
        findings,
        coverage,
        now(),
        FindingStore(rt.clients.client("dynamodb"), s.table_name),
        notifiers(rt),
        dlq,
        window=timedelta(hours=s.dedup_hours),
    )
    result = summary.to_dict()
    for kind, n in result["decisions"].items():
        metrics.add_metric(name=f"Notify{kind.capitalize()}", unit=MetricUnit.Count, value=n)
    for channel, counts in result["channels"].items():
        failed = counts.get("dead_lettered", 0) + counts.get("undelivered", 0)
        metrics.add_metric(name=f"{channel}Failed", unit=MetricUnit.Count, value=failed)
    return result


def fix(
    rt: Runtime, result: AuditResult, findings: Sequence[Finding], trigger: str
) -> list[Finding]:
    """Plan, and in dry-run/fix mode apply, within the rails. Returns what to announce
    instead: findings that were fixed are replaced by a record of the change."""
    s = rt.settings
    config = RemediationConfig.build(
        s.mode,
        dict(s.mode_overrides),
        known_checks=REGISTRY,
        fix_dns=s.fix_dns,
        max_changes=s.max_changes,
    )
    if config.default_mode is Mode.NOTIFY and not config.overrides:
        return list(findings)
    recorder = DynamoRecorder(rt.clients, s.table_name) if s.table_name else None
    done = remediate(
        rt.clients,
        findings,
        result.snapshot,
        config,
        ctx=check_context(rt),
        regions=rt.regions,
        recorder=recorder,
        trigger=trigger,
    )
    report = done.to_json()
    for status, n in report["counts"].items():
        metrics.add_metric(name=f"Remediation{status.capitalize()}", unit=MetricUnit.Count, value=n)
    logger.info("remediation", extra={"remediation": report})
    fixed = {o.finding.fingerprint for o in done.applied}
    return [f for f in findings if f.fingerprint not in fixed] + done.announcements()


def observe(result: AuditResult) -> None:
    """Log and count an audit's outcome."""
    for w in result.warnings:
        logger.warning(w)
    metrics.add_metric(name="Findings", unit=MetricUnit.Count, value=len(result.findings))
    metrics.add_metric(name="ApiCalls", unit=MetricUnit.Count, value=result.api_calls)


# -- sweep ----------------------------------------------------------------------------


def sweep(rt: Runtime) -> dict[str, Any]:
    """Full audit of the home region (and peer regions), all checks."""
    result = audit(rt.clients, rt.regions, check_context(rt), catalogue.resolve(None))
    observe(result)
    findings = fix(rt, result, result.findings, trigger="sweep")
    summary = {**result.summary(), "notify": announce(rt, findings, Coverage.of_audit(result))}
    logger.info("sweep finished", extra={"summary": summary})
    return summary


# -- change events ----------------------------------------------------------------------


def on_change(rt: Runtime, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """One EventBridge event. Never raises for a bad event: it is logged and counted."""
    change = parse_or_report(parse_change, event)
    if isinstance(change, dict):
        return change
    logger.append_keys(event_id=change.event_id, event_name=change.event_name)
    return once(rt, event, lambda _: handle_change(rt, change), context)


def parse_or_report(parse: Callable[[Any], T], event: Any) -> T | dict[str, Any]:
    """The parsed event, or the result for an event that is not ours or is malformed
    (logged with its one-line reason and counted; returning, not raising, so no retries)."""
    try:
        return parse(event)
    except NotOurs as e:
        return ignored(str(e))
    except MalformedEvent as e:
        event_id = event.get("id") if isinstance(event, dict) else None
        logger.warning("malformed event", extra={"reason": str(e), "event_id": event_id})
        metrics.add_metric(name="MalformedEvents", unit=MetricUnit.Count, value=1)
        return {"status": "malformed", "reason": str(e)}


def ignored(reason: str) -> dict[str, Any]:
    logger.info("event ignored", extra={"reason": reason})
    metrics.add_metric(name="IgnoredEvents", unit=MetricUnit.Count, value=1)
    return {"status": "ignored", "reason": reason}


def once(
    rt: Runtime, event: dict[str, Any], work: Callable[[dict[str, Any]], Any], context: Any = None
) -> Any:
    """Run `work` once per EventBridge event id (a duplicate delivery gets the first result)."""
    if not rt.settings.table_name:
        return work(event)
    persistence = DynamoDBPersistenceLayer(
        table_name=rt.settings.table_name,
        key_attr="pk",
        expiry_attr="ttl",
        boto3_client=rt.clients.client("dynamodb"),
    )
    config = IdempotencyConfig(
        event_key_jmespath="id",
        expires_after_seconds=int(IDEMPOTENCY_TTL.total_seconds()),
        raise_on_no_idempotency_key=True,
    )
    if context is not None:
        config.register_lambda_context(context)  # an in-progress record expires with the call

    ran = False

    @idempotent_function(
        data_keyword_argument="event", persistence_store=persistence, config=config
    )
    def run(event: dict[str, Any]) -> Any:
        nonlocal ran
        ran = True
        return work(event)

    result = run(event=event)
    if not ran:
        logger.info("duplicate delivery: returning the first result")
        metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)
    return result


def handle_change(rt: Runtime, change: Change) -> dict[str, Any]:
    if change.failed:
        return _failed_call(rt, change)
    scope = change.scope()
    if not scope:
        # Security group, NACL and flow-log calls: no check reads those resources yet;
        # a disassociation names only its (now gone) association id. The sweep covers them.
        logger.info("nothing in scope", extra={"association_ids": sorted(change.association_ids)})
        metrics.add_metric(name="OutOfScopeEvents", unit=MetricUnit.Count, value=1)
        return {"status": "out-of-scope", "event_name": change.event_name}
    regions = [change.region, *(r for r in rt.regions if r != change.region)]
    result = audit(rt.clients, regions, check_context(rt), catalogue.resolve(None), scope=scope)
    observe(result)
    routes = [f for f in result.findings if f.check_id in ROUTE_CHECKS]
    others = [f for f in result.findings if f.check_id not in ROUTE_CHECKS]
    coverage = Coverage.of_audit(result, scope)
    deferred = bool(routes) and defer(rt, change, scope, regions)
    if deferred:
        coverage = dataclasses.replace(coverage, check_ids=coverage.check_ids - ROUTE_CHECKS)
        findings = others
    else:
        findings = result.findings
    findings = fix(rt, result, findings, trigger=change.event_id)
    return {
        "status": "audited",
        "event_name": change.event_name,
        "findings": len(result.findings),
        "deferred": len(routes) if deferred else 0,
        "api_calls": result.api_calls,
        "notify": announce(rt, findings, coverage),
    }


def defer(rt: Runtime, change: Change, scope: Scope, regions: list[str]) -> bool:
    """Park a change's route findings for the grace period; False when there is none."""
    s = rt.settings
    if s.grace_minutes == 0 or not s.grace_queue_url:
        return False
    body = {
        "event_id": change.event_id,
        "event_name": change.event_name,
        "regions": regions,
        "scope": {k: sorted(v) for k, v in dataclasses.asdict(scope).items()},
    }
    rt.clients.client("sqs").send_message(
        QueueUrl=s.grace_queue_url,
        MessageBody=json.dumps(body),
        DelaySeconds=s.grace_minutes * 60,
    )
    metrics.add_metric(name="DeferredChanges", unit=MetricUnit.Count, value=1)
    return True


def confirm(rt: Runtime, body: dict[str, Any]) -> dict[str, Any]:
    """After the grace period: re-read the live state; what is still wrong is announced."""
    scope = Scope(**{k: frozenset(v) for k, v in body["scope"].items()})
    checks = [REGISTRY[c] for c in sorted(ROUTE_CHECKS)]
    result = audit(rt.clients, body["regions"], check_context(rt), checks, scope=scope)
    observe(result)
    findings = fix(rt, result, result.findings, trigger=body["event_id"])
    return {
        "event_id": body["event_id"],
        "confirmed": len(result.findings),
        "notify": announce(rt, findings, Coverage.of_audit(result, scope)),
    }


def _failed_call(rt: Runtime, change: Change) -> dict[str, Any]:
    """A refused call changed nothing; a refused peering request is still worth knowing."""
    if change.event_name != "CreateVpcPeeringConnection":
        return ignored(f"the call failed ({change.error_code}): it changed nothing")
    finding = failed_request_finding(change)
    nothing_to_resolve = Coverage(change.account_id, frozenset({change.region}), frozenset())
    return {"status": "failed-call", "notify": announce(rt, [finding], nothing_to_resolve)}


def failed_request_finding(change: Change) -> Finding:
    meta = REGISTRY["peering.failed"]
    vpcs = ", ".join(sorted(change.vpc_ids)) or "an unknown VPC"
    peers = ", ".join(sorted(change.peer_account_ids)) or change.account_id
    return Finding(
        check_id=meta.id,
        severity=Severity.LOW,
        resource_type="AWS::EC2::VPC",
        resource_id=sorted(change.vpc_ids)[0] if change.vpc_ids else change.event_id,
        account_id=change.account_id,
        region=change.region,
        vpc_id=sorted(change.vpc_ids)[0] if change.vpc_ids else None,
        title="Peering request refused by EC2",
        detail=f"{change.actor or 'Someone'} asked to peer {vpcs} with account {peers} at "
        f"{change.event_time:%Y-%m-%d %H:%M} UTC and EC2 refused: {change.error_code}: "
        f"{change.error_message or 'no message'}.",
        key=change.event_id,
    )


def _id(event: Any) -> str | None:
    return event.get("id") if isinstance(event, dict) else None
