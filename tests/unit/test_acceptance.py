"""Auto-accept decisions: accept only allowlisted, non-overlapping requests with quota left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from peerguard.domain.allowlist import Allowed
from peerguard.domain.checks import CheckContext
from peerguard.domain.findings import Call
from peerguard.domain.model import PeeringConnection, PeeringSide, Route, RouteTable, Snapshot, Vpc
from peerguard.domain.plans.acceptance import (
    Policy,
    Verdict,
    decide,
    pending_for_us,
    plan_request,
    return_routes,
)
from peerguard.domain.plans.actions import Mode, Outcome, Status, announcement
from peerguard.usecases.acceptance import home_only
from tests.unit.netbuilder import allowed, allowing

US, THEM = "111111111111", "222222222222"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def side(owner: str, vpc: str, *cidrs: str, region: str = "us-east-1") -> PeeringSide:
    return PeeringSide(owner_id=owner, vpc_id=vpc, region=region, cidr_blocks=cidrs)


def pcx(
    pid: str, req: PeeringSide, acc: PeeringSide, status: str = "pending-acceptance", age_h=1
) -> PeeringConnection:
    expires = NOW + timedelta(days=7) - timedelta(hours=age_h)
    return PeeringConnection(
        pcx_id=pid, status=status, requester=req, accepter=acc, expiration_time=expires
    )


def snapshot(*peerings: PeeringConnection, tables: tuple[RouteTable, ...] = ()) -> Snapshot:
    ours = Vpc(vpc_id="vpc-ours", owner_id=US, region="us-east-1", cidr_blocks=("10.0.0.0/16",))
    return Snapshot(
        account_id=US,
        taken_at=NOW,
        readable=frozenset({(US, "us-east-1")}),
        vpcs={"vpc-ours": ours},
        route_tables={t.route_table_id: t for t in tables},
        peerings={p.pcx_id: p for p in peerings},
    )


OURS = side(US, "vpc-ours", "10.0.0.0/16")
REQUEST = pcx("pcx-req", side(THEM, "vpc-theirs", "10.9.0.0/16"), OURS)
ALLOW = allowing(allowed(THEM))


def test_an_allowlisted_request_without_overlap_is_accepted_in_the_accepter_region() -> None:
    v = decide(snapshot(REQUEST), REQUEST, ALLOW)
    assert (v.action, v.region) == ("accept", "us-east-1")


def test_a_request_from_an_unknown_account_is_alerted_not_accepted() -> None:
    v = decide(snapshot(REQUEST), REQUEST, allowing(allowed("333333333333")))
    assert v.action == "alert" and THEM in v.reason


def test_an_unknown_request_is_rejected_only_after_the_configured_delay() -> None:
    old = pcx("pcx-old", REQUEST.requester, OURS, age_h=50)
    ctx = allowing()
    assert decide(snapshot(old), old, ctx, reject_unlisted_after=timedelta(hours=48)).action == (
        "reject"
    )
    assert decide(
        snapshot(REQUEST), REQUEST, ctx, reject_unlisted_after=timedelta(hours=48)
    ).action == ("alert")


def test_overlap_with_this_vpc_is_refused_with_privatelink_advice() -> None:
    clash = pcx("pcx-clash", side(THEM, "vpc-theirs", "10.0.128.0/17"), OURS)
    v = decide(snapshot(clash), clash, ALLOW)
    assert v.action == "refuse"
    assert "10.0.128.0/17 ~ 10.0.0.0/16" in v.reason and "PrivateLink" in v.reason


def test_overlap_with_an_existing_peer_of_this_vpc_is_refused() -> None:
    existing = pcx("pcx-old", side(US, "vpc-other", "10.9.0.0/20"), OURS, status="active")
    v = decide(snapshot(existing, REQUEST), REQUEST, ALLOW)
    assert v.action == "refuse" and "pcx-old" in v.reason


@pytest.mark.parametrize(
    ("entry", "action"),
    [
        (allowed(THEM, regions=frozenset({"eu-west-1"})), "alert"),
        (allowed(THEM, vpc_ids=frozenset({"vpc-else"})), "alert"),
        (allowed(THEM, cidrs=("10.8.0.0/14",)), "accept"),
        (allowed(THEM, cidrs=("10.8.0.0/16",)), "refuse"),
    ],
)
def test_allowlist_entries_narrow_by_region_vpc_and_cidr(entry: Allowed, action: str) -> None:
    v = decide(snapshot(REQUEST), REQUEST, allowing(entry))
    assert v.action == action, v.reason


def test_a_full_peering_quota_refuses() -> None:
    peers = [
        pcx(f"pcx-{i}", side(US, f"vpc-{i}", f"172.16.{i}.0/24"), OURS, status="active")
        for i in range(3)
    ]
    ctx = allowing(allowed(THEM), peering_quota=3)
    v = decide(snapshot(*peers, REQUEST), REQUEST, ctx)
    assert v.action == "refuse" and "quota 3" in v.reason


def test_a_request_no_longer_pending_is_skipped() -> None:
    done = pcx("pcx-done", REQUEST.requester, OURS, status="active")
    assert decide(snapshot(done), done, ALLOW).action == "skip"
    assert list(pending_for_us(snapshot(done, REQUEST))) == [REQUEST]


def test_return_routes_go_only_to_tagged_tables_without_conflicts() -> None:
    tagged = RouteTable(
        route_table_id="rtb-tagged", vpc_id="vpc-ours", tags={"peerguard:peer-routes": "true"}
    )
    untagged = RouteTable(route_table_id="rtb-plain", vpc_id="vpc-ours")
    busy = RouteTable(
        route_table_id="rtb-busy",
        vpc_id="vpc-ours",
        tags={"peerguard:peer-routes": "true"},
        routes=(Route(destination="10.9.0.0/24", target="tgw-1"),),
    )
    routes = return_routes(snapshot(REQUEST, tables=(tagged, untagged, busy)), REQUEST)
    assert [r.action for r in routes] == ["CreateRoute"]
    assert routes[0].parameters == {
        "RouteTableId": "rtb-tagged",
        "DestinationCidrBlock": "10.9.0.0/16",
        "VpcPeeringConnectionId": "pcx-req",
    }


def test_the_ignore_tag_on_the_pcx_or_our_vpc_means_hands_off() -> None:
    tagged = REQUEST.model_copy(update={"tags": {"peerguard:ignore": "true"}})
    assert decide(snapshot(tagged), tagged, ALLOW).action == "skip"
    snap = snapshot(REQUEST)
    ours = snap.vpcs["vpc-ours"].model_copy(update={"tags": {"peerguard:ignore": "TRUE"}})
    hands_off = snap.model_copy(update={"vpcs": {"vpc-ours": ours}})
    assert decide(hands_off, REQUEST, ALLOW).action == "skip"


def test_without_an_allowlist_nothing_is_accepted_or_rejected() -> None:
    old = pcx("pcx-old", REQUEST.requester, OURS, age_h=100)
    v = decide(snapshot(old), old, CheckContext(), reject_unlisted_after=timedelta(hours=1))
    assert v.action == "alert" and "no allowlist" in v.reason


def test_requests_waiting_in_a_peer_region_are_left_to_that_regions_stack() -> None:
    west = Verdict("pcx-w", "accept", "allowlisted", "us-west-2")
    assert home_only(west, "us-east-1").action == "alert"
    assert home_only(west, "us-west-2") == west
    refused = Verdict("pcx-w", "refuse", "overlap", "us-west-2")
    assert home_only(refused, "us-east-1") == refused


def test_an_accept_is_a_group_accept_then_routes_then_dns_each_rechecked_live() -> None:
    tagged = RouteTable(
        route_table_id="rtb-tagged", vpc_id="vpc-ours", tags={"peerguard:peer-routes": "true"}
    )
    snap = snapshot(REQUEST, tables=(tagged,))
    policy = Policy(Mode.FIX, auto_accept=True, accept_dns=True)
    verdict = decide(snap, REQUEST, ALLOW)
    group = plan_request(snap, REQUEST, verdict, policy, ALLOW)
    assert [a.call.action for a in group] == [
        "AcceptVpcPeeringConnection",
        "CreateRoute",
        "ModifyVpcPeeringConnectionOptions",
    ]
    accept, route, dns = group
    assert accept.undo == Call("DeleteVpcPeeringConnection", {"VpcPeeringConnectionId": "pcx-req"})
    assert accept.recheck(snap).go
    # Re-read right before the call: accepted meanwhile, or now off the allowlist.
    active = REQUEST.model_copy(update={"status": "active"})
    assert "no longer pending" in accept.recheck(snapshot(active)).reason
    # The route and the DNS option wait for the peering to become active.
    assert route.recheck(snap).wait and dns.recheck(snap).wait
    assert route.recheck(snapshot(active, tables=(tagged,))).go
    # Without auto-accept there is nothing to do.
    assert plan_request(snap, REQUEST, verdict, Policy(Mode.FIX), ALLOW) == []


def test_a_change_is_announced_once_and_a_failure_keeps_its_identity() -> None:
    snap = snapshot(REQUEST)
    policy = Policy(Mode.FIX, auto_accept=True, accept_routes=False)
    [accept] = plan_request(snap, REQUEST, decide(snap, REQUEST, ALLOW), policy, ALLOW)
    t1, t2 = NOW, NOW + timedelta(hours=1)
    first = announcement(Outcome(Status.APPLIED, accept, "applied", t1))
    again = announcement(Outcome(Status.APPLIED, accept, "applied", t2))
    assert first is not None and again is not None
    assert first.check_id == "acceptance.accepted"
    assert first.fingerprint != again.fingerprint  # the same change made twice is news twice
    assert "aws ec2 delete-vpc-peering-connection --vpc-peering-connection-id pcx-req" in (
        first.detail
    )
    denied = Outcome(Status.FAILED, accept, "not permitted", t1, error_code="AccessDenied")
    f1, f2 = announcement(denied), announcement(denied.__class__(**{**denied.__dict__, "at": t2}))
    assert f1 is not None and f2 is not None
    assert f1.fingerprint == f2.fingerprint and f1.severity.value == "high"
    assert f1.check_id == "acceptance.failed"
    assert f1.remediation is not None and f1.remediation.action == "AcceptVpcPeeringConnection"
