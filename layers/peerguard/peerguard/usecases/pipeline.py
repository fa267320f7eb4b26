"""The pipeline every use case shares: audit -> plan -> execute -> announce.

`Runtime` is what a Lambda container (or a CLI run) keeps: the clients, the validated
settings, the allowlist provider, and the notifiers, all built lazily and passed in.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, TypeVar

import boto3

from peerguard import clock
from peerguard.aws.allowlist import AllowlistProvider
from peerguard.aws.clients import Clients
from peerguard.aws.executor import Executor
from peerguard.aws.members import MemberAccess
from peerguard.aws.reader import Reader
from peerguard.domain import checks as check_catalogue
from peerguard.domain.accounts import in_view
from peerguard.domain.allowlist import ALLOWLIST_INVALID, allowlist_finding
from peerguard.domain.catalogue import Entry
from peerguard.domain.checks import CheckContext, runnable
from peerguard.domain.coverage import Coverage
from peerguard.domain.findings import Finding, Severity, sort_findings
from peerguard.domain.model import Snapshot
from peerguard.domain.plans.actions import Mode, Outcome, announcements
from peerguard.domain.plans.remediation import RemediationConfig, plan_all
from peerguard.domain.scope import Scope
from peerguard.events import MalformedEvent, NotOurs
from peerguard.notify import (
    DeadLetter,
    EventBusNotifier,
    Notifier,
    SecurityHubNotifier,
    SlackNotifier,
    SnsNotifier,
    dispatch,
)
from peerguard.observability import MetricUnit, logger, metrics
from peerguard.settings import FunctionSettings, RemediatingSettings
from peerguard.state.changes import DynamoRecorder, MemoryRecorder, Outbox, Recorder
from peerguard.state.findings import FindingStore
from peerguard.state.idempotency import once

T = TypeVar("T")

# -- the audit ------------------------------------------------------------------------------


@dataclass
class AuditResult:
    snapshot: Snapshot
    findings: list[Finding]
    checks: list[str]  # the checks that ran (and whose earlier findings it may resolve)
    api_calls: int = 0
    allowlist_source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.snapshot.warnings

    def at_or_above(self, level: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity.rank >= level.rank]

    def coverage(self, scope: Scope | None = None) -> Coverage:
        """What this audit may resolve: its checks and the allowlist, over what it read."""
        covered = Coverage.of_snapshot(self.snapshot, [*self.checks, ALLOWLIST_INVALID.id], scope)
        if covered.resource_ids is not None and self.allowlist_source:
            covered = replace(covered, resource_ids=covered.resource_ids | {self.allowlist_source})
        return covered

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
        return {"findings": [f.to_json() for f in self.findings], "summary": self.summary()}


def evaluate(
    snapshot: Snapshot, ctx: CheckContext, checks: Sequence[Entry], home_region: str = ""
) -> AuditResult:
    """Run the checks that can be judged; an unusable allowlist is itself a finding."""
    ran = runnable(checks, ctx)
    findings = in_view(snapshot, check_catalogue.run_checks(snapshot, ctx, ran))
    if ctx.allowlist.error:
        region = home_region or min((r for _, r in snapshot.readable), default="")
        findings = sort_findings(
            [*findings, allowlist_finding(ctx.allowlist, snapshot.account_id, region)]
        )
    return AuditResult(
        snapshot, findings, [c.id for c in ran], allowlist_source=ctx.allowlist.source
    )


def audit(
    clients: Clients,
    regions: Iterable[str],
    ctx: CheckContext,
    checks: Sequence[Entry] | None = None,
    scope: Scope | None = None,
    members: MemberAccess | None = None,
) -> AuditResult:
    """Full audit of `regions`, or, with a scope, just what a change in the first region touched.
    With `members`, the far sides of cross-account peerings are read and judged too."""
    regions = list(regions)
    before = clients.total_calls
    reader = Reader(clients, members=members)
    snapshot = reader.full(regions) if scope is None else reader.scoped(regions[0], scope, regions)
    result = evaluate(
        snapshot, ctx, check_catalogue.resolve(None) if checks is None else checks, regions[0]
    )
    result.api_calls = clients.total_calls - before
    return result


# -- the runtime ----------------------------------------------------------------------------


@dataclass
class Runtime:
    clients: Clients
    settings: FunctionSettings
    now: Callable[[], datetime] = clock.now
    sleep: Callable[[float], None] = time.sleep
    # This invocation's Lambda context: its deadline bounds the changes (None: no deadline).
    lambda_context: Any = None

    def invoked(self, context: Any) -> None:
        """A new invocation of the container (Lambda runs one at a time per container)."""
        self.lambda_context = context

    def time_left(self) -> float | None:
        """Seconds before Lambda stops this invocation, or None outside Lambda."""
        remaining = getattr(self.lambda_context, "get_remaining_time_in_millis", None)
        return remaining() / 1000 if callable(remaining) else None

    @property
    def region(self) -> str:
        return self.clients.region

    @property
    def regions(self) -> list[str]:
        """The home region first, then the other regions read for cross-region peers."""
        home = self.region
        return [home, *(r for r in self.settings.peer_regions if r != home)]

    def members(self) -> MemberAccess | None:
        """The member role for this invocation (None: off). New each time: the assumed
        credentials last an hour, a warm container longer."""
        name = self.settings.member_role_name
        return MemberAccess(self.clients, name) if name else None

    @cached_property
    def allowlist(self) -> AllowlistProvider:
        s = self.settings
        ssm = self.clients.client("ssm") if s.allowlist_parameter else None
        return AllowlistProvider(s.allowlist, s.allowlist_parameter, ssm)

    def check_context(self) -> CheckContext:
        """The check context of this invocation (the allowlist as it is now)."""
        allow = self.allowlist.get()
        if allow.error:
            logger.error(allow.error)
            metrics.add_metric(name="AllowlistInvalid", unit=MetricUnit.Count, value=1)
        s = self.settings
        ctx = CheckContext(allowlist=allow, database_ports=s.database_ports)
        if isinstance(s, RemediatingSettings):
            ctx = replace(
                ctx, flow_log_group=s.flow_log_group, flow_log_role_arn=s.flow_log_role_arn
            )
        return ctx

    @cached_property
    def notifiers(self) -> list[Notifier]:
        """The channels the stack configured, and only those (built once per container, so
        the Slack webhook secret is read once)."""
        s, c = self.settings, self.clients
        out: list[Notifier] = []
        if s.topic_arn:
            out.append(SnsNotifier(s.topic_arn, c.client("sns")))
        if s.central_topic_arn:  # the organization's one topic (org/central.yaml)
            out.append(SnsNotifier(s.central_topic_arn, c.client("sns"), name="central-sns"))
        if s.central_bus_arn:
            out.append(EventBusNotifier(s.central_bus_arn, c.client("events")))
        if s.slack_secret_arn:
            out.append(SlackNotifier(s.slack_secret_arn, c.client("secretsmanager")))
        if s.security_hub:
            out.append(SecurityHubNotifier(c.client("securityhub"), self.region, c.account_id()))
        return out

    @cached_property
    def recorder(self) -> Recorder:
        if self.settings.table_name:
            return DynamoRecorder(self.clients.client("dynamodb"), self.settings.table_name)
        return MemoryRecorder()

    def executor(
        self,
        trigger: str,
        regions: Sequence[str] | None = None,
        members: MemberAccess | None = None,
    ) -> Executor:
        return Executor(
            self.clients,
            members=members,
            max_changes=self.settings.max_changes,
            regions=regions or self.regions,
            recorder=self.recorder,
            trigger=trigger,
            sleep=self.sleep,
            now=self.now,
            time_left=self.time_left,
        )


_RUNTIMES: dict[type[FunctionSettings], Runtime] = {}
_SESSION: list[boto3.Session] = []  # the session new runtimes use (none: the environment's)


def runtime(kind: type[FunctionSettings]) -> Runtime:
    """The container's runtime for a function, built on first use (never at import time)."""
    if kind not in _RUNTIMES:
        session = _SESSION[0] if _SESSION else None
        clients = Clients(session, default_region=os.environ.get("AWS_REGION"))
        _RUNTIMES[kind] = Runtime(clients, kind.from_env())
    return _RUNTIMES[kind]


