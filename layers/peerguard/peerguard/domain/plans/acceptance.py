"""Should PeerGuard accept a pending peering request? Pure decisions over a snapshot.

A request is accepted only when every one of these holds: it is still pending and this
account is the accepter; the requester is on the allowlist (account, and the entry's
region, VPC and CIDR narrowing); none of the requester's CIDR blocks overlaps the
accepter VPC or any VPC already peered with it; the accepter VPC has room under its
peering quota. Anything else is alerted, and optionally rejected after a delay.
Hands off (skip) when the pcx or the accepter VPC is tagged `peerguard:ignore=true`, and
never accept or reject when no allowlist is configured (or it cannot be used).

`plan_request` turns a verdict into a group of actions for the one executor: accept, then
return routes in the tables tagged for them, then the DNS option; or reject. Each action
re-checks its verdict on the live state right before it is made. `standing_findings` says
what the outcomes leave open (refused, held back, dry-run, failed).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from peerguard.domain import catalogue
from peerguard.domain.catalogue import Entry, Kind, define
from peerguard.domain.checks.context import CheckContext
from peerguard.domain.checks.peering import describe
from peerguard.domain.findings import Call, Finding, Remediation, Severity
from peerguard.domain.model import (
    ACTIVE,
    IGNORE_TAG,
    LIVE_STATES,
    PEER_ROUTES_TAG,
    PENDING_ACCEPTANCE,
    PeeringConnection,
    Snapshot,
    cidr_family_pairs,
    overlaps,
    within,
)
from peerguard.domain.plans.actions import (
    Action,
    Mode,
    Outcome,
    Recheck,
    RecheckFn,
    Status,
    achieved,
    state_touched,
)
from peerguard.domain.plans.rails import undo_call
from peerguard.domain.scope import Scope

REQUEST_LIFETIME = timedelta(days=7)  # AWS expires a pending request after a week

Verb = Literal["accept", "refuse", "alert", "reject", "skip"]

ADVICE = (
    "Peering cannot route overlapping ranges: expose the service with PrivateLink "
    "(endpoint service + NLB), or connect through a Transit Gateway with NAT."
)


@dataclass(frozen=True)
class Verdict:
    pcx_id: str
    action: Verb
    reason: str
    region: str  # where the accept/reject call must be made: the accepter's region


def pending_for_us(snap: Snapshot) -> Iterator[PeeringConnection]:
    for pcx in snap.peerings.values():
        a = pcx.accepter
        if (
            pcx.status == PENDING_ACCEPTANCE
            and a.owner_id == snap.account_id
            and snap.can_read(a.owner_id, a.region)
        ):
            yield pcx


def age(snap: Snapshot, pcx: PeeringConnection) -> timedelta | None:
    """How long the request has been waiting (AWS gives its expiry, 7 days after creation)."""
    if pcx.expiration_time is None:
        return None
    return REQUEST_LIFETIME - (pcx.expiration_time - snap.taken_at)


def decide(
    snap: Snapshot,
    pcx: PeeringConnection,
    ctx: CheckContext,
    *,
    reject_unlisted_after: timedelta | None = None,
) -> Verdict:
    region = pcx.accepter.region

    def verdict(action: Verb, reason: str) -> Verdict:
        return Verdict(pcx.pcx_id, action, reason, region)

    if pcx.status != PENDING_ACCEPTANCE or pcx.accepter.owner_id != snap.account_id:
        return verdict("skip", f"not pending acceptance by this account (status {pcx.status})")
    accepter_vpc = snap.vpcs.get(pcx.accepter.vpc_id)
    if pcx.ignored or (accepter_vpc is not None and accepter_vpc.ignored):
        return verdict("skip", f"tagged {IGNORE_TAG}=true: hands off")
    req = pcx.requester
    if ctx.allowlist.error:
        return verdict("alert", f"the allowlist cannot be used ({ctx.allowlist.error})")
    if ctx.allowlist.entries is None:
        # Nothing to judge against: never accept, and never reject on a missing allowlist.
        return verdict("alert", "no allowlist is configured: a person must decide")
    requested = snap.vpc_cidrs(req)
    entry = ctx.allowlist.entry_for(req.owner_id, req.region, req.vpc_id)
    if entry is None:
        waited = age(snap, pcx)
        limit = reject_unlisted_after
        if limit is not None and waited is not None and waited >= limit:
            return verdict(
                "reject",
                f"account {req.owner_id} is not on the allowlist and the request has "
                f"waited {_hours(waited)}",
            )
        return verdict(
            "alert", f"requester {req.owner_id}/{req.region}/{req.vpc_id} is not on the allowlist"
        )
    if entry.cidrs:
        outside = [c for c in requested if not any(within(c, a) for a in entry.cidrs)]
        if outside or not requested:
            return verdict(
                "refuse",
                f"requester CIDR blocks {', '.join(outside) or '(unknown)'} are outside the "
                f"allowlisted ranges {', '.join(entry.cidrs)}",
            )
    ours = snap.vpc_cidrs(pcx.accepter)
    clash = list(cidr_family_pairs(requested, ours))
    if clash:
        pairs = ", ".join(f"{a} ~ {b}" for a, b in clash)
        return verdict("refuse", f"requester CIDRs overlap this VPC ({pairs}). {ADVICE}")
    for other in snap.peerings_of(pcx.accepter.vpc_id):
        if other.pcx_id == pcx.pcx_id or other.status not in LIVE_STATES:
            continue
        peer = other.other(pcx.accepter.vpc_id)
        clash = list(cidr_family_pairs(requested, snap.vpc_cidrs(peer)))
        if clash:
            pairs = ", ".join(f"{a} ~ {b}" for a, b in clash)
            return verdict(
                "refuse",
                f"requester CIDRs overlap {peer.vpc_id}, already peered via {other.pcx_id} "
                f"({pairs}): routes would be ambiguous. {ADVICE}",
            )
    active = sum(1 for p in snap.peerings_of(pcx.accepter.vpc_id) if p.status == ACTIVE)
    if active + 1 > ctx.peering_quota:
        return verdict(
            "refuse",
            f"{pcx.accepter.vpc_id} already has {active} active peerings (quota "
            f"{ctx.peering_quota})",
        )
    return verdict("accept", f"account {req.owner_id} is allowlisted and no CIDR overlaps")


def return_routes(snap: Snapshot, pcx: PeeringConnection) -> list[Call]:
    """Routes to every requester CIDR block in the accepter tables tagged for peer routes.

    A table that already routes an overlapping destination elsewhere is left alone: a
    new route must never take traffic from an existing path.
    """
    planned = []
    for rt in snap.tables_in(pcx.accepter.vpc_id):
        if rt.tags.get(PEER_ROUTES_TAG, "").lower() != "true" or rt.ignored:
            continue
        for dest in snap.vpc_cidrs(pcx.requester):
            if any(r.is_cidr and overlaps(r.destination, dest) for r in rt.routes):
                continue
            kwarg = "DestinationIpv6CidrBlock" if ":" in dest else "DestinationCidrBlock"
            params = {"RouteTableId": rt.route_table_id, kwarg: dest}
            planned.append(
                Call(
                    action="CreateRoute",
                    parameters={**params, "VpcPeeringConnectionId": pcx.pcx_id},
                )
            )
    return planned


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.0f} h"


# -- the findings of the acceptance function ---------------------------------------------------

PCX = "AWS::EC2::VPCPeeringConnection"


def _entry(
    id: str, severity: Severity, title: str, risk: str, fix: str, iam: tuple[str, ...] = ()
) -> Entry:
    return define(Entry(id, Kind.ACCEPTANCE, severity, title, risk, fix, PCX, iam_actions=iam))


ACCEPTED = _entry(
    "acceptance.accepted",
    Severity.INFO,
    "PeerGuard accepted a peering request",
    "An allowlisted account now has a network path to this VPC, as the allowlist intends.",
    "Nothing to do. To revert, delete the peering (the undo call in the message).",
    iam=("ec2:AcceptVpcPeeringConnection",),
)
ROUTE_ADDED = _entry(
    "acceptance.route_added",
    Severity.INFO,
    "PeerGuard added a return route for an accepted peering",
    "None: the route sends replies to the requester's own CIDR block through the peering.",
    "Nothing to do. To revert, delete the route (the undo call in the message).",
    iam=("ec2:CreateRoute",),
)
DNS_ENABLED = _entry(
    "acceptance.dns_enabled",
    Severity.INFO,
    "PeerGuard allowed DNS resolution from an accepted peer",
    "None: the peer resolves this VPC's public DNS names to private IPs.",
    "Nothing to do. To revert, make the undo call in the message.",
    iam=("ec2:ModifyVpcPeeringConnectionOptions",),
)
REJECTED = _entry(
    "acceptance.rejected",
    Severity.MEDIUM,
    "PeerGuard rejected a peering request from an account not on the allowlist",
    "None left: the request waited past RejectUnlistedAfterHours and is gone.",
    "If the requester was expected, add it to the allowlist and ask for a new request.",
    iam=("ec2:RejectVpcPeeringConnection",),
)
REFUSED = _entry(
    "acceptance.refused",
    Severity.MEDIUM,
    "Peering request from an allowlisted account not accepted",
    "The requester is trusted, but accepting would overlap CIDRs, leave the allowed ranges "
    "or exceed the quota: the connection could not carry traffic correctly.",
    "Reject it, or re-plan: PrivateLink (endpoint service + NLB) or a Transit Gateway.",
)
FAILED = _entry(
    "acceptance.failed",
    Severity.HIGH,
    "PeerGuard could not complete an acceptance change",
    "A decided accept, route, DNS change or reject did not happen.",
    "Make the call in the message by hand, or grant the permission it names (the stack "
    "parameters AutoAcceptPeerings, AcceptAddsRoutes, AcceptEnablesDns and "
    "RejectUnlistedAfterHours deploy exactly these).",
)
DRY_RUN = _entry(
    "acceptance.dry_run",
    Severity.INFO,
    "Dry run: PeerGuard would accept or reject this peering request",
    "None: Mode is dry-run, nothing was changed.",
    "Deploy with Mode=notify or fix to let the acceptance function act.",
)
DEFERRED = _entry(
    "acceptance.deferred",
    Severity.LOW,
    "Acceptance step held back",
    "A decided step waits for the next run (change cap, or the peering not active yet).",
    "An accept held back by the change cap is retried on the next run (raise "
    "MaxChangesPerRun if it keeps waiting); a return route held back because the peering "
    "was not active yet is in the message, to add by hand.",
)
# The changes the acceptance function can make (template.yaml grants exactly these).
IAM_ACTIONS = tuple(
    dict.fromkeys(a for e in (ACCEPTED, ROUTE_ADDED, DNS_ENABLED, REJECTED) for a in e.iam_actions)
)
# Findings that stay true while the request waits (the rest announce a change once).
STANDING = frozenset({REFUSED.id, FAILED.id, DRY_RUN.id, DEFERRED.id})
CHECKS = ("peering.pending_acceptance", "peering.not_allowlisted", "peering.cidr_overlap")

# After an accept, a cross-account or cross-region peering is `provisioning` for a moment.
ACTIVE_WAITS = (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class Policy:
    """What the stack lets the acceptance function do."""

    mode: Mode  # dry-run: every call with DryRun; otherwise real calls (within the switches)
    auto_accept: bool = False
    accept_routes: bool = True
    accept_dns: bool = False
    reject_after: timedelta | None = None


def _about(entry: Entry, pcx: PeeringConnection, detail: str, **kw: Any) -> Finding:
    """A finding about a request, filed under its accepter side (this account)."""
    a = pcx.accepter
    return entry.finding(
        resource_id=pcx.pcx_id,
        account_id=a.owner_id,
        region=a.region,
        vpc_id=a.vpc_id,
        peering_connection_id=pcx.pcx_id,
        detail=f"{describe(pcx)}: {detail}",
        **kw,
    )


def plan_request(
    snap: Snapshot, pcx: PeeringConnection, verdict: Verdict, policy: Policy, ctx: CheckContext
) -> list[Action]:
    """The group of actions that carries `verdict` out (empty when there is nothing to do)."""
    mode = Mode.DRY_RUN if policy.mode is Mode.DRY_RUN else Mode.FIX
    subject = _about(
        catalogue.entry("peering.pending_acceptance"),
        pcx,
        f"pending acceptance by {pcx.accepter.owner_id}",
    )
    reread = Scope(vpc_ids=frozenset({pcx.accepter.vpc_id}), peering_ids=frozenset({pcx.pcx_id}))

    def action(call: Call, announce: Entry, recheck: RecheckFn) -> Action:
        return Action(
            call=call,
            subject=subject,
            mode=mode,
            region=verdict.region,
            reread=reread,
            announce_as=announce.id,
            fail_as=FAILED.id,
            undo=undo_call(call, snap),
            automatic=True,
            why=verdict.reason,
            before=state_touched(snap, call),
            recheck=recheck,
        )

    one = {"VpcPeeringConnectionId": pcx.pcx_id}
    if verdict.action == "reject" and policy.reject_after is not None:
        reject = Call(action="RejectVpcPeeringConnection", parameters=one)
        return [action(reject, REJECTED, _still("reject", pcx.pcx_id, ctx, policy))]
    if verdict.action != "accept" or not policy.auto_accept:
        return []
    accept = Call(action="AcceptVpcPeeringConnection", parameters=one)
    group = [action(accept, ACCEPTED, _still("accept", pcx.pcx_id, ctx, policy))]
    if policy.accept_routes:
        for route in return_routes(snap, pcx):
            group.append(action(route, ROUTE_ADDED, _route_still_owed(route, pcx.pcx_id)))
    if policy.accept_dns:
        dns = Call(
            action="ModifyVpcPeeringConnectionOptions",
            parameters={
                **one,
                "AccepterPeeringConnectionOptions": {"AllowDnsResolutionFromRemoteVpc": True},
            },
        )
        group.append(action(dns, DNS_ENABLED, _active_first(pcx.pcx_id)))
    return group


def _still(verb: Verb, pcx_id: str, ctx: CheckContext, policy: Policy) -> RecheckFn:
    """Right before an accept or reject: the request still waits and the verdict still holds."""

    def recheck(live: Snapshot) -> Recheck:
        pcx = live.peerings.get(pcx_id)
        if pcx is None:
            return Recheck.stop(f"not {verb}ed: {pcx_id} no longer exists")
        if pcx.status != PENDING_ACCEPTANCE:
            return Recheck.stop(f"not {verb}ed: it is no longer pending (status {pcx.status})")
        fresh = decide(live, pcx, ctx, reject_unlisted_after=policy.reject_after)
        if fresh.action != verb:
            return Recheck.stop(f"not {verb}ed: the verdict is now {fresh.action}: {fresh.reason}")
        return Recheck.ok()

    return recheck


def _active_first(pcx_id: str) -> RecheckFn:
    def recheck(live: Snapshot) -> Recheck:
        pcx = live.peerings.get(pcx_id)
        if pcx is None or pcx.status != ACTIVE:
            status = pcx.status if pcx else "gone"
            return Recheck.later(f"the peering is not active yet (status {status})")
        return Recheck.ok()

    return recheck


def _route_still_owed(route: Call, pcx_id: str) -> RecheckFn:
    """Re-planned on freshly read tables: a route added meanwhile is not added twice."""
    wait_active = _active_first(pcx_id)

    def recheck(live: Snapshot) -> Recheck:
        ready = wait_active(live)
        if not ready.go:
            return ready
        pcx = live.peerings[pcx_id]
        if achieved(route, live):
            return Recheck.stop("the route is already there")
        if route.key() not in {r.key() for r in return_routes(live, pcx)}:
            return Recheck.stop(
                "the table is no longer tagged for peer routes, or now routes "
                "an overlapping destination elsewhere"
            )
        return Recheck.ok()

    return recheck


def standing_findings(
    snap: Snapshot, outcomes: Sequence[Outcome], verdicts: Sequence[Verdict]
) -> list[Finding]:
    """What the run leaves open: refusals, held-back steps, dry runs."""
    out: list[Finding] = []
    for v in verdicts:
        pcx = snap.peerings.get(v.pcx_id)
        if pcx is not None and v.action == "refuse":
            out.append(
                _about(
                    REFUSED,
                    pcx,
                    f"not accepted automatically: {v.reason}",
                    remediation=Remediation(
                        action="RejectVpcPeeringConnection",
                        parameters={"VpcPeeringConnectionId": pcx.pcx_id},
                        automatic=False,
                        reason="refused requests are left for a person to reject or re-plan",
                    ),
                )
            )
    by_pcx: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by_pcx.setdefault(str(o.action.subject.peering_connection_id), []).append(o)
    for pcx_id, group in by_pcx.items():
        pcx = snap.peerings.get(pcx_id)
        if pcx is None:
            continue
        first = group[0]
        if first.action.mode is Mode.DRY_RUN:
            out.append(_dry_run(pcx, group))
            continue
        held = [o for o in group if o.status is Status.PENDING]
        if held:
            calls = "; ".join(o.action.call.cli() for o in held)
            first_held = held[0].action.call
            out.append(
                _about(
                    DEFERRED,
                    pcx,
                    f"{len(held)} of its {len(group)} changes not made yet: {held[0].message}. "
                    f"They are made on a later run; by hand: {calls}",
                    remediation=Remediation(
                        action=first_held.action,
                        parameters=dict(first_held.parameters),
                        reason=held[0].message,
                    ),
                    key=first_held.key(),
                )
            )
    return out


def _dry_run(pcx: PeeringConnection, group: Sequence[Outcome]) -> Finding:
    lines = [f"{o.action.call.cli()} ({o.status.value}: {o.message})" for o in group]
    calls = "; ".join(f"{i}. {line}" for i, line in enumerate(lines, 1))
    first = group[0]
    verb = "accept" if first.action.call.action.startswith("Accept") else "reject"
    return _about(
        DRY_RUN,
        pcx,
        f"{first.action.why}. Mode is dry-run, nothing was changed. The calls: {calls}",
        title=f"Dry run: PeerGuard would {verb} this peering request",
        severity=Severity.HIGH if first.status is Status.FAILED else None,
        remediation=Remediation(
            action=first.action.call.action,
            parameters=dict(first.action.call.parameters),
            automatic=False,
            reason="dry-run mode",
        ),
        key=first.action.call.action,
    )


def after(snap: Snapshot, outcomes: Sequence[Outcome]) -> Snapshot:
    """The snapshot as the outcomes left it: accepted is active, rejected is gone."""
    peerings = dict(snap.peerings)
    for o in outcomes:
        pcx_id = str(o.action.call.parameters.get("VpcPeeringConnectionId", ""))
        if o.status is not Status.APPLIED or pcx_id not in peerings:
            continue
        if o.action.call.action == "AcceptVpcPeeringConnection":
            peerings[pcx_id] = peerings[pcx_id].model_copy(update={"status": ACTIVE})
        elif o.action.call.action == "RejectVpcPeeringConnection":
            peerings[pcx_id] = peerings[pcx_id].model_copy(update={"status": "rejected"})
    return snap.model_copy(update={"peerings": peerings})
