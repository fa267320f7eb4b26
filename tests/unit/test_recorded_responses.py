"""Recorded EC2 responses (Cloud Custodian's missing-route flight data) through parse + checks.

Custodian's tests (tests/test_vpc.py, PeeringConnectionTest) expect its VPC-level
`missing-route` filter to return pcx-36096b5f for `test_peer_miss_route_filter` (no route
on either side) and `..._one` (only the requester routes), and nothing for
`..._not_found` (each VPC has some table routing through the peering).

The recordings hold only DescribeVpcPeeringConnections and DescribeRouteTables: VPCs are
synthesised from local routes and the peering's CidrBlock, and no subnet CIDR is known.
PeerGuard judges return routes per subnet, so with the recordings alone
route.missing_reciprocal cannot fire; the table-level checks can. The last tests add
subnet CIDRs (an assumption, marked as such) to the subnets the associations name, to
compare the per-subnet verdict with Custodian's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from peerguard.aws import parse
from peerguard.domain.checks import CheckContext, run_checks
from peerguard.domain.findings import Finding
from peerguard.domain.model import Snapshot
from tests.realdata import REALDATA, required

RESPONSES = REALDATA / "ec2-api-responses"
ACCOUNT = "619193117841"  # the recordings' account (Custodian's config account_id)
REGION = "us-east-1"  # Custodian's default test region; the 2017 responses name none
PCX = "pcx-36096b5f"
REQUESTER, ACCEPTER = "vpc-cb3e8cae", "vpc-1cc8e779"  # 172.20.0.0/16 -> 10.0.0.0/16


def recorded(flight: str, op: str) -> dict[str, Any]:
    path = required(RESPONSES / f"custodian__{flight}__ec2.{op}_1.json")
    wrapper = json.loads(path.read_text())
    assert wrapper["status_code"] == 200
    return wrapper["data"]  # type: ignore[no-any-return]


def snapshot(flight: str, subnets: list[dict[str, Any]] | None = None) -> Snapshot:
    return parse.snapshot_from_responses(
        ACCOUNT,
        REGION,
        peerings=[recorded(flight, "DescribeVpcPeeringConnections")],
        route_tables=[recorded(flight, "DescribeRouteTables")],
        subnets=[{"Subnets": subnets}] if subnets else [],
    )


def by_check(findings: list[Finding]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in findings:
        out.setdefault(f.check_id, []).append(f.resource_id)
    return out


FLIGHTS = [
    "test_peer_miss_route_filter",
    "test_peer_miss_route_filter_one",
    "test_peer_miss_route_filter_not_found",
]


# -- parsing ----------------------------------------------------------------------------------


def test_peering_is_parsed_with_both_sides_and_options() -> None:
    snap = snapshot("test_peer_miss_route_filter")
    pcx = snap.peerings[PCX]
    assert (pcx.status, pcx.status_message, pcx.tags) == ("active", "Active", {"Name": "notable"})
    assert (pcx.requester.vpc_id, pcx.requester.cidr_blocks) == (REQUESTER, ("172.20.0.0/16",))
    assert (pcx.accepter.vpc_id, pcx.accepter.cidr_blocks) == (ACCEPTER, ("10.0.0.0/16",))
    assert {s.owner_id for s in pcx.sides} == {ACCOUNT}
    assert {s.region for s in pcx.sides} == {REGION}  # no Region field in 2017: the default
    assert pcx.requester.allow_dns_from_remote is False


def test_route_tables_keep_targets_states_associations_and_prefix_lists() -> None:
    snap = snapshot("test_peer_miss_route_filter")
    requester = snap.route_tables["rtb-e888328d"]
    assert requester.is_main and requester.subnet_ids == ("subnet-3766a96e",)
    eni = requester.lookup("10.244.1.0/24")
    assert eni is not None and (eni.target, eni.state) == ("eni-961cc8ce", "blackhole")
    default = requester.lookup("8.8.8.8/32")
    assert default is not None and default.target == "igw-5bce113e"

    explicit = snap.route_tables["rtb-0c91a369"]
    assert not explicit.is_main and explicit.subnet_ids == ("subnet-d5fecdb0",)
    pl = [r for r in explicit.routes if not r.is_cidr]
    assert [(r.destination, r.target, r.destination_kwarg) for r in pl] == [
        ("pl-68a54001", "vpce-73de3e1a", "DestinationPrefixListId")
    ]
    # Effective tables: explicit association first, else the VPC's main table
    assert snap.main_table(ACCEPTER) is snap.route_tables["rtb-0d91a368"]


def test_vpcs_are_synthesised_from_local_routes_and_the_peering() -> None:
    snap = snapshot("test_peer_miss_route_filter")
    assert {v: snap.vpcs[v].cidr_blocks for v in snap.vpcs} == {
        "vpc-399e3d52": ("172.31.0.0/16",),
        REQUESTER: ("172.20.0.0/16",),
        ACCEPTER: ("10.0.0.0/16",),
    }
    assert all((v.owner_id, v.region) == (ACCOUNT, REGION) for v in snap.vpcs.values())
    assert snap.subnets == {}


def test_described_vpcs_win_over_synthesised_ones() -> None:
    described = {"Vpcs": [{"VpcId": ACCEPTER, "OwnerId": ACCOUNT, "CidrBlock": "10.0.0.0/16",
                           "CidrBlockAssociationSet": [
                               {"CidrBlock": "10.0.0.0/16",
                                "CidrBlockState": {"State": "associated"}},
                               {"CidrBlock": "100.64.0.0/16",
                                "CidrBlockState": {"State": "associated"}},
                               {"CidrBlock": "100.65.0.0/16",
                                "CidrBlockState": {"State": "disassociated"}},
                           ]}]}  # fmt: skip
    snap = parse.snapshot_from_responses(
        ACCOUNT,
        REGION,
        peerings=[recorded("test_peer_miss_route_filter", "DescribeVpcPeeringConnections")],
        vpcs=[described],
    )
    assert snap.vpcs[ACCEPTER].cidr_blocks == ("10.0.0.0/16", "100.64.0.0/16")
    assert snap.vpcs[REQUESTER].cidr_blocks == ("172.20.0.0/16",)


# -- what the checks find in the recordings ----------------------------------------------------


def test_no_route_on_either_side_is_an_unused_peering() -> None:
    # Custodian: pcx-36096b5f is missing routes. PeerGuard: peering.no_routes, and no
    # route.* finding (nothing is routed through it, so nothing is asymmetric).
    found = by_check(run_checks(snapshot("test_peer_miss_route_filter"), CheckContext()))
    assert found == {
        "peering.no_routes": [PCX],
        "peering.dns_resolution_disabled": [PCX, PCX],  # both sides disallow it
    }


@pytest.mark.parametrize("flight", FLIGHTS)
def test_recordings_have_no_route_level_problems_at_table_level(flight: str) -> None:
    # The eni- routes are AWS-marked blackholes but not peering routes; every pcx route
    # is inside the peer VPC; nothing shadows it; both sides are this account and region.
    found = run_checks(snapshot(flight), CheckContext())
    assert not [f for f in found if f.check_id.startswith("route.")]


@pytest.mark.parametrize("flight", FLIGHTS[1:])
def test_a_route_on_one_side_means_the_peering_is_used(flight: str) -> None:
    found = by_check(run_checks(snapshot(flight), CheckContext()))
    assert "peering.no_routes" not in found


def test_dns_findings_name_each_side_with_the_option_to_set() -> None:
    found = run_checks(snapshot("test_peer_miss_route_filter_one"), CheckContext())
    dns = sorted(
        (f for f in found if f.check_id == "peering.dns_resolution_disabled"),
        key=lambda f: f.vpc_id or "",
    )
    assert [f.vpc_id for f in dns] == [ACCEPTER, REQUESTER]
    assert [next(iter(f.remediation.parameters.keys() - {"VpcPeeringConnectionId"}))
            for f in dns if f.remediation] == [
        "AccepterPeeringConnectionOptions",
        "RequesterPeeringConnectionOptions",
    ]  # fmt: skip


def test_the_recorded_pcx_becomes_a_blackhole_once_it_is_gone() -> None:
    # Same route tables, but the peering no longer listed: its routes are dropped traffic.
    snap = parse.snapshot_from_responses(
        ACCOUNT,
        REGION,
        route_tables=[recorded("test_peer_miss_route_filter_not_found", "DescribeRouteTables")],
    )
    found = run_checks(snap, CheckContext())
    assert sorted((f.check_id, f.resource_id) for f in found) == [
        ("route.blackhole", "rtb-0d91a368"),
        ("route.blackhole", "rtb-e888328d"),
    ]


# -- with assumed subnet CIDRs: the per-subnet verdict -----------------------------------------

# ASSUMPTION (not in the recordings): a /24 at the start of each VPC for the two subnets
# that the route table associations name.
ASSUMED_SUBNETS = [
    {"SubnetId": "subnet-3766a96e", "VpcId": REQUESTER, "CidrBlock": "172.20.1.0/24"},
    {"SubnetId": "subnet-d5fecdb0", "VpcId": ACCEPTER, "CidrBlock": "10.0.1.0/24"},
]


def test_one_sided_route_is_a_missing_return_route_on_the_subnet_table() -> None:
    # Custodian flags the peering; PeerGuard names the accepter subnet's table and the call.
    found = run_checks(snapshot("test_peer_miss_route_filter_one", ASSUMED_SUBNETS), CheckContext())
    [f] = [f for f in found if f.check_id == "route.missing_reciprocal"]
    assert (f.resource_id, f.vpc_id, f.peering_connection_id) == ("rtb-0c91a369", ACCEPTER, PCX)
    assert f.remediation is not None and f.remediation.parameters == {
        "RouteTableId": "rtb-0c91a369",
        "DestinationCidrBlock": "172.20.0.0/16",
        "VpcPeeringConnectionId": PCX,
    }
    # 0.0.0.0/0 -> igw and the prefix-list route do not conflict with the mirror route
    assert f.remediation.automatic


def test_routes_in_both_vpcs_can_still_miss_a_subnet() -> None:
    # Difference from Custodian, which returns nothing here: the accepter's main table
    # routes back, but subnet-d5fecdb0 is explicitly associated with rtb-0c91a369, which
    # does not, so replies from that subnet to the requester are dropped.
    found = run_checks(
        snapshot("test_peer_miss_route_filter_not_found", ASSUMED_SUBNETS), CheckContext()
    )
    route_findings = [(f.check_id, f.resource_id) for f in found if f.check_id.startswith("route.")]
    assert route_findings == [("route.missing_reciprocal", "rtb-0c91a369")]


def test_no_route_anywhere_is_not_a_missing_return_route() -> None:
    found = run_checks(snapshot("test_peer_miss_route_filter", ASSUMED_SUBNETS), CheckContext())
    assert "route.missing_reciprocal" not in by_check(found)