def reset_runtimes(session: boto3.Session | None = None) -> None:
    """A new cold start: forget every runtime; the next ones build their clients on
    `session` (the harness passes its own, with any faults it registered on it)."""
    _RUNTIMES.clear()
    _SESSION[:] = [session] if session is not None else []


# -- the steps ------------------------------------------------------------------------------


def observe(result: AuditResult) -> None:
    """Log and count an audit's outcome."""
    for w in result.warnings:
        logger.warning(w)
    metrics.add_metric(name="Findings", unit=MetricUnit.Count, value=len(result.findings))
    metrics.add_metric(name="ApiCalls", unit=MetricUnit.Count, value=result.api_calls)


def count_outcomes(outcomes: Sequence[Outcome], prefix: str) -> dict[str, int]:
    counts = Counter(o.status.value for o in outcomes)
    for status, n in counts.items():
        metrics.add_metric(name=f"{prefix}{status.capitalize()}", unit=MetricUnit.Count, value=n)
    return dict(counts)


def remediate(
    rt: Runtime,
    result: AuditResult,
    findings: Sequence[Finding],
    ctx: CheckContext,
    trigger: str,
    regions: Sequence[str] | None = None,
    members: MemberAccess | None = None,
) -> list[Finding]:
    """Plan, and in dry-run/fix mode carry out, within the rails. Returns what to announce:
    findings that were fixed are replaced by the announcement of the change."""
    s = rt.settings
    if not isinstance(s, RemediatingSettings):
        return list(findings)
    config = RemediationConfig(
        default_mode=s.mode,
        overrides=s.mode_overrides,
        fix_dns=s.fix_dns,
        max_changes=s.max_changes,
    )
    if config.default_mode is Mode.NOTIFY and not config.overrides:
        return list(findings)
    outcomes = rt.executor(trigger, regions, members).run_each(
        plan_all(findings, result.snapshot, config, ctx)
    )
    logger.info(
        "remediation",
        extra={
            "remediation": {
                "counts": count_outcomes(outcomes, "Remediation"),
                "outcomes": [o.to_json() for o in outcomes],
            }
        },
    )
    fixed = {o.finding.fingerprint for o in outcomes if o.status.value == "applied"}
    return [f for f in findings if f.fingerprint not in fixed] + announcements(outcomes)


