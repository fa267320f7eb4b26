"""The acceptance use case: carry out `peerguard.acceptance` decisions against EC2.

`on_acceptance(rt, event)` runs on the 5-minute schedule and on CreateVpcPeeringConnection
events (once per EventBridge event id). It lists the requests waiting for this account in
the home region and PEERGUARD_PEER_REGIONS, reads the accepter VPCs (their peers and
route tables), decides per request, and then, within the change cap:

- accept (PEERGUARD_AUTO_ACCEPT): in the accepter's region, after re-reading that the
  request is still pending; in dry-run mode the call is made with DryRun=True and reported.
  Only requests whose accepter VPC is in the home region are acted on (the stack and its
  IAM grants are per region); those waiting in a peer region are alerted;
- add return routes (PEERGUARD_ACCEPT_ROUTES) in the accepter tables tagged
  `peerguard:peer-routes=true`, re-planned on freshly read tables, and allow DNS resolution
  from the requester (PEERGUARD_ACCEPT_DNS), once the peering is active;
- reject requests not on the allowlist once they waited PEERGUARD_REJECT_AFTER_HOURS.

An acceptance is all or nothing under the cap: it goes ahead only when the accept and its
routes and DNS change all fit, otherwise it waits for the next run (still pending). Every
change is recorded with its undo and announced like any fix; a denied or failed call becomes
an `acceptance.failed` finding naming the missing permission, never a crash.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from peerguard.acceptance import PlannedRoute, Verdict, decide, return_routes
from peerguard.aws import parse
from peerguard.aws.snapshot import DENIED, Reader, Scope
from peerguard.checks import REGISTRY, Allowed, CheckContext, run_checks
from peerguard.checks.peering import describe
from peerguard.events import Change, parse_event
from peerguard.findings import Finding, Remediation, Severity
from peerguard.model import ACTIVE, IGNORE_TAG, PENDING_ACCEPTANCE, PeeringConnection, Snapshot
from peerguard.notify import Coverage
from peerguard.observability import MetricUnit, logger, metrics
from peerguard.remediation import Call, ChangeRecord, DynamoRecorder, MemoryRecorder, Recorder
from peerguard.remediation.apply import dry_run, error_of, failure_text
from peerguard.remediation.record import now
from peerguard.runtime import Runtime
from peerguard.service import announce, ignored, once, parse_or_report
from peerguard.settings import parse_allowlist

# The catalogue checks that judge a pending request (announced alongside the changes).
CHECKS = ("peering.pending_acceptance", "peering.not_allowlisted", "peering.cidr_overlap")

# Findings of the acceptance function. One-off (a change made): accepted, route_added,
# dns_enabled, rejected. Standing (true while the request waits): the rest.
ACCEPTED = "acceptance.accepted"
ROUTE_ADDED = "acceptance.route_added"
DNS_ENABLED = "acceptance.dns_enabled"
REJECTED = "acceptance.rejected"
REFUSED = "acceptance.refused"
FAILED = "acceptance.failed"
DRY_RUN = "acceptance.dry_run"
DEFERRED = "acceptance.deferred"
ALLOWLIST_INVALID = "acceptance.allowlist_invalid"
STANDING = frozenset({REFUSED, FAILED, DRY_RUN, DEFERRED, ALLOWLIST_INVALID})

ALREADY_DONE = {"CreateRoute": "RouteAlreadyExists"}
# After an accept, a cross-account or cross-region peering is `provisioning` for a moment.
ACTIVE_WAITS = (1.0, 2.0, 4.0)


# -- entry point ------------------------------------------------------------------------


def on_acceptance(rt: Runtime, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """A schedule tick or a CreateVpcPeeringConnection event. Never raises for a bad event."""
    trigger = parse_or_report(parse_event, event)
    if isinstance(trigger, dict):
        return trigger
    pcx_ids: frozenset[str] | None = None
    if isinstance(trigger, Change):
        if trigger.event_name != "CreateVpcPeeringConnection":
            return ignored(f"{trigger.event_name} is not a request")
        if trigger.failed:
            return ignored(f"the request failed ({trigger.error_code})")
        if not trigger.peering_ids:
            return ignored("the event names no peering connection")
        pcx_ids = trigger.peering_ids
        logger.append_keys(event_id=trigger.event_id, event_name=trigger.event_name)
    event_id = str(event["id"])
    work = lambda _: accept_pending(rt, pcx_ids=pcx_ids, trigger=event_id)  # noqa: E731
    return once(rt, event, work, context)


@dataclass
class AcceptanceRun:
    """What one run saw, decided, did and will announce."""

    trigger: str
    pending: list[PeeringConnection]
    verdicts: list[Verdict]
    steps: list[Step]
    findings: list[Finding]
    coverage: Coverage
    changes: int
    warnings: list[str]
    allowlist_error: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "status": "done",
            "trigger": self.trigger,
            "pending": len(self.pending),
            "allowlist_error": self.allowlist_error or None,
            "verdicts": {v.pcx_id: {"action": v.action, "reason": v.reason} for v in self.verdicts},
            "changes": self.changes,
            "steps": [st.to_json() for st in self.steps],
            "findings": dict(Counter(f.check_id for f in self.findings)),
            "warnings": self.warnings,
        }


def accept_pending(
    rt: Runtime, *, pcx_ids: frozenset[str] | None = None, trigger: str = "schedule"
) -> dict[str, Any]:
    """Judge and act on the requests waiting for this account, then announce it all."""
    run = run_acceptance(rt, pcx_ids=pcx_ids, trigger=trigger)
    summary = {**run.summary(), "notify": announce(rt, run.findings, run.coverage)}
    logger.info("acceptance finished", extra={"summary": summary})
    return summary


def run_acceptance(
    rt: Runtime,
    *,
    pcx_ids: frozenset[str] | None = None,
    trigger: str = "schedule",
    recorder: Recorder | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> AcceptanceRun:
    """Read, decide and act (only on `pcx_ids`, if given); nothing is announced here."""
    s = rt.settings
    account = rt.clients.account_id()
    allow = load_allowlist(rt)
    if allow.error:
        logger.error(allow.error)
        metrics.add_metric(name="AllowlistInvalid", unit=MetricUnit.Count, value=1)
    ctx = CheckContext(allowlist=allow.entries)
    pending, regions, warnings = list_pending(rt, account, pcx_ids)
    for w in warnings:
        logger.warning(w)
    snap = read_accepters(rt, account, pending)
    hours = s.reject_unlisted_after_hours
    limit = timedelta(hours=hours) if hours else None
    verdicts = [
        home_only(
            decide(snap, snap.peerings.get(p.pcx_id, p), ctx, reject_unlisted_after=limit),
            rt.region,
        )
        for p in pending
    ]
    if recorder is None:
        recorder = DynamoRecorder(rt.clients, s.table_name) if s.table_name else MemoryRecorder()
    acceptor = Acceptor(rt, snap, trigger, recorder, sleep)
    for v in verdicts:
        acceptor.carry_out(v)
    findings = _check_findings(acceptor.after(), ctx, {p.pcx_id for p in pending})
    findings += acceptor.findings
    if allow.error:
        findings.append(allowlist_finding(account, rt.region, allow))
    # Only what this run looked at can be resolved by it: the requests it listed (an
    # accepted one's pending finding goes away) and the allowlist parameter.
    resources = {p.pcx_id for p in pending} | ({allow.source} if s.allowlist_parameter else set())
    coverage = Coverage(
        account_id=account,
        regions=frozenset(regions),
        check_ids=frozenset(CHECKS) | STANDING,
        resource_ids=frozenset(resources),
    )
    for name, n in acceptor.counts().items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=n)
    return AcceptanceRun(
        trigger=trigger,
        pending=pending,
        verdicts=verdicts,
        steps=acceptor.steps,
        findings=findings,
        coverage=coverage,
        changes=acceptor.changes,
        warnings=warnings + list(snap.warnings),
        allowlist_error=allow.error,
    )


def home_only(v: Verdict, home: str) -> Verdict:
    """Act only in the home region: the stack is deployed per region and its permissions
    name its own region. A request waiting in a peer region is alerted from here and acted
    on by the stack of that region."""
    if v.region == home or v.action not in ("accept", "reject"):
        return v
    reason = f"{v.reason}; its accepter VPC is in {v.region}: the PeerGuard stack there acts on it"
    return Verdict(v.pcx_id, "alert", reason, v.region)


# -- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowlist:
    entries: tuple[Allowed, ...] | None
    source: str  # the SSM parameter name, or PEERGUARD_ALLOWLIST
    error: str = ""  # set when the configured allowlist could not be used


def load_allowlist(rt: Runtime) -> Allowlist:
    """The stack's allowlist, or the JSON in the SSM parameter. A bad parameter is an error
    line and no allowlist at all: never accept on a broken allowlist."""
    name = rt.settings.allowlist_parameter
    if not name:
        return Allowlist(rt.settings.allowlist, "PEERGUARD_ALLOWLIST")
    try:
        resp = rt.clients.client("ssm").get_parameter(Name=name, WithDecryption=True)
        raw = str(resp["Parameter"]["Value"])
    except ClientError as e:
        code, msg = error_of(e)
        why = "missing permission ssm:GetParameter" if code in DENIED else msg
        return Allowlist(
            None, name, f"allowlist parameter {name} could not be read ({code}: {why})"
        )
    try:
        return Allowlist(parse_allowlist(raw), name)
    except ValueError as e:
        return Allowlist(None, name, f"allowlist parameter {name} is invalid: {e}")


def list_pending(
    rt: Runtime, account: str, pcx_ids: frozenset[str] | None
) -> tuple[list[PeeringConnection], list[str], list[str]]:
    """Requests pending acceptance by `account`, each seen from its accepter's region.

    Returns (requests, regions listed in full, warnings). Filters are applied again in code.
    """
    found: dict[str, PeeringConnection] = {}
    regions, warnings = [], []
    filters = [
        {"Name": "status-code", "Values": [PENDING_ACCEPTANCE]},
        {"Name": "accepter-vpc-info.owner-id", "Values": [account]},
    ]
    if pcx_ids:
        filters.append({"Name": "vpc-peering-connection-id", "Values": sorted(pcx_ids)})
    for region in rt.regions:
        pages = rt.clients.client("ec2", region).get_paginator("describe_vpc_peering_connections")
        try:
            items = [
                i
                for page in pages.paginate(Filters=filters)
                for i in page.get("VpcPeeringConnections", [])
            ]
        except ClientError as e:
            code, _ = error_of(e)
            if code not in DENIED:
                raise
            warnings.append(
                f"missing permission ec2:DescribeVpcPeeringConnections in {region} ({code}): "
                "requests there not checked"
            )
            continue
        regions.append(region)
        for item in items:
            p = parse.peering(item, region)
            if (
                p.status == PENDING_ACCEPTANCE
                and p.accepter.owner_id == account
                and p.accepter.region == region
                and (pcx_ids is None or p.pcx_id in pcx_ids)
            ):
                found[p.pcx_id] = p
    return sorted(found.values(), key=lambda p: p.pcx_id), regions, warnings


def read_accepters(rt: Runtime, account: str, pending: Sequence[PeeringConnection]) -> Snapshot:
    """The accepter VPCs with their route tables and every peering they already have."""
    reader = Reader(rt.clients, account)
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
        return Snapshot(account_id=account, taken_at=now(), readable=frozenset())
    return snap


def _check_findings(snap: Snapshot, ctx: CheckContext, pcx_ids: set[str]) -> list[Finding]:
    checks = [REGISTRY[c] for c in CHECKS]
    return [f for f in run_checks(snap, ctx, checks) if f.peering_connection_id in pcx_ids]


# -- acting -------------------------------------------------------------------------------


@dataclass
class Step:
    """One call PeerGuard made, verified, proposed or held back, and how it went."""

    pcx_id: str
    call: Call
    region: str
    status: str  # applied | already done | verified | proposed | failed | deferred | skipped
    message: str
    undo: Call | None = None
    error_code: str | None = None
    recorded: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "pcx_id": self.pcx_id,
            "status": self.status,
            "region": self.region,
            "call": self.call.to_json(),
            "cli": self.call.cli(),
            "undo": self.undo.to_json() if self.undo else None,
            "message": self.message,
            "error_code": self.error_code,
            "recorded": self.recorded,
        }


@dataclass
class Acceptor:
    rt: Runtime
    snap: Snapshot
    trigger: str
    recorder: Recorder
    sleep: Callable[[float], None] = time.sleep
    changes: int = 0
    steps: list[Step] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)

    @property
    def dry_run(self) -> bool:
        return self.rt.settings.mode == "dry-run"

    def after(self) -> Snapshot:
        """The snapshot as it is now: what was accepted is active, what was rejected is gone."""
        peerings = dict(self.snap.peerings)
        for pid in self.accepted | self.rejected:
            status = ACTIVE if pid in self.accepted else "rejected"
            peerings[pid] = peerings[pid].model_copy(update={"status": status})
        return self.snap.model_copy(update={"peerings": peerings})

    def counts(self) -> dict[str, int]:
        return {
            "PeeringsAccepted": len(self.accepted),
            "PeeringsRejected": len(self.rejected),
            "AcceptanceFailed": sum(1 for s in self.steps if s.status == "failed"),
            "AcceptanceDeferred": sum(1 for s in self.steps if s.status == "deferred"),
        }

    def carry_out(self, v: Verdict) -> None:
        pcx = self.snap.peerings.get(v.pcx_id)
        if pcx is None:
            return
        if v.action == "refuse":
            self.findings.append(refused_finding(pcx, v))
        elif v.action == "accept" and self.rt.settings.auto_accept:
            self._accept(pcx, v)
        elif v.action == "reject":
            self._reject(pcx, v)
        elif v.action != "skip":
            logger.info("left for a person", extra={"pcx": v.pcx_id, "reason": v.reason})

    # -- accept ---------------------------------------------------------------------

    def _accept(self, pcx: PeeringConnection, v: Verdict) -> None:
        s = self.rt.settings
        accept = Call("AcceptVpcPeeringConnection", {"VpcPeeringConnectionId": pcx.pcx_id})
        undo = Call("DeleteVpcPeeringConnection", {"VpcPeeringConnectionId": pcx.pcx_id})
        routes = return_routes(self.snap, pcx) if s.accept_routes else []
        follow = [route_call(r) for r in routes] + (
            [dns_call(pcx.pcx_id, True)] if s.accept_dns else []
        )
        if self.dry_run:
            step = self._dry(pcx, accept, v.region, undo)
            proposed = [
                Step(pcx.pcx_id, c, v.region, "proposed", "after the acceptance") for c in follow
            ]
            self.steps += proposed
            self.findings.append(dry_run_finding(pcx, v, step, proposed))
            return
        needed = 1 + len(follow)
        if self.changes + needed > s.max_changes:
            msg = (
                f"needs {needed} changes (accept, {len(routes)} routes"
                f"{', DNS' if s.accept_dns else ''}); {s.max_changes - self.changes} of the "
                f"cap of {s.max_changes} per run left: waits for the next run"
            )
            self.steps.append(Step(pcx.pcx_id, accept, v.region, "deferred", msg, undo))
            self.findings.append(deferred_finding(pcx, msg))
            return
        accepted = self._while_pending(pcx, accept, v.region, undo, "accepted")
        if accepted is None:
            return
        self.accepted.add(pcx.pcx_id)
        self.findings.append(change_finding(ACCEPTED, pcx, accepted, v.reason))
        if not follow:
            return
        active = self._wait_active(pcx.pcx_id, v.region)
        if active is None:
            note = "the peering is not active yet: return routes and DNS were not added"
            self.findings.append(deferred_finding(pcx, note))
            return
        if s.accept_routes:
            self._routes(pcx, v.region)
        if s.accept_dns:
            call, back = dns_call(pcx.pcx_id, True), dns_call(pcx.pcx_id, False)
            before = {"AllowDnsResolutionFromRemoteVpc": active.accepter.allow_dns_from_remote}
            dns = self._call(pcx, call, v.region, back, before=before)
            self._announce(pcx, dns, DNS_ENABLED, pcx.pcx_id, "AWS::EC2::VPCPeeringConnection")

    def _routes(self, pcx: PeeringConnection, region: str) -> None:
        """Re-plan on freshly read tables: a route added meanwhile is not added twice."""
        scope = Scope(vpc_ids=frozenset({pcx.accepter.vpc_id}), peering_ids=frozenset({pcx.pcx_id}))
        try:
            fresh = Reader(self.rt.clients, self.snap.account_id).scoped(
                region, scope, self.rt.regions
            )
        except ClientError as e:
            code, msg = error_of(e)
            fresh = None
            logger.warning("could not re-read the route tables", extra={"error": f"{code}: {msg}"})
        if fresh is None or (region, "route_tables") in fresh.partial:
            why = "; ".join(fresh.warnings) if fresh else "re-read failed"
            self.findings.append(deferred_finding(pcx, f"return routes not added: {why}"))
            return
        live = fresh.peerings.get(pcx.pcx_id, pcx)
        for planned in return_routes(fresh, live):
            call = route_call(planned)
            undo = Call(
                "DeleteRoute",
                {k: v for k, v in planned.parameters.items() if k != "VpcPeeringConnectionId"},
            )
            if self.changes >= self.rt.settings.max_changes:
                msg = f"change cap of {self.rt.settings.max_changes} per run reached"
                self.steps.append(Step(pcx.pcx_id, call, region, "deferred", msg, undo))
                self.findings.append(deferred_finding(pcx, f"return route {call} not added: {msg}"))
                continue
            step = self._call(pcx, call, region, undo, before={"route": None})
            self._announce(pcx, step, ROUTE_ADDED, planned.route_table_id, "AWS::EC2::RouteTable")

    # -- reject ---------------------------------------------------------------------

    def _reject(self, pcx: PeeringConnection, v: Verdict) -> None:
        reject = Call("RejectVpcPeeringConnection", {"VpcPeeringConnectionId": pcx.pcx_id})
        if self.dry_run:
            step = self._dry(pcx, reject, v.region, None)
            self.findings.append(dry_run_finding(pcx, v, step, []))
            return
        if self.changes >= self.rt.settings.max_changes:
            msg = f"change cap of {self.rt.settings.max_changes} per run reached"
            self.steps.append(Step(pcx.pcx_id, reject, v.region, "deferred", msg))
            self.findings.append(deferred_finding(pcx, f"not rejected yet: {msg}"))
            return
        rejected = self._while_pending(pcx, reject, v.region, None, "rejected")
        if rejected is None:
            return
        self.rejected.add(pcx.pcx_id)
        self.findings.append(change_finding(REJECTED, pcx, rejected, v.reason))

    # -- calls ----------------------------------------------------------------------

    def _while_pending(
        self, pcx: PeeringConnection, call: Call, region: str, undo: Call | None, verb: str
    ) -> Step | None:
        """Re-read the request and make `call` only if it still waits and is not ignored.
        None when nothing was done (skipped, or failed and reported as a finding)."""
        live, why = self._reread(pcx.pcx_id, region)
        if live is None or live.status != PENDING_ACCEPTANCE or live.ignored:
            why = why or _changed(live)
            self.steps.append(Step(pcx.pcx_id, call, region, "skipped", f"not {verb}: {why}"))
            return None
        step = self._call(pcx, call, region, undo, before={"status": live.status})
        if step.status == "failed":
            kind = "AWS::EC2::VPCPeeringConnection"
            self.findings.append(failed_finding(pcx, step, pcx.pcx_id, kind))
            return None
        return step

    def _announce(
        self, pcx: PeeringConnection, step: Step, check_id: str, resource_id: str, kind: str
    ) -> None:
        if step.status == "failed":
            self.findings.append(failed_finding(pcx, step, resource_id, kind))
        else:
            self.findings.append(
                change_finding(check_id, pcx, step, "", resource_id=resource_id, kind=kind)
            )

    def _dry(self, pcx: PeeringConnection, call: Call, region: str, undo: Call | None) -> Step:
        ok, message, code = dry_run(self.rt.clients.client("ec2", region), call, undo)
        step = Step(pcx.pcx_id, call, region, "verified" if ok else "failed", message, undo, code)
        self.steps.append(step)
        return step

    def _call(
        self,
        pcx: PeeringConnection,
        call: Call,
        region: str,
        undo: Call | None,
        before: dict[str, Any] | None,
    ) -> Step:
        self.changes += 1
        ec2 = self.rt.clients.client("ec2", region)
        status, message, code = "applied", f"applied {call}", None
        try:
            getattr(ec2, call.method)(**call.parameters)
        except ClientError as e:
            code, msg = error_of(e)
            if code == ALREADY_DONE.get(call.operation):
                status, message = "already done", f"already done ({code}): {call}"
            elif (
                code == "InvalidStateTransition" and call.operation == "AcceptVpcPeeringConnection"
            ):
                live, _ = self._reread(pcx.pcx_id, region)  # someone accepted it meanwhile?
                if live is not None and live.status in (ACTIVE, "provisioning"):
                    status, message = "already done", f"already accepted (now {live.status})"
                else:
                    status, message = "failed", failure_text(call, code, msg)
            else:
                status, message = "failed", failure_text(call, code, msg)
        step = Step(pcx.pcx_id, call, region, status, message, undo, code)
        after = None if status == "failed" else _after(call)
        step.recorded = self._record(pcx, step, before, after)
        self.steps.append(step)
        return step

    def _record(
        self,
        pcx: PeeringConnection,
        step: Step,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> bool:
        result = (
            "applied"
            if step.status == "applied"
            else (
                f"already done: {step.error_code}"
                if step.status == "already done"
                else f"failed: {step.error_code}"
            )
        )
        change = ChangeRecord(
            when=now(),
            trigger=self.trigger,
            fingerprint=pcx.pcx_id,
            check_id=_check_for(step.call),
            account_id=self.snap.account_id,
            region=step.region,
            call=step.call.to_json(),
            undo=step.undo.to_json() if step.undo else None,
            before=before,
            after=after,
            result=result,
        )
        try:
            self.recorder.record(change)
        except Exception as e:  # a lost record must be visible, never undo a made change
            step.message += f" (change record failed: {type(e).__name__}: {e})"
            return False
        return True

    def _reread(self, pcx_id: str, region: str) -> tuple[PeeringConnection | None, str]:
        ec2 = self.rt.clients.client("ec2", region)
        try:
            items = ec2.describe_vpc_peering_connections(
                Filters=[{"Name": "vpc-peering-connection-id", "Values": [pcx_id]}]
            )["VpcPeeringConnections"]
        except ClientError as e:
            code, msg = error_of(e)
            return None, f"could not re-read {pcx_id} ({code}: {msg})"
        for item in items:
            if item.get("VpcPeeringConnectionId") == pcx_id:
                return parse.peering(item, region), ""
        return None, f"{pcx_id} no longer exists"

    def _wait_active(self, pcx_id: str, region: str) -> PeeringConnection | None:
        for pause in (0.0, *ACTIVE_WAITS):
            if pause:
                self.sleep(pause)
            live, _ = self._reread(pcx_id, region)
            if live is not None and live.status == ACTIVE:
                return live
        return None


# -- calls and findings (pure) --------------------------------------------------------------


def route_call(r: PlannedRoute) -> Call:
    return Call("CreateRoute", r.parameters)


def dns_call(pcx_id: str, allow: bool) -> Call:
    return Call(
        "ModifyVpcPeeringConnectionOptions",
        {
            "VpcPeeringConnectionId": pcx_id,
            "AccepterPeeringConnectionOptions": {"AllowDnsResolutionFromRemoteVpc": allow},
        },
    )


_CHECK_FOR = {
    "AcceptVpcPeeringConnection": ACCEPTED,
    "RejectVpcPeeringConnection": REJECTED,
    "CreateRoute": ROUTE_ADDED,
    "ModifyVpcPeeringConnectionOptions": DNS_ENABLED,
}
# Every change the acceptance function makes (template.yaml grants exactly these).
IAM_ACTIONS = tuple(f"ec2:{op}" for op in _CHECK_FOR)


def _check_for(call: Call) -> str:
    return _CHECK_FOR[call.operation]


def _after(call: Call) -> dict[str, Any]:
    if call.operation == "AcceptVpcPeeringConnection":
        return {"status": "accepted"}
    if call.operation == "RejectVpcPeeringConnection":
        return {"status": "rejected"}
    if call.operation == "CreateRoute":
        return {"route": {k: v for k, v in call.parameters.items() if k != "RouteTableId"}}
    return dict(call.parameters["AccepterPeeringConnectionOptions"])


def _finding(
    check_id: str,
    severity: Severity,
    pcx: PeeringConnection,
    title: str,
    detail: str,
    *,
    resource_id: str | None = None,
    kind: str = "AWS::EC2::VPCPeeringConnection",
    remediation: Remediation | None = None,
    key: str = "",
) -> Finding:
    a = pcx.accepter
    return Finding(
        check_id=check_id,
        severity=severity,
        resource_type=kind,
        resource_id=resource_id or pcx.pcx_id,
        account_id=a.owner_id,
        region=a.region,
        vpc_id=a.vpc_id,
        peering_connection_id=pcx.pcx_id,
        title=title,
        detail=detail,
        remediation=remediation,
        key=key,
    )


_TITLES = {
    ACCEPTED: "PeerGuard accepted a peering request",
    ROUTE_ADDED: "PeerGuard added a return route for an accepted peering",
    DNS_ENABLED: "PeerGuard allowed DNS resolution from an accepted peer",
    REJECTED: "PeerGuard rejected a peering request from an account not on the allowlist",
}


def change_finding(
    check_id: str,
    pcx: PeeringConnection,
    step: Step,
    reason: str,
    *,
    resource_id: str | None = None,
    kind: str = "AWS::EC2::VPCPeeringConnection",
) -> Finding:
    """A change made: announced once (its key is unique), with the call that undoes it."""
    undo = f" To undo: {step.undo.cli()}." if step.undo else ""
    why = f" Why: {reason}." if reason else ""
    return _finding(
        check_id,
        Severity.MEDIUM if check_id == REJECTED else Severity.INFO,
        pcx,
        _TITLES[check_id],
        f"{describe(pcx)}: PeerGuard made {step.call.cli()} ({step.message}).{why}{undo}",
        resource_id=resource_id,
        kind=kind,
        key=f"{step.call.key()}|{now().isoformat()}",
    )


def failed_finding(pcx: PeeringConnection, step: Step, resource_id: str, kind: str) -> Finding:
    """A call that failed: standing (the same failure is not re-announced within the window)."""
    return _finding(
        FAILED,
        Severity.HIGH,
        pcx,
        "PeerGuard could not complete an acceptance change",
        f"{describe(pcx)}: {step.message}. Make the call by hand, or grant the permission "
        f"(the stack parameters AutoAcceptPeerings, AcceptEnablesDns and RejectUnlistedAfterHours "
        f"deploy exactly these): {step.call.cli()}",
        resource_id=resource_id,
        kind=kind,
        remediation=Remediation(
            action=step.call.operation,
            parameters=dict(step.call.parameters),
            automatic=False,
            reason=f"automatic call failed: {step.error_code or step.message}",
        ),
        key=step.call.key(),
    )


def refused_finding(pcx: PeeringConnection, v: Verdict) -> Finding:
    return _finding(
        REFUSED,
        Severity.MEDIUM,
        pcx,
        "Peering request from an allowlisted account not accepted",
        f"{describe(pcx)} was not accepted automatically: {v.reason}",
        remediation=Remediation(
            action="RejectVpcPeeringConnection",
            parameters={"VpcPeeringConnectionId": pcx.pcx_id},
            automatic=False,
            reason="refused requests are left for a person to reject or re-plan",
        ),
    )


def deferred_finding(pcx: PeeringConnection, why: str) -> Finding:
    return _finding(
        DEFERRED, Severity.LOW, pcx, "Acceptance step held back", f"{describe(pcx)}: {why}."
    )


def dry_run_finding(
    pcx: PeeringConnection, v: Verdict, step: Step, follow: Iterable[Step]
) -> Finding:
    lines = [f"{step.call.cli()} ({step.status}: {step.message})"]
    lines += [f"{s.call.cli()} (after the acceptance)" for s in follow]
    calls = "; ".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
    severity = Severity.HIGH if step.status == "failed" else Severity.INFO
    return _finding(
        DRY_RUN,
        severity,
        pcx,
        f"Dry run: PeerGuard would {v.action} this peering request",
        f"{describe(pcx)}: {v.reason}. Mode is dry-run, nothing was changed. The calls: {calls}",
        remediation=Remediation(
            action=step.call.operation,
            parameters=dict(step.call.parameters),
            automatic=False,
            reason="dry-run mode",
        ),
        key=step.call.operation,
    )


def allowlist_finding(account: str, region: str, allow: Allowlist) -> Finding:
    return Finding(
        check_id=ALLOWLIST_INVALID,
        severity=Severity.HIGH,
        resource_type="AWS::SSM::Parameter",
        resource_id=allow.source,
        account_id=account,
        region=region,
        title="Peering allowlist cannot be used: nothing is accepted automatically",
        detail=f"{allow.error}. Pending peering requests are alerted, never accepted or "
        "rejected, until the allowlist is fixed.",
        key=allow.error,
    )


def _changed(live: PeeringConnection | None) -> str:
    """Why a request re-read right before acting is no longer one to act on."""
    if live is None:
        return "it could not be re-read"
    if live.ignored:
        return f"it is now tagged {IGNORE_TAG}=true"
    return f"it is no longer pending (status {live.status})"
