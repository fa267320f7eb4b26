"""Actions: the EC2 changes PeerGuard intends, and what became of them. Pure.

Planners (remediation, acceptance) turn findings into `Action`s; the one executor
(`peerguard.aws.executor`) carries them out within the rails and returns `Outcome`s; the
functions here turn outcomes into the findings that announce them and the records that
say how to undo them. Actions come in groups: a group is all or nothing under the change
cap, and each action after the first runs only once the first was made (an acceptance and
the return routes that follow it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from peerguard.domain.catalogue import Entry, Kind, define, entry
from peerguard.domain.findings import Call, Finding, Remediation, Severity
from peerguard.domain.model import IGNORE_TAG, SecurityGroupRule, Snapshot
from peerguard.domain.scope import Scope


class Mode(StrEnum):
    NOTIFY = "notify"
    DRY_RUN = "dry-run"
    FIX = "fix"

    @classmethod
    def parse(cls, value: str) -> Mode:
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown mode {value!r} (expected one of: {names})") from None


@dataclass(frozen=True)
class Recheck:
    """The verdict of re-planning on freshly read state, right before acting."""

    go: bool
    reason: str = ""
    wait: bool = False  # not yet (a peering still provisioning): read again shortly

    @classmethod
    def ok(cls) -> Recheck:
        return cls(True)

    @classmethod
    def stop(cls, reason: str) -> Recheck:
        return cls(False, reason)

    @classmethod
    def later(cls, reason: str) -> Recheck:
        return cls(False, reason, wait=True)


RecheckFn = Callable[[Snapshot], Recheck]


def _always(_: Snapshot) -> Recheck:
    return Recheck.ok()


@dataclass(frozen=True)
class Action:
    """One EC2 call PeerGuard intends, with everything the executor's rails need.

    `subject` is what the action is about (the finding it fixes, or the request's finding).
    `automatic` is True only when the call passed every planning rail; otherwise `reason`
    says why it is left to a person (or, with `ignored` / `refused`, skipped).
    `recheck` re-plans on the live state read from `reread` right before the call.
    """

    call: Call
    subject: Finding
    mode: Mode
    region: str
    reread: Scope
    announce_as: str  # catalogue id of the finding a made change becomes
    fail_as: str  # catalogue id of the finding a failed change becomes
    undo: Call | None = None
    automatic: bool = False
    reason: str = ""
    why: str = ""  # why it is made, for the announcement
    ignored: bool = False
    refused: bool = False
    before: Mapping[str, Any] | None = None
    recheck: RecheckFn = field(default=_always, compare=False, repr=False)

    def same_change(self, other: Action) -> bool:
        return self.automatic == other.automatic and self.call.key() == other.call.key()

    @property
    def route_table_id(self) -> str | None:
        table = self.call.parameters.get("RouteTableId")
        return str(table) if table else None


Group = Sequence[Action]


class Status(StrEnum):
    APPLIED = "applied"
    VERIFIED = "verified"  # dry-run: the call would succeed
    SKIPPED = "skipped"
    PENDING = "pending"  # over the change cap, or not possible yet: next invocation
    FAILED = "failed"
    PROPOSED = "proposed"  # for a person to make (notify mode, or not automatic)


@dataclass(frozen=True)
class Outcome:
    status: Status
    action: Action
    message: str
    at: datetime | None = None  # when the call was made (applied or failed)
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    error_code: str | None = None
    recorded: bool | None = None  # None: nothing to record

    @property
    def finding(self) -> Finding:
        return self.action.subject

    @property
    def made(self) -> bool:
        """A call was made (or found already made): it is news and has a record."""
        return self.status in (Status.APPLIED, Status.FAILED) and self.at is not None

    def to_json(self) -> dict[str, Any]:
        a = self.action
        return {
            "status": self.status.value,
            "check_id": a.subject.check_id,
            "fingerprint": a.subject.fingerprint,
            "resource_id": a.subject.resource_id,
            "account_id": a.subject.account_id,
            "region": a.region,
            "mode": a.mode.value,
            "call": a.call.plain().model_dump(mode="json"),
            "cli": a.call.cli(),
            "undo": a.undo.plain().model_dump(mode="json") if a.undo else None,
            "message": self.message,
            "before": dict(self.before) if self.before is not None else None,
            "after": dict(self.after) if self.after is not None else None,
            "error_code": self.error_code,
            "recorded": self.recorded,
        }


@dataclass(frozen=True)
class Report:
    """Everything one executor run did, for tables, logs and JSON."""

    outcomes: tuple[Outcome, ...]
    mode: Mode
    max_changes: int
    changes_attempted: int

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

    def counts(self) -> dict[str, int]:
        return {s.value: len(self.with_status(s)) for s in Status}

    def announcements(self) -> list[Finding]:
        return announcements(self.outcomes)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "max_changes": self.max_changes,
            "changes_attempted": self.changes_attempted,
            "counts": self.counts(),
            "outcomes": [o.to_json() for o in self.outcomes],
        }


@dataclass(frozen=True)
class ChangeRecord:
    """Who changed what, before and after, and the call that undoes it."""

    id: str
    when: datetime
    trigger: str  # event id, "cli", "sweep" or "schedule"
    fingerprint: str  # of the finding acted on
    check_id: str  # the finding acted on
    change: str  # what the change is (the catalogue id that announces it)
    account_id: str
    region: str
    call: dict[str, Any]
    undo: dict[str, Any] | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    result: str  # applied | already done: <code> | failed: <code>
    # What tells people about it: kept with the record until delivered (an outbox), so a
    # change whose announcement failed is announced by the next run, not lost.
    announcement: dict[str, Any] | None = None

    @classmethod
    def of(cls, outcome: Outcome, id: str, trigger: str) -> ChangeRecord:
        a = outcome.action
        if outcome.status is Status.FAILED:
            result = f"failed: {outcome.error_code or 'live state differs'}"
        else:
            result = f"already done: {outcome.error_code}" if outcome.error_code else "applied"
        assert outcome.at is not None, "only a made call is recorded"
        return cls(
            id=id,
            when=outcome.at,
            trigger=trigger,
            fingerprint=a.subject.fingerprint,
            check_id=a.subject.check_id,
            change=a.announce_as,
            account_id=a.subject.account_id,
            region=a.region,
            call=a.call.plain().model_dump(mode="json"),
            undo=a.undo.plain().model_dump(mode="json") if a.undo else None,
            before=dict(outcome.before) if outcome.before is not None else None,
            after=dict(outcome.after) if outcome.after is not None else None,
            result=result,
            announcement=told.to_record() if (told := announcement(outcome)) else None,
        )


# -- what the live state says about a call ----------------------------------------------------

DNS_OPTION = "AllowDnsResolutionFromRemoteVpc"
DEST_KWARGS = ("DestinationCidrBlock", "DestinationIpv6CidrBlock")


def destination(call: Call) -> tuple[str, str] | None:
    """(parameter name, CIDR) of a route call's one destination."""
    kwargs = [k for k in DEST_KWARGS if k in call.parameters]
    if len(kwargs) != 1:
        return None
    return kwargs[0], str(call.parameters[kwargs[0]])


def _option_side(call: Call) -> str:
    return next((k for k in call.parameters if k != "VpcPeeringConnectionId"), "")


def _rule_named(snap: Snapshot, call: Call) -> SecurityGroupRule | None:
    """The one security group rule a revoke names, as read in `snap`."""
    p = call.parameters
    group = (snap.security_groups or {}).get(str(p.get("GroupId", "")))
    ids = p.get("SecurityGroupRuleIds") or []
    return group.rule(str(ids[0])) if group is not None and len(ids) == 1 else None


def state_touched(snap: Snapshot, call: Call) -> dict[str, Any]:
    """The state a call changes, as read in `snap` (for before/after records)."""
    p = call.parameters
    if call.action == "RevokeSecurityGroupIngress":
        rule = _rule_named(snap, call)
        return {"rule": rule.model_dump() if rule else None}
    if call.action == "CreateFlowLogs":
        logs = [fl for rid in p.get("ResourceIds") or [] for fl in snap.flow_logs_on(str(rid))]
        return {"flow_logs": [fl.model_dump() for fl in logs]}
    if call.action in ("CreateRoute", "DeleteRoute"):
        dest = destination(call)
        rt = snap.route_tables.get(str(p.get("RouteTableId", "")))
        route = (
            next((r for r in rt.routes if dest and r.destination == dest[1]), None) if rt else None
        )
        return {"route": route.model_dump() if route else None}
    pcx = snap.peerings.get(str(p.get("VpcPeeringConnectionId", "")))
    if call.action == "ModifyVpcPeeringConnectionOptions":
        key = _option_side(call)
        side = None
        if pcx is not None:
            side = pcx.requester if key.startswith("Requester") else pcx.accepter
        return {key: {DNS_OPTION: side.allow_dns_from_remote if side else None}}
    if call.action in ("AcceptVpcPeeringConnection", "RejectVpcPeeringConnection"):
        return {"status": pcx.status if pcx else None}
    return {}


def achieved(call: Call, snap: Snapshot) -> bool:
    """Is what `call` asks for in place in `snap`? (after an 'already done' answer)"""
    after = state_touched(snap, call)
    if call.action == "CreateRoute":
        route = after.get("route") or {}
        return bool(route.get("target") == call.parameters.get("VpcPeeringConnectionId"))
    if call.action == "DeleteRoute":
        return after.get("route") is None
    if call.action == "ModifyVpcPeeringConnectionOptions":
        key = _option_side(call)
        return after.get(key) == call.parameters.get(key)
    if call.action == "AcceptVpcPeeringConnection":
        return after.get("status") in ("active", "provisioning")
    if call.action == "RejectVpcPeeringConnection":
        return after.get("status") in ("rejected", None)
    if call.action == "RevokeSecurityGroupIngress":
        return after.get("rule") is None
    if call.action == "CreateFlowLogs":
        return all(
            any(fl.captures_all for fl in snap.flow_logs_on(str(rid)))
            for rid in call.parameters.get("ResourceIds") or []
        )
    return False


def ignored_resources(
    call: Call, snap: Snapshot, vpc_id: str | None = None, peering_id: str | None = None
) -> list[str]:
    """The resources `call` names (route table, security group, flow-log VPC), their VPC, and
    the peering concerned, that are tagged peerguard:ignore=true."""
    out = []
    p = call.parameters
    rt = snap.route_tables.get(str(p.get("RouteTableId", "")))
    group = (snap.security_groups or {}).get(str(p.get("GroupId", "")))
    named = [str(r) for r in p.get("ResourceIds") or [] if str(r).startswith("vpc-")]
    vpcs = (rt.vpc_id if rt else None, group.vpc_id if group else None, *named, vpc_id)
    for vid in dict.fromkeys(v for v in vpcs if v):
        vpc = snap.vpcs.get(vid)
        if vpc is not None and vpc.ignored:
            out.append(vpc.vpc_id)
    if rt is not None and rt.ignored:
        out.append(rt.route_table_id)
    if group is not None and group.ignored:
        out.append(group.group_id)
    for pcx_id in dict.fromkeys(x for x in (p.get("VpcPeeringConnectionId"), peering_id) if x):
        pcx = snap.peerings.get(str(pcx_id))
        if pcx is not None and pcx.ignored:
            out.append(pcx.pcx_id)
    return out


def ignored_text(resources: Sequence[str]) -> str:
    return f"ignored: {', '.join(resources)} tagged {IGNORE_TAG}=true"


# -- what an outcome announces ------------------------------------------------------------------


REMEDIATION_APPLIED = define(
    Entry(
        "remediation.applied",
        Kind.REMEDIATION,
        Severity.INFO,
        "PeerGuard fixed this automatically",
        risk="None: the change restores what the finding said was missing; it is announced "
        "once, with the call that undoes it.",
        fix="Nothing to do. To revert, make the undo call in the message.",
        resource_type="AWS::EC2::RouteTable",
    )
)
REMEDIATION_FAILED = define(
    Entry(
        "remediation.failed",
        Kind.REMEDIATION,
        Severity.HIGH,
        "Automatic fix failed",
        risk="The original problem remains, and PeerGuard could not repair it.",
        fix="Make the call in the message by hand, or grant the permission it names "
        "(the stack deploys the fix permissions only with Mode=fix).",
        resource_type="AWS::EC2::RouteTable",
    )
)


def _resource_of(call: Call, subject: Finding) -> tuple[str, str]:
    p = call.parameters
    if "RouteTableId" in p:
        return str(p["RouteTableId"]), "AWS::EC2::RouteTable"
    if "GroupId" in p:
        return str(p["GroupId"]), "AWS::EC2::SecurityGroup"
    if "VpcPeeringConnectionId" in p and subject.resource_type == "AWS::EC2::VPCPeeringConnection":
        return str(p["VpcPeeringConnectionId"]), "AWS::EC2::VPCPeeringConnection"
    return subject.resource_id, subject.resource_type


def announcement(outcome: Outcome) -> Finding | None:
    """The finding that tells people about a made or failed call (None for the rest).

    A call EC2 answered with "already done" changed nothing: whoever made the change (a
    concurrent run, a person) is the one to announce it, so it is recorded, not announced.
    """
    if not outcome.made or outcome.at is None:
        return None
    if outcome.status is Status.APPLIED and outcome.error_code:
        return None
    a, f = outcome.action, outcome.action.subject
    resource_id, resource_type = _resource_of(a.call, f)
    common: dict[str, Any] = {
        "resource_id": resource_id,
        "resource_type": resource_type,
        "account_id": f.account_id,
        "region": a.region,
        "vpc_id": f.vpc_id,
        "peering_connection_id": f.peering_connection_id,
    }
    if outcome.status is Status.APPLIED:
        undo = f" To undo: {a.undo.cli()}." if a.undo else ""
        why = f" Why: {a.why.rstrip('.')}." if a.why else ""
        return entry(a.announce_as).finding(
            **common,
            detail=f"PeerGuard made {a.call.cli()} ({outcome.message}).{why}{undo}",
            # One announcement per change: the same change made again is news again.
            key=f"{f.fingerprint}|{a.call.key()}|{outcome.at.isoformat()}",
        )
    return entry(a.fail_as).finding(
        **common,
        detail=f"PeerGuard could not make {a.call.cli()}: {outcome.message}. Make the call by "
        f"hand, or grant the permission it names. It was to be made because {a.why.rstrip('.')}.",
        remediation=Remediation(
            action=a.call.action,
            parameters=dict(a.call.parameters),
            automatic=False,
            reason=f"automatic call failed: {outcome.error_code or outcome.message}",
        ),
        key=f"{f.fingerprint}|{a.call.key()}",  # standing: the same failure is one finding
    )


def announcements(outcomes: Sequence[Outcome]) -> list[Finding]:
    return [f for f in (announcement(o) for o in outcomes) if f is not None]