def announce(rt: Runtime, findings: Sequence[Finding], coverage: Coverage) -> dict[str, Any]:
    """Dedup against the state table, then deliver on every channel (DLQ for failures)."""
    s = rt.settings
    if not s.table_name:
        logger.warning("no state table configured: findings are logged, not notified")
        for f in findings:
            logger.info("finding", extra={"finding": f.to_json()})
        return {"logged": len(findings)}
    dlq = DeadLetter(s.notify_dlq_url, rt.clients.client("sqs")) if s.notify_dlq_url else None
    # Changes recorded (by this run or one that failed before telling anyone) and not
    # announced yet: dedup keeps the one already delivered from being delivered again.
    outbox = Outbox(rt.clients.client("dynamodb"), s.table_name)
    waiting = dict(outbox.waiting(coverage.account_id, coverage.regions))
    fresh = {f.fingerprint for f in findings}
    findings = [*findings, *(f for f in waiting.values() if f.fingerprint not in fresh)]
    summary = dispatch(
        findings,
        coverage,
        rt.now(),
        FindingStore(rt.clients.client("dynamodb"), s.table_name),
        rt.notifiers,
        dlq,
        window=timedelta(hours=s.dedup_hours),
    )
    outbox.settle(k for k, f in waiting.items() if f.fingerprint not in summary.unsettled)
    result = summary.to_dict()
    for kind, n in result["decisions"].items():
        metrics.add_metric(name=f"Notify{kind.capitalize()}", unit=MetricUnit.Count, value=n)
    for channel, counts in result["channels"].items():
        failed = counts.get("dead_lettered", 0) + counts.get("undelivered", 0)
        metrics.add_metric(name=f"{channel}Failed", unit=MetricUnit.Count, value=failed)
    return result


# -- events -----------------------------------------------------------------------------------


def parse_or_report(parse: Callable[[Any], T], event: Any) -> T | dict[str, Any]:
    """The parsed event, or the result for an event that is not ours or is malformed
    (logged with its one-line reason and counted; returned, not raised, so no retries)."""
    try:
        return parse(event)
    except NotOurs as e:
        return ignored(str(e))
    except MalformedEvent as e:
        return malformed(str(e))


def malformed(reason: str) -> dict[str, Any]:
    """Logged with its one-line reason and counted; returned, not raised, so no retries."""
    logger.warning("malformed event", extra={"reason": reason})
    metrics.add_metric(name="MalformedEvents", unit=MetricUnit.Count, value=1)
    return {"status": "malformed", "reason": reason}


def ignored(reason: str) -> dict[str, Any]:
    logger.info("event ignored", extra={"reason": reason})
    metrics.add_metric(name="IgnoredEvents", unit=MetricUnit.Count, value=1)
    return {"status": "ignored", "reason": reason}


def once_per_event(
    rt: Runtime, event: dict[str, Any], work: Callable[[], Any], context: Any
) -> Any:
    """Run `work` once per EventBridge event id (a duplicate delivery gets the first result)."""

    def duplicate() -> None:
        logger.info("duplicate delivery: returning the first result")
        metrics.add_metric(name="DuplicateEvents", unit=MetricUnit.Count, value=1)

    return once(
        rt.clients.client("dynamodb"), rt.settings.table_name, event, work, context, duplicate
    )
