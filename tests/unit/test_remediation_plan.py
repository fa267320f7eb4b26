"""Planning remediation (pure): exact calls, undo calls, modes, and the never-widen rail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from peerguard.domain.catalogue import entry
from peerguard.domain.checks import CheckContext, run_checks
from peerguard.domain.findings import Call, Finding, Remediation
from peerguard.domain.model import (
    IGNORE_TAG,
    PeeringConnection,
    PeeringSide,
    Route,
    RouteTable,
    Snapshot,
    Subnet,
    Vpc,
)
from peerguard.domain.plans.actions import Mode
from peerguard.domain.plans.rails import refusal
from peerguard.domain.plans.remediation import RemediationConfig, plan, plan_all

ACCOUNT, OTHER, REGION = "111111111111", "222222222222", "us-east-1"
PCX, DEAD = "pcx-ab", "pcx-dead"
FIX = RemediationConfig(default_mode=Mode.FIX, fix_dns=True)
CTX = CheckContext()


def network(
    *,
    rt_b_routes: tuple[Route, ...] = (),
    tags: dict[str, dict[str, str]] | None = None,
    dns: bool = True,
    pcx_status: str = "active",
) -> Snapshot:
    """A (10.0/16) routes to B (10.1/16) via PCX; B's table `rtb-b` lacks the return route.

    A's table also holds a route through a deleted peering (a blackhole).
    """
    tags = tags or {}
    vpc_a = Vpc(vpc_id="vpc-a", owner_id=ACCOUNT, region=REGION, cidr_blocks=("10.0.0.0/16",))
    vpc_b = Vpc(
        vpc_id="vpc-b",
        owner_id=ACCOUNT,
        region=REGION,
        cidr_blocks=("10.1.0.0/16",),
        tags=tags.get("vpc-b", {}),
    )
    rt_a = RouteTable(
        route_table_id="rtb-a",
        vpc_id="vpc-a",
        owner_id=ACCOUNT,
        subnet_ids=("subnet-a",),
        routes=(
            Route(destination="10.0.0.0/16", target="local"),
            Route(destination="10.1.0.0/16", target=PCX),
            Route(destination="10.9.0.0/16", target=DEAD),
        ),
        tags=tags.get("rtb-a", {}),
    )
    rt_b = RouteTable(
        route_table_id="rtb-b",
        vpc_id="vpc-b",
        owner_id=ACCOUNT,
        subnet_ids=("subnet-b",),
        routes=(Route(destination="10.1.0.0/16", target="local"), *rt_b_routes),
        tags=tags.get("rtb-b", {}),
    )

    def side(vpc: Vpc) -> PeeringSide:
        return PeeringSide(
            owner_id=vpc.owner_id,
            vpc_id=vpc.vpc_id,
            region=REGION,
            cidr_blocks=vpc.cidr_blocks,
            allow_dns_from_remote=dns,
        )

    pcx = PeeringConnection(
        pcx_id=PCX,
        status=pcx_status,
        requester=side(vpc_a),
        accepter=side(vpc_b),
        tags=tags.get(PCX, {}),
    )
    dead = PeeringConnection(
        pcx_id=DEAD,
        status="deleted",
        requester=side(vpc_a),
        accepter=PeeringSide(owner_id=ACCOUNT, vpc_id="vpc-gone", region=REGION),
    )
    return Snapshot(
        account_id=ACCOUNT,
        taken_at=datetime(2025, 1, 1, tzinfo=UTC),
        readable=frozenset({(ACCOUNT, REGION)}),
        vpcs={"vpc-a": vpc_a, "vpc-b": vpc_b},
        subnets={
            "subnet-a": Subnet(subnet_id="subnet-a", vpc_id="vpc-a", cidr_block="10.0.1.0/24"),
            "subnet-b": Subnet(subnet_id="subnet-b", vpc_id="vpc-b", cidr_block="10.1.1.0/24"),
        },
        route_tables={"rtb-a": rt_a, "rtb-b": rt_b},
        peerings={PCX: pcx, DEAD: dead},
    )


def one(snap: Snapshot, check_id: str) -> Finding:
    found = [f for f in run_checks(snap, checks=[entry(check_id)])]
    assert len(found) == 1, found
    return found[0]


def test_missing_return_route_plans_the_mirror_route_and_its_undo() -> None:
    snap = network()
    action = plan(one(snap, "route.missing_reciprocal"), snap, FIX, CTX)
    assert action is not None
    assert action.automatic and action.mode is Mode.FIX
    assert action.call == Call(
        "CreateRoute",
        {
            "RouteTableId": "rtb-b",
            "DestinationCidrBlock": "10.0.0.0/16",
            "VpcPeeringConnectionId": PCX,
        },
    )
    assert action.undo == Call(
        "DeleteRoute", {"RouteTableId": "rtb-b", "DestinationCidrBlock": "10.0.0.0/16"}
    )
    assert action.before == {"route": None}


def test_blackhole_plans_delete_with_an_undo_that_restores_the_old_target() -> None:
    snap = network()
    action = plan(one(snap, "route.blackhole"), snap, FIX, CTX)
    assert action is not None
    assert action.automatic
    assert action.call == Call(
        "DeleteRoute", {"RouteTableId": "rtb-a", "DestinationCidrBlock": "10.9.0.0/16"}
    )
    assert action.undo == Call(
        "CreateRoute",
        {
            "RouteTableId": "rtb-a",
            "DestinationCidrBlock": "10.9.0.0/16",
            "VpcPeeringConnectionId": DEAD,
        },
    )
    assert action.before is not None and action.before["route"]["target"] == DEAD


def test_dns_fix_only_when_configured_and_undo_turns_it_off() -> None:
    snap = network(dns=False, rt_b_routes=(Route(destination="10.0.0.0/16", target=PCX),))
    findings = [f for f in run_checks(snap) if f.check_id == "peering.dns_resolution_disabled"]
    assert len(findings) == 2  # both sides are in this account

    off = plan_all(findings, snap, RemediationConfig(default_mode=Mode.FIX), CTX)
    assert [a.automatic for a in off] == [False, False]
    assert all("fix_dns" in a.reason for a in off)

    on = plan_all(findings, snap, FIX, CTX)
    assert all(a.automatic for a in on)
    keys = set()
    for a in on:
        call, undo = a.call, a.undo
        assert call is not None and undo is not None
        (key,) = [k for k in call.parameters if k != "VpcPeeringConnectionId"]
        keys.add(key)
        assert call.parameters[key] == {"AllowDnsResolutionFromRemoteVpc": True}
        assert undo.parameters == {
            "VpcPeeringConnectionId": PCX,
            key: {"AllowDnsResolutionFromRemoteVpc": False},
        }
    assert keys == {"RequesterPeeringConnectionOptions", "AccepterPeeringConnectionOptions"}


def test_mode_comes_from_default_with_per_check_overrides() -> None:
    snap = network()
    config = RemediationConfig(Mode.DRY_RUN, {"route.blackhole": Mode.FIX})
    modes = {a.subject.check_id: a.mode for a in plan_all(run_checks(snap), snap, config, CTX)}
    assert modes["route.blackhole"] is Mode.FIX
    assert modes["route.missing_reciprocal"] is Mode.DRY_RUN


@pytest.mark.parametrize(
    ("tagged", "check_id"),
    [
        ("vpc-b", "route.missing_reciprocal"),
        ("rtb-b", "route.missing_reciprocal"),
        (PCX, "route.missing_reciprocal"),
        ("rtb-a", "route.blackhole"),
    ],
)
def test_ignore_tag_on_vpc_table_or_peering_means_hands_off(tagged: str, check_id: str) -> None:
    snap = network(tags={tagged: {IGNORE_TAG: "true"}})
    action = plan(one(snap, check_id), snap, FIX, CTX)
    assert action is not None
    assert action.ignored and not action.automatic
    assert tagged in action.reason


def test_conflicting_route_makes_the_return_route_notify_only_with_the_reason() -> None:
    # Given B's table sends 10.0.0.0/8 to a NAT gateway: the mirror route would steal from it.
    snap = network(rt_b_routes=(Route(destination="10.0.0.0/8", target="nat-1"),))
    action = plan(one(snap, "route.missing_reciprocal"), snap, FIX, CTX)
    assert action is not None
    assert not action.automatic and not action.refused
    assert "10.0.0.0/8 -> nat-1" in action.reason
    assert action.call is not None and action.call.action == "CreateRoute"


def test_never_fixed_checks_only_propose_their_call() -> None:
    snap = network()
    finding = one(snap, "route.missing_reciprocal").model_copy(
        update={
            "check_id": "peering.not_allowlisted",
            "remediation": Remediation(
                action="DeleteVpcPeeringConnection", parameters={"VpcPeeringConnectionId": PCX}
            ),
        }
    )
    action = plan(finding, snap, FIX, CTX)
    assert action is not None
    assert not action.automatic
    assert action.call == Call("DeleteVpcPeeringConnection", {"VpcPeeringConnectionId": PCX})
    assert plan(finding.model_copy(update={"remediation": None}), snap, FIX, CTX) is None


@pytest.mark.parametrize(
    ("call", "why"),
    [
        # A route wider than the peer VPC (edge-to-edge, internet through the peer).
        (
            Call(
                "CreateRoute",
                {
                    "RouteTableId": "rtb-b",
                    "DestinationCidrBlock": "0.0.0.0/0",
                    "VpcPeeringConnectionId": PCX,
                },
            ),
            "not inside the peer VPC",
        ),
        # Through a peering that is not the one the forward route uses / not active.
        (
            Call(
                "CreateRoute",
                {
                    "RouteTableId": "rtb-b",
                    "DestinationCidrBlock": "10.0.0.0/16",
                    "VpcPeeringConnectionId": DEAD,
                },
            ),
            "not an active peering",
        ),
        # Any other target than the peering.
        (
            Call(
                "CreateRoute",
                {
                    "RouteTableId": "rtb-b",
                    "DestinationCidrBlock": "10.0.0.0/16",
                    "GatewayId": "igw-1",
                },
            ),
            "must name exactly",
        ),
        # Deleting a route that still carries traffic.
        (
            Call("DeleteRoute", {"RouteTableId": "rtb-a", "DestinationCidrBlock": "10.1.0.0/16"}),
            "still carries traffic",
        ),
        (
            Call(
                "ModifyVpcPeeringConnectionOptions",
                {
                    "VpcPeeringConnectionId": PCX,
                    "AccepterPeeringConnectionOptions": {"AllowDnsResolutionFromRemoteVpc": False},
                },
            ),
            "only AllowDnsResolutionFromRemoteVpc=true",
        ),
        (Call("AuthorizeSecurityGroupIngress", {"GroupId": "sg-1"}), "not a change PeerGuard"),
    ],
)
def test_refusal_blocks_anything_that_could_widen_access(call: Call, why: str) -> None:
    reason = refusal(call, network())
    assert reason is not None and why in reason


def test_create_route_refused_without_a_forward_route_through_that_peering() -> None:
    snap = network()
    rt_a = snap.route_tables["rtb-a"]
    no_forward = snap.model_copy(
        update={
            "route_tables": {
                **snap.route_tables,
                "rtb-a": rt_a.model_copy(update={"routes": rt_a.routes[:1]}),
            }
        }
    )
    call = Call(
        "CreateRoute",
        {
            "RouteTableId": "rtb-b",
            "DestinationCidrBlock": "10.0.0.0/16",
            "VpcPeeringConnectionId": PCX,
        },
    )
    assert refusal(call, snap) is None
    assert "no route of the peer VPC uses" in (refusal(call, no_forward) or "")


def test_dns_option_refused_for_the_other_accounts_side() -> None:
    snap = network()
    pcx = snap.peerings[PCX]
    foreign = pcx.model_copy(
        update={"accepter": pcx.accepter.model_copy(update={"owner_id": OTHER})}
    )
    snap = snap.model_copy(update={"peerings": {**snap.peerings, PCX: foreign}})
    call = Call(
        "ModifyVpcPeeringConnectionOptions",
        {
            "VpcPeeringConnectionId": PCX,
            "AccepterPeeringConnectionOptions": {"AllowDnsResolutionFromRemoteVpc": True},
        },
    )
    assert f"belongs to account {OTHER}" in (refusal(call, snap) or "")


def test_tampered_finding_is_refused_not_applied() -> None:
    # A fixable check whose proposed call was altered to a supernet is refused by the planner.
    snap = network()
    f = one(snap, "route.missing_reciprocal")
    assert f.remediation is not None
    bad = f.model_copy(
        update={
            "remediation": f.remediation.model_copy(
                update={
                    "parameters": {**f.remediation.parameters, "DestinationCidrBlock": "10.0.0.0/8"}
                }
            )
        }
    )
    action = plan(bad, snap, FIX, CTX)
    assert action is not None
    assert action.refused and not action.automatic
    assert "10.0.0.0/8 is not inside the peer VPC" in action.reason
