"""The one executor: every EC2 change PeerGuard makes goes through here, inside the rails.

- notify: nothing is called; the planned call is reported (proposed).
- dry-run: the call is made with DryRun=True, never without it; DryRunOperation means
  "would succeed", UnauthorizedOperation names the missing permission.
- fix: at most `max_changes` calls per run, a group all or nothing. Before each call the
  live state is re-read (scoped to what the call touches), the ignore tag and the
  never-widen rail are checked on it, and the planner's `recheck` re-plans on it: the call
  goes ahead only for the same change. Error codes meaning "already in place" count as
  done once the live state confirms it. Every call made is recorded with before/after and
  its undo; a record that cannot be written is reported, never hidden.
- never in another account: an action whose finding belongs to another account than the
  executor's own (a far side read through the member role) is refused before anything is
  read or called (in dry-run too, whenever the own account is known).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from peerguard import clock
from peerguard.aws.clients import Clients
from peerguard.aws.members import MemberAccess
from peerguard.aws.reader import DENIED, Reader
from peerguard.domain.findings import Call
from peerguard.domain.model import Snapshot
from peerguard.domain.plans.actions import (
    Action,
    ChangeRecord,
    Group,
    Mode,
    Outcome,
    Report,
    Status,
    achieved,
    ignored_resources,
    ignored_text,
    state_touched,
)
from peerguard.domain.plans.rails import failure_in_response, refusal, undo_from_response
from peerguard.state.changes import Recorder

# Error codes meaning "the change is already in place" (confirmed on the live state after).
ALREADY_DONE = {
    "CreateRoute": frozenset({"RouteAlreadyExists"}),
    "DeleteRoute": frozenset({"InvalidRoute.NotFound"}),
    # EC2 answers a rule id that is gone with InvalidSecurityGroupRuleId.NotFound, moto with
    # InvalidPermission.NotFound; either counts once the live state shows the rule absent.
    "RevokeSecurityGroupIngress": frozenset(
        {"InvalidPermission.NotFound", "InvalidSecurityGroupRuleId.NotFound"}
    ),
    "CreateFlowLogs": frozenset({"FlowLogAlreadyExists"}),
    "AcceptVpcPeeringConnection": frozenset({"InvalidStateTransition"}),
}
DRY_RUN_OK = "DryRunOperation"
# Re-reads while a planner says "not yet" (a peering provisioning after an accept).
WAITS = (1.0, 2.0, 4.0)
UNREADABLE = "could not re-read the live state"
# A group is started only with this much of the invocation left: its re-reads, calls and
# records must all be made before Lambda stops it, never half of them.
TIME_FOR_A_GROUP = 20.0


def error_of(e: ClientError) -> tuple[str, str]:
    err = e.response.get("Error", {})
    return str(err.get("Code", "")), str(err.get("Message", ""))


def failure_text(call: Call, code: str, msg: str) -> str:
    if code in DENIED:
        return f"not permitted: {call.iam_action} was denied ({code}){': ' + msg if msg else ''}"
    return f"{call.action} failed ({code}): {msg}"


class Executor:
    def __init__(
        self,
        clients: Clients,
        *,
        max_changes: int,
        regions: Sequence[str] = (),
        recorder: Recorder | None = None,
        trigger: str = "cli",
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = clock.now,
        time_left: Callable[[], float | None] = lambda: None,
        members: MemberAccess | None = None,
    ) -> None:
        self.clients = clients
        # Re-reads see the far side too, so a return route on this side is re-checked
        # against the forward route over there.
        self.members = members
        self.max_changes = max_changes
        self.regions = tuple(regions)
        self.recorder = recorder
        self.trigger = trigger
        self.sleep = sleep
        self.now = now
        self.time_left = time_left
        self.changes = 0  # calls made (or attempted) in fix mode, across runs of this executor
        self._reader: Reader | None = None

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            self._reader = Reader(self.clients, members=self.members)
        return self._reader

    # -- public ---------------------------------------------------------------------

    def run(self, groups: Iterable[Group]) -> list[Outcome]:
        """Carry out each group; one outcome per action, in order."""
        out: list[Outcome] = []
        for group in groups:
            if group:
                out.extend(self._group(list(group)))
        return out

    def run_each(self, actions: Iterable[Action]) -> list[Outcome]:
        """Actions that do not depend on each other: a group of one each."""
        return self.run([a] for a in actions)

    def report(self, outcomes: Sequence[Outcome], mode: Mode) -> Report:
        return Report(tuple(outcomes), mode, self.max_changes, self.changes)

    # -- groups ---------------------------------------------------------------------

    def _group(self, group: list[Action]) -> list[Outcome]:
        first = group[0]
        held = self._held_back(first)
        if held is not None:
            return [held, *(self._after(a, first, held) for a in group[1:])]
        if first.mode is Mode.DRY_RUN:
            tried = self._dry_run(first)
            return [tried, *(self._after(a, first, tried) for a in group[1:])]
        if self.changes + len(group) > self.max_changes:
            why = f"change cap reached ({self.max_changes} per run)"
            return [Outcome(Status.PENDING, a, why) for a in group]
        left = self.time_left()
        if left is not None and left < TIME_FOR_A_GROUP:
            why = f"out of time: {left:.0f} s left of this invocation, the next run makes it"
            return [Outcome(Status.PENDING, a, why) for a in group]
        out: list[Outcome] = []
        for i, a in enumerate(group):
            if out and (out[0].status is not Status.APPLIED or out[-1].status is Status.FAILED):
                out.append(self._after(a, out[0].action, out[-1]))
                continue
            out.append(self._fix(a) if i == 0 else self._follow(a, out[0]))
        return out

    def _follow(self, a: Action, first: Outcome) -> Outcome:
        """A later step of a group whose first call was made. If the live state cannot be
        read for it now, it fails loudly (recorded, announced with the call to make by
        hand): no later run takes up half of a group."""
        out = self._held_back(a) or self._fix(a)
        if out.status is Status.SKIPPED and out.message.startswith(UNREADABLE):
            failed = replace(
                out,
                status=Status.FAILED,
                at=self.now(),
                error_code="LiveStateUnreadable",
                message=f"{out.message}, after {first.action.call.action} was made",
            )
            return self._record(failed)
        return out

    def _held_back(self, a: Action) -> Outcome | None:
        """What the plan itself says before anything is read or called."""
        # Known once anything was read; a fix re-reads anyway, so there it is asked for.
        own = self.clients.known_account_id
        if own is None and a.mode is Mode.FIX:
            own = self.clients.account_id()
        if own is not None and a.subject.account_id != own:
            return Outcome(
                Status.SKIPPED,
                a,
                f"refused: {a.subject.resource_id} belongs to account {a.subject.account_id}, "
                f"not {own}: PeerGuard never changes another account",
            )
        if a.ignored or a.refused:
            return Outcome(Status.SKIPPED, a, a.reason)
        if not a.automatic:
            return Outcome(Status.PROPOSED, a, a.reason or "no automatic fix")
        if a.mode is Mode.NOTIFY:
            return Outcome(Status.PROPOSED, a, f"mode is notify for {a.subject.check_id}")
        return None

    def _after(self, a: Action, first: Action, how: Outcome) -> Outcome:
        """An action that follows the group's first (or a failed one) and cannot go ahead."""
        if how.status is Status.VERIFIED or (
            how.status is Status.PROPOSED and a.mode is not Mode.NOTIFY
        ):
            return Outcome(Status.PROPOSED, a, f"after {first.call.action}")
        if how.status is Status.PENDING:
            return Outcome(Status.PENDING, a, how.message)
        return Outcome(Status.SKIPPED, a, f"not made: {how.action.call.action} was {how.status}")

    # -- dry-run --------------------------------------------------------------------

    def _dry_run(self, a: Action) -> Outcome:
        ec2 = self.clients.client("ec2", a.region)
        try:
            getattr(ec2, a.call.method)(**a.call.parameters, DryRun=True)
        except ClientError as e:
            code, msg = error_of(e)
            if code == DRY_RUN_OK:
                return Outcome(
                    Status.VERIFIED, a, f"would succeed: {a.call.cli()}", before=a.before
                )
            return Outcome(Status.FAILED, a, failure_text(a.call, code, msg), error_code=code)
        # Real EC2 never succeeds with DryRun=True; an emulator that ignores it made the change.
        undo = a.undo.cli() if a.undo else "none known"
        return Outcome(
            Status.FAILED,
            a,
            f"the endpoint ignored DryRun and made the change {a.call.cli()}; undo: {undo}",
            error_code="DryRunIgnored",
        )

    # -- fix ------------------------------------------------------------------------

    def _fix(self, a: Action) -> Outcome:
        live, why = self._reread(a)
        for pause in WAITS:
            if live is None:
                break
            verdict = a.recheck(live)
            if not verdict.wait:
                break
            self.sleep(pause)
            live, why = self._reread(a)
        if live is None:
            return Outcome(Status.SKIPPED, a, why)
        verdict = a.recheck(live)
        if verdict.wait:
            return Outcome(Status.PENDING, a, verdict.reason)
        if not verdict.go:
            return Outcome(Status.SKIPPED, a, verdict.reason)
        ignored = ignored_resources(a.call, live, a.subject.vpc_id, a.subject.peering_connection_id)
        if ignored:
            return Outcome(Status.SKIPPED, a, ignored_text(ignored))
        refused = refusal(a.call, live)
        if refused:
            return Outcome(Status.SKIPPED, a, f"refused on the live state: {refused}")
        return self._call(a, live)

    def _call(self, a: Action, live: Snapshot) -> Outcome:
        before = state_touched(live, a.call)
        self.changes += 1
        at = self.now()
        ec2 = self.clients.client("ec2", a.region)
        status, message, code = Status.APPLIED, f"applied {a.call.action}", None
        try:
            response = getattr(ec2, a.call.method)(**a.call.parameters)
        except ClientError as e:
            code, msg = error_of(e)
            if code in ALREADY_DONE.get(a.call.action, ()):
                message = f"already done ({code})"
            else:
                status, message = Status.FAILED, failure_text(a.call, code, msg)
        else:
            failed = failure_in_response(a.call, response)
            if failed is not None:
                code = failed[0]
                status, message = Status.FAILED, failure_text(a.call, *failed)
            undo = undo_from_response(a.call, response)
            if undo is not None:
                a = replace(a, undo=undo)
        after: dict[str, Any] | None = None
        if code not in DENIED:
            after_snap, _ = self._reread(a)
            after = state_touched(after_snap, a.call) if after_snap else None
            if (
                status is Status.APPLIED
                and code
                and not (after_snap is not None and achieved(a.call, after_snap))
            ):
                status, message = Status.FAILED, f"{code}, but the live state differs: {after}"
        outcome = Outcome(status, a, message, at, before, after, code)
        return self._record(outcome)

    def _reread(self, a: Action) -> tuple[Snapshot | None, str]:
        try:
            snap = self.reader.scoped(a.region, a.reread, self.regions or (a.region,))
        except ClientError as e:
            code, msg = error_of(e)
            return None, f"{UNREADABLE} ({code}: {msg})"
        if snap.partial:
            return None, f"{UNREADABLE}: {'; '.join(snap.warnings)}"
        return snap, ""

    def _record(self, outcome: Outcome) -> Outcome:
        if self.recorder is None:
            return outcome
        change = ChangeRecord.of(outcome, uuid.uuid4().hex[:12], self.trigger)
        try:
            self.recorder.record(change)
        except Exception as e:  # a lost record must be visible, never undo a made change
            note = f" (change record failed: {type(e).__name__}: {e})"
            return replace(outcome, message=outcome.message + note, recorded=False)
        return replace(outcome, recorded=True)
