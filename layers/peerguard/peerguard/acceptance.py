"""Should PeerGuard accept a pending peering request? Pure decisions over a snapshot.

A request is accepted only when every one of these holds: it is still pending and this
account is the accepter; the requester is on the allowlist (account, and the entry's
region, VPC and CIDR narrowing); none of the requester's CIDR blocks overlaps the
accepter VPC or any VPC already peered with it; the accepter VPC has room under its
peering quota. Anything else is alerted, and optionally rejected after a delay.
Hands off (skip) when the pcx or the accepter VPC is tagged `peerguard:ignore=true`, and
never accept or reject when no allowlist is configured.

The calls that carry a decision out live in `peerguard.accepting`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from peerguard.checks.registry import Allowed, CheckContext
from peerguard.model import (
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

REQUEST_LIFETIME = timedelta(days=7)  # AWS expires a pending request after a week

Action = Literal["accept", "refuse", "alert", "reject", "skip"]

ADVICE = (
    "Peering cannot route overlapping ranges: expose the service with PrivateLink "
    "(endpoint service + NLB), or connect through a Transit Gateway with NAT."
)


@dataclass(frozen=True)
class Verdict:
    pcx_id: str
    action: Action
    reason: str
    region: str  # where the accept/reject call must be made: the accepter's region


@dataclass(frozen=True)
class PlannedRoute:
    route_table_id: str
    destination: str
    pcx_id: str

    @property
    def parameters(self) -> dict[str, str]:
        kwarg = "DestinationIpv6CidrBlock" if ":" in self.destination else "DestinationCidrBlock"
        return {
            "RouteTableId": self.route_table_id,
            kwarg: self.destination,
            "VpcPeeringConnectionId": self.pcx_id,
        }


def pending_for_us(snap: Snapshot) -> Iterator[PeeringConnection]:
    for pcx in snap.peerings.values():
        a = pcx.accepter
        if (
            pcx.status == PENDING_ACCEPTANCE
            and a.owner_id == snap.account_id
            and snap.can_read(a.owner_id, a.region)
        ):
            yield pcx


def _entry_for(ctx: CheckContext, pcx: PeeringConnection) -> Allowed | None:
    req = pcx.requester
    return next(
        (e for e in ctx.allowlist or () if e.matches(req.owner_id, req.region, req.vpc_id)), None
    )


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

    def verdict(action: Action, reason: str) -> Verdict:
        return Verdict(pcx.pcx_id, action, reason, region)

    if pcx.status != PENDING_ACCEPTANCE or pcx.accepter.owner_id != snap.account_id:
        return verdict("skip", f"not pending acceptance by this account (status {pcx.status})")
    accepter_vpc = snap.vpcs.get(pcx.accepter.vpc_id)
    if pcx.ignored or (accepter_vpc is not None and accepter_vpc.ignored):
        return verdict("skip", f"tagged {IGNORE_TAG}=true: hands off")
    req = pcx.requester
    if ctx.allowlist is None:
        # Nothing to judge against: never accept, and never reject on a missing allowlist.
        return verdict("alert", "no allowlist is configured: a person must decide")
    requested = snap.vpc_cidrs(req)
    entry = _entry_for(ctx, pcx)
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


def return_routes(snap: Snapshot, pcx: PeeringConnection) -> list[PlannedRoute]:
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
            planned.append(PlannedRoute(rt.route_table_id, dest, pcx.pcx_id))
    return planned


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.0f} h"
