"""Apply planned actions through EC2, inside the safety rails. The only I/O of remediation.

- dry-run: every call is made with DryRun=True, never without it; DryRunOperation means
  "would succeed", UnauthorizedOperation names the missing permission.
- fix: at most `max_changes` calls; before each, the live state is re-read (scoped to
  the table/peering), the one check re-run and the action re-planned: it goes ahead
  only if the finding is still there and the plan is unchanged (ignore tags and the
  never-widen rail are re-checked on that fresh state). Idempotent error codes count as
  done; a denied call becomes a failed outcome (and a finding for the notifiers); every
  call made is recorded with before/after and its undo.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from peerguard.aws.clients import Clients
from peerguard.aws.snapshot import DENIED, Reader, Scope
from peerguard.checks.registry import REGISTRY, CheckContext
from peerguard.findings import Finding, Remediation, Severity
from peerguard.model import Snapshot
from peerguard.remediation.plan import (
    Action,
    Call,
    Mode,
    RemediationConfig,
    plan,
    plan_all,
    state_touched,
)
from peerguard.remediation.record import ChangeRecord, Recorder, now

# Error codes meaning "the change is already in place".
ALREADY_DONE = {
    "CreateRoute": frozenset({"RouteAlreadyExists"}),
    "DeleteRoute": frozenset({"InvalidRoute.NotFound"}),
    "RevokeSecurityGroupIngress": frozenset({"InvalidPermission.NotFound"}),
}
DRY_RUN_OK = "DryRunOperation"


class Status(StrEnum):
    APPLIED = "applied"
    VERIFIED = "verified"  # dry-run: the call would succeed
    SKIPPED = "skipped"
    PENDING = "pending"  # over the change cap: next invocation
    FAILED = "failed"
    PROPOSED = "proposed"  # notify only: the call for a person to make


@dataclass(frozen=True)
class Outcome:
    status: Status
    action: Action
    message: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    error_code: str | None = None
    recorded: bool | None = None  # None: nothing to record

    @property
    def finding(self) -> Finding:
        return self.action.finding

    def to_json(self) -> dict[str, Any]:
        a = self.action
        return {
            "status": self.status.value,
            "check_id": a.finding.check_id,
            "fingerprint": a.finding.fingerprint,
            "resource_id": a.finding.resource_id,
            "account_id": a.finding.account_id,
            "region": a.region,
            "mode": a.mode.value,
            "call": a.call.to_json() if a.call else None,
            "cli": a.call.cli() if a.call else None,
            "undo": a.undo.to_json() if a.undo else None,
            "message": self.message,
            "before": self.before,
            "after": self.after,
            "error_code": self.error_code,
            "recorded": self.recorded,
        }

    def failure_finding(self) -> Finding:
        """A failed action as a finding, so the notifiers announce it like any other."""
        f = self.finding
        call = self.action.call
        return f.model_copy(
            update={
                "check_id": "remediation.failed",
                "title": "Automatic fix failed",
                "detail": f"PeerGuard could not apply {call} for {f.check_id} on "
                f"{f.resource_id}: {self.message}. The original problem remains: {f.detail}",
                "remediation": Remediation(
                    action=call.operation,
                    parameters=dict(call.parameters),
                    automatic=False,
                    reason=f"automatic fix failed: {self.error_code or self.message}",
                )
                if call
                else None,
                "key": f.fingerprint,
            }
        )

    def applied_finding(self) -> Finding:
        """A change PeerGuard made, as an (info) finding: announced once, with its undo."""
        f = self.finding
        call, undo = self.action.call, self.action.undo
        undo_text = f" To undo: {undo.cli()}." if undo else ""
        return f.model_copy(
            update={
                "check_id": "remediation.applied",
                "severity": Severity.INFO,
                "title": "PeerGuard fixed this automatically",
                "detail": f"PeerGuard made {call.cli() if call else 'a change'} for "
                f"{f.check_id} on {f.resource_id} ({self.message}).{undo_text} "
                f"The problem was: {f.detail}",
                "remediation": None,
                # One announcement per change: the same fix made again is news again.
                "key": f"{f.fingerprint}|{now().isoformat()}",
            }
        )


@dataclass
class RemediationResult:
    default_mode: Mode
    max_changes: int
    trigger: str
    outcomes: list[Outcome] = field(default_factory=list)
    changes_attempted: int = 0

    def with_status(self, status: Status) -> list[Outcome]:
        return [o for o in self.outcomes if o.status is status]

    @property
    def applied(self) -> list[Outcome]:
        return self.with_status(Status.APPLIED)

    @property
    def verified(self) -> list[Outcome]:
        return self.with_status(Status.VERIFIED)

    @property
    def skipped(self) -> list[Outcome]:
        return self.with_status(Status.SKIPPED)

    @property
    def pending(self) -> list[Outcome]:
        return self.with_status(Status.PENDING)

    @property
    def failed(self) -> list[Outcome]:
        return self.with_status(Status.FAILED)

    @property
    def proposed(self) -> list[Outcome]:
        return self.with_status(Status.PROPOSED)

    def failure_findings(self) -> list[Finding]:
        return [o.failure_finding() for o in self.failed]

    def announcements(self) -> list[Finding]:
        """Every change made or failed, as findings for the notifiers."""
        return [o.applied_finding() for o in self.applied] + self.failure_findings()

    def notifications(self) -> list[dict[str, Any]]:
        """One payload per change made or failed: what the notifiers announce."""
        out = []
        for o in self.outcomes:
            if o.status in (Status.APPLIED, Status.FAILED):
                body = o.to_json()
                if o.status is Status.FAILED:
                    body["finding"] = o.failure_finding().model_dump(mode="json")
                out.append(body)
        return out

    def to_json(self) -> dict[str, Any]:
        counts = Counter(o.status.value for o in self.outcomes)
        return {
            "mode": self.default_mode.value,
            "max_changes": self.max_changes,
            "trigger": self.trigger,
            "changes_attempted": self.changes_attempted,
            "counts": {s.value: counts.get(s.value, 0) for s in Status},
            **{s.value: [o.to_json() for o in self.with_status(s)] for s in Status},
        }


def remediate(
    clients: Clients,
    findings: Iterable[Finding],
    snapshot: Snapshot,
    config: RemediationConfig,
    *,
    ctx: CheckContext | None = None,
    regions: Sequence[str] = (),
    recorder: Recorder | None = None,
    trigger: str = "cli",
) -> RemediationResult:
    """Plan every finding against `snapshot`, then apply the plans."""
    actions = plan_all(findings, snapshot, config)
    return Applier(clients, config, ctx, regions, recorder, trigger).run(actions)


class Applier:
    def __init__(
        self,
        clients: Clients,
        config: RemediationConfig,
        ctx: CheckContext | None = None,
        regions: Sequence[str] = (),
        recorder: Recorder | None = None,
        trigger: str = "cli",
    ) -> None:
        self.clients = clients
        self.config = config
        self.ctx = ctx or CheckContext()
        self.regions = tuple(regions)
        self.recorder = recorder
        self.trigger = trigger
        self._reader: Reader | None = None

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            self._reader = Reader(self.clients)
        return self._reader

    def run(self, actions: Iterable[Action]) -> RemediationResult:
        result = RemediationResult(self.config.default_mode, self.config.max_changes, self.trigger)
        for a in actions:
            result.outcomes.append(self._one(a, result))
        return result

    def _one(self, a: Action, result: RemediationResult) -> Outcome:
        if a.ignored or a.refused:
            return Outcome(Status.SKIPPED, a, a.reason)
        if not a.automatic or a.call is None:
            return Outcome(Status.PROPOSED, a, a.reason or "no automatic fix")
        if a.mode is Mode.NOTIFY:
            return Outcome(Status.PROPOSED, a, f"mode is notify for {a.finding.check_id}")
        if a.mode is Mode.DRY_RUN:
            return self._dry_run(a, a.call)
        if result.changes_attempted >= self.config.max_changes:
            return Outcome(
                Status.PENDING, a, f"change cap reached ({self.config.max_changes} per run)"
            )
        return self._fix(a, a.call, result)

    # -- dry-run ---------------------------------------------------------------------

    def _dry_run(self, a: Action, call: Call) -> Outcome:
        ok, message, code = dry_run(self.clients.client("ec2", a.region), call, a.undo)
        if ok:
            return Outcome(Status.VERIFIED, a, message, before=_d(a.before))
        return Outcome(Status.FAILED, a, message, error_code=code)

    # -- fix -------------------------------------------------------------------------

    def _fix(self, a: Action, call: Call, result: RemediationResult) -> Outcome:
        live, why = self._reread(a)
        if live is None:
            return Outcome(Status.SKIPPED, a, why)
        current = [
            f
            for f in REGISTRY[a.finding.check_id].run(live, self.ctx)
            if f.fingerprint == a.finding.fingerprint
        ]
        if not current:
            return Outcome(Status.SKIPPED, a, "already resolved: the live state no longer shows it")
        fresh = plan(current[0], live, self.config)
        if not fresh or not fresh[0].automatic or not fresh[0].same_change(a):
            now_ = fresh[0].reason if fresh and fresh[0].reason else "a different change"
            return Outcome(Status.SKIPPED, a, f"live state changed since the audit: now {now_}")
        before = state_touched(live, call)
        result.changes_attempted += 1
        ec2 = self.clients.client("ec2", a.region)
        status, message, code = Status.APPLIED, f"applied {call}", None
        try:
            getattr(ec2, call.method)(**call.parameters)
        except ClientError as e:
            code, msg = error_of(e)
            if code in ALREADY_DONE.get(call.operation, ()):
                message = f"already done ({code}): {call}"
            else:
                status, message = Status.FAILED, failure_text(call, code, msg)
        after = None
        if code not in DENIED:
            after_snap, _ = self._reread(a)
            after = state_touched(after_snap, call) if after_snap else None
            if status is Status.APPLIED and code and not _matches(call, after):
                status, message = Status.FAILED, f"{code}, but the live state differs: {after}"
        recorded, note = self._record(a, call, before, after, status, code)
        return Outcome(status, a, message + note, before, after, code, recorded)

    def _reread(self, a: Action) -> tuple[Snapshot | None, str]:
        scope = Scope(
            vpc_ids=frozenset({a.finding.vpc_id} if a.finding.vpc_id else ()),
            route_table_ids=frozenset({a.route_table_id} if a.route_table_id else ()),
            peering_ids=frozenset({a.peering_id} if a.peering_id else ()),
        )
        try:
            snap = self.reader.scoped(a.region, scope, self.regions or (a.region,))
        except ClientError as e:
            code, msg = error_of(e)
            return None, f"could not re-read the live state ({code}: {msg})"
        if snap.partial:
            return None, f"could not re-read the live state: {'; '.join(snap.warnings)}"
        return snap, ""

    def _record(
        self,
        a: Action,
        call: Call,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        status: Status,
        code: str | None,
    ) -> tuple[bool | None, str]:
        if self.recorder is None:
            return None, ""
        if status is Status.FAILED:
            result = f"failed: {code or 'live state differs'}"
        else:
            result = f"already done: {code}" if code else "applied"
        change = ChangeRecord(
            when=now(),
            trigger=self.trigger,
            fingerprint=a.finding.fingerprint,
            check_id=a.finding.check_id,
            account_id=a.finding.account_id,
            region=a.region,
            call=call.to_json(),
            undo=a.undo.to_json() if a.undo else None,
            before=before,
            after=after,
            result=result,
        )
        try:
            self.recorder.record(change)
        except Exception as e:  # a lost record must be visible, never crash a made change
            return False, f" (change record failed: {type(e).__name__}: {e})"
        return True, ""


def _matches(call: Call, after: dict[str, Any] | None) -> bool:
    """After an 'already done' answer: is the live state really what the call wanted?"""
    if after is None:
        return False
    if call.operation == "CreateRoute":
        route = after.get("route") or {}
        return bool(route.get("target") == call.parameters["VpcPeeringConnectionId"])
    if call.operation == "DeleteRoute":
        return after.get("route") is None
    return True


def dry_run(ec2: Any, call: Call, undo: Call | None) -> tuple[bool, str, str | None]:
    """Make `call` with DryRun=True: (would it succeed, what to report, error code)."""
    try:
        getattr(ec2, call.method)(**call.parameters, DryRun=True)
    except ClientError as e:
        code, msg = error_of(e)
        if code == DRY_RUN_OK:
            return True, f"would succeed: {call}", None
        return False, failure_text(call, code, msg), code
    # Real EC2 never succeeds with DryRun=True; an emulator that ignores it made the change.
    return (
        False,
        f"the endpoint ignored DryRun and made the change {call}; undo: {undo}",
        ("DryRunIgnored"),
    )


def error_of(e: ClientError) -> tuple[str, str]:
    err = e.response.get("Error", {})
    return str(err.get("Code", "")), str(err.get("Message", ""))


def failure_text(call: Call, code: str, msg: str) -> str:
    if code in DENIED:
        return f"not permitted: ec2:{call.operation} was denied ({code}){': ' + msg if msg else ''}"
    return f"{call.operation} failed ({code}): {msg}"


def _d(value: Any) -> dict[str, Any] | None:
    return dict(value) if value is not None else None
