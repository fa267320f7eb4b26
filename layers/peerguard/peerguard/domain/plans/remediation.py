"""Plan remediation: finding + snapshot -> the exact EC2 call, its undo, and how to re-check
it on the live state right before it is made. Pure.

Only five kinds of change are ever planned, and the rails (`peerguard.domain.plans.rails`)
re-check each one against the snapshot so that no plan widens access:
- CreateRoute of a destination inside the peer VPC's CIDR blocks, via the active peering
  the forward route already uses, in a table with no overlapping route elsewhere;
- DeleteRoute of a route whose peering is dead or gone;
- enabling AllowDnsResolutionFromRemoteVpc on this account's side of an active peering;
- RevokeSecurityGroupIngress of exactly one rule, by its rule id: a rule open to the
  internet, or a stale reference to a group across a peering that is gone; the rule must
  be unchanged on the live state, and the undo re-authorizes it as it was;
- CreateFlowLogs of an ALL-traffic flow log on a peered VPC that records none, to the log
  group the stack owns (only when one is configured).
Everything else is notify-only: the proposed call is reported for a person to make.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from peerguard.domain.catalogue import entry
from peerguard.domain.checks.context import CheckContext
from peerguard.domain.findings import Call, Finding
from peerguard.domain.model import Snapshot
from peerguard.domain.plans.actions import (
    Action,
    Mode,
    Recheck,
    ignored_resources,
    ignored_text,
    state_touched,
)
from peerguard.domain.plans.rails import refusal, undo_call
from peerguard.domain.scope import Scope

ROUTE_MISSING = "route.missing_reciprocal"
ROUTE_BLACKHOLE = "route.blackhole"
DNS_DISABLED = "peering.dns_resolution_disabled"
OPEN_TO_WORLD = "sg.open_to_world"
STALE_REFERENCE = "sg.stale_peer_reference"
FLOW_LOGS_DISABLED = "flowlogs.disabled"
FIXABLE = frozenset(
    {
        ROUTE_MISSING,
        ROUTE_BLACKHOLE,
        DNS_DISABLED,
        OPEN_TO_WORLD,
        STALE_REFERENCE,
        FLOW_LOGS_DISABLED,
    }
)
# The changes remediation can make (template.yaml grants exactly these in fix mode).
IAM_ACTIONS = (
    "ec2:CreateRoute",
    "ec2:DeleteRoute",
    "ec2:ModifyVpcPeeringConnectionOptions",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:CreateFlowLogs",
)
# Calls whose target must be exactly as audited when they are made: a rule revoked by id
# that someone modified in place since is left alone (its undo would not restore it).
UNCHANGED_BEFORE = frozenset({"RevokeSecurityGroupIngress"})


@dataclass(frozen=True)
class RemediationConfig:
    """How far PeerGuard may go: a default mode (the stack's Mode), per-check overrides."""

    default_mode: Mode = Mode.NOTIFY
    overrides: Mapping[str, Mode] = field(default_factory=dict)
    fix_dns: bool = False  # enabling remote DNS resolution is opt-in
    max_changes: int = 10

    def __post_init__(self) -> None:
        if self.max_changes < 0:
            raise ValueError(f"max_changes must be 0 or more, not {self.max_changes}")

    def mode_for(self, check_id: str) -> Mode:
        return self.overrides.get(check_id, self.default_mode)


def plan_all(
    findings: Iterable[Finding], snap: Snapshot, config: RemediationConfig, ctx: CheckContext
) -> list[Action]:
    return [a for f in findings if (a := plan(f, snap, config, ctx)) is not None]


def plan(
    finding: Finding, snap: Snapshot, config: RemediationConfig, ctx: CheckContext
) -> Action | None:
    """The action for one finding: None when it proposes no call."""
    rem = finding.remediation
    if rem is None:
        return None
    call = rem.plain()

    def action(**kw: Any) -> Action:
        return Action(
            call=call,
            subject=finding,
            mode=config.mode_for(finding.check_id),
            region=finding.region,
            reread=_reread(finding, call),
            announce_as="remediation.applied",
            fail_as="remediation.failed",
            **kw,
        )

    if finding.check_id not in FIXABLE:
        return action(reason=rem.reason or f"{finding.check_id} is never fixed automatically")
    ignored = ignored_resources(call, snap, finding.vpc_id, finding.peering_connection_id)
    if ignored:
        return action(reason=ignored_text(ignored), ignored=True)
    if not rem.automatic:  # e.g. a return route that would conflict: a person decides
        return action(reason=rem.reason or "not automatic")
    if finding.check_id == DNS_DISABLED and not config.fix_dns:
        return action(reason="DNS option fixes are off (fix_dns)")
    refused = refusal(call, snap)
    if refused:
        return action(reason=f"refused: {refused}", refused=True)
    undo = undo_call(call, snap)
    if undo is None:
        return action(reason="refused: no undo call can be derived", refused=True)
    why = f"{finding.check_id}: {finding.detail}"
    planned = action(undo=undo, automatic=True, why=why, before=state_touched(snap, call))
    return _with_recheck(planned, config, ctx)


def _with_recheck(planned: Action, config: RemediationConfig, ctx: CheckContext) -> Action:
    """Re-run the one check on the live state and re-plan: go only for the same change."""
    check = entry(planned.subject.check_id)
    fingerprint = planned.subject.fingerprint

    def recheck(live: Snapshot) -> Recheck:
        current = [f for f in check.run(live, ctx) if f.fingerprint == fingerprint]
        if not current:
            return Recheck.stop("already resolved: the live state no longer shows it")
        fresh = plan(current[0], live, config, ctx)
        if fresh is None or not fresh.automatic or not fresh.same_change(planned):
            now = fresh.reason if fresh is not None and fresh.reason else "a different change"
            return Recheck.stop(f"live state changed since the audit: now {now}")
        call = planned.call
        if call.action in UNCHANGED_BEFORE and state_touched(live, call) != planned.before:
            return Recheck.stop(
                f"live state changed since the audit: {call.action} target is no longer "
                f"as audited (now {state_touched(live, call)}): left alone"
            )
        return Recheck.ok()

    return replace(planned, recheck=recheck)


def _reread(finding: Finding, call: Call) -> Scope:
    p = call.parameters
    pcx = p.get("VpcPeeringConnectionId") or finding.peering_connection_id
    return Scope(
        vpc_ids=frozenset({finding.vpc_id} if finding.vpc_id else ()),
        route_table_ids=frozenset({str(p["RouteTableId"])} if "RouteTableId" in p else ()),
        peering_ids=frozenset({str(pcx)} if pcx else ()),
        security_group_ids=frozenset({str(p["GroupId"])} if "GroupId" in p else ()),
    )
