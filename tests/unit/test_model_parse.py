"""The model's routing helpers, the describe-response parsers, and findings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from peerguard.aws import parse
from peerguard.domain.findings import Finding, Remediation, Severity, sort_findings
from peerguard.domain.model import Route, RouteTable, Snapshot
from tests.unit.netbuilder import ACCOUNT, NOW, OTHER_ACCOUNT, OTHER_REGION, REGION, Net


def table(*routes: tuple[str, str], state: str = "active") -> RouteTable:
    return RouteTable(
        route_table_id="rtb-1",
        vpc_id="vpc-1",
        routes=tuple(Route(destination=d, target=t, state=state) for d, t in routes),
    )


# -- longest-prefix match ----------------------------------------------------------------------


def test_lookup_picks_the_most_specific_route_containing_the_prefix() -> None:
    rt = table(
        ("0.0.0.0/0", "igw-1"),
        ("10.0.0.0/8", "tgw-1"),
        ("10.1.0.0/16", "pcx-1"),
        ("pl-123", "vpce-1"),
    )
    assert rt.lookup("10.1.2.0/24").target == "pcx-1"  # type: ignore[union-attr]
    assert rt.lookup("10.2.0.0/16").target == "tgw-1"  # type: ignore[union-attr]
    assert rt.lookup("10.0.0.0/7").target == "igw-1"  # type: ignore[union-attr]
    assert rt.lookup("2600::/64") is None  # IPv6 never matches IPv4 routes


def test_a_prefix_wider_than_the_route_is_not_matched_by_it() -> None:
    assert table(("10.1.0.0/16", "pcx-1")).lookup("10.0.0.0/8") is None


def test_routes_whole_needs_every_address_on_the_target() -> None:
    rt = table(("10.1.0.0/16", "pcx-1"), ("10.1.7.0/24", "tgw-1"), ("10.1.8.0/24", "pcx-1"))
    assert rt.routes_whole("10.1.8.0/24", "pcx-1")
    assert not rt.routes_whole("10.1.0.0/16", "pcx-1")  # 10.1.7.0/24 goes to the TGW
    assert [r.destination for r in rt.more_specific_than("10.1.0.0/16")] == [
        "10.1.7.0/24",
        "10.1.8.0/24",
    ]


def test_a_blackholed_route_routes_nothing() -> None:
    assert not table(("10.1.0.0/16", "pcx-1"), state="blackhole").routes_whole(
        "10.1.0.0/16", "pcx-1"
    )


def test_effective_table_is_the_explicit_association_else_the_main_table() -> None:
    net = Net()
    vpc = net.vpc("a", "10.0.0.0/16")
    own = net.table(vpc)
    on_main, on_own = net.subnet(vpc, "10.0.1.0/24"), net.subnet(vpc, "10.0.2.0/24", table=own)
    snap = net.snapshot()

    assert snap.effective_table(snap.subnets[on_main]).route_table_id == "rtb-a-main"  # type: ignore[union-attr]
    assert snap.effective_table(snap.subnets[on_own]).route_table_id == own  # type: ignore[union-attr]
    assert [s.subnet_id for s in snap.subnets_using(snap.route_tables[own])] == [on_own]


def test_peer_blocks_prefer_the_live_vpc_over_the_peering_record() -> None:
    net = Net()
    a, b = net.vpc("a", "10.0.0.0/16"), net.vpc("b", "10.1.0.0/16")
    pcx = net.peer(a, b)
    net.add_cidr(b, "100.64.0.0/16")  # associated after the peering was made
    snap = net.snapshot()
    assert snap.peer_cidrs(snap.peerings[pcx], a) == ("10.1.0.0/16", "100.64.0.0/16")
    unread = Net()
    ours = unread.vpc("a", "10.0.0.0/16")
    theirs = unread.vpc("b", "10.1.0.0/16", owner=OTHER_ACCOUNT)
    p = unread.peer(ours, theirs)
    snap2 = unread.snapshot()
    assert snap2.peer_cidrs(snap2.peerings[p], ours) == ("10.1.0.0/16",)


def test_merged_snapshots_union_what_was_read() -> None:
    east, west = Net(), Net(region=OTHER_REGION)
    east.vpc("a", "10.0.0.0/16")
    west.vpc("b", "10.1.0.0/16")
    e, w = east.snapshot(), west.snapshot()
    w = w.model_copy(update={"partial": frozenset({(OTHER_REGION, "subnets")}), "warnings": ("x",)})

    both = e.merged(w)

    assert set(both.vpcs) == {"vpc-a", "vpc-b"}
    assert both.readable == {(ACCOUNT, REGION), (ACCOUNT, OTHER_REGION)}
    assert both.partial == {(OTHER_REGION, "subnets")} and both.warnings == ("x",)


# -- parsers -----------------------------------------------------------------------------------


def test_vpc_keeps_only_associated_blocks() -> None:
    v = parse.vpc(
        {
            "VpcId": "vpc-1",
            "OwnerId": ACCOUNT,
            "CidrBlock": "10.0.0.0/16",
            "CidrBlockAssociationSet": [
                {"CidrBlock": "10.0.0.0/16", "CidrBlockState": {"State": "associated"}},
                {"CidrBlock": "10.5.0.0/16", "CidrBlockState": {"State": "disassociating"}},
            ],
            "Ipv6CidrBlockAssociationSet": [
                {"Ipv6CidrBlock": "2600:1f18::/56", "Ipv6CidrBlockState": {"State": "associated"}}
            ],
            "Tags": [{"Key": "peerguard:ignore", "Value": "TRUE"}],
        },
        REGION,
    )
    assert (v.cidr_blocks, v.ipv6_cidr_blocks) == (("10.0.0.0/16",), ("2600:1f18::/56",))
    assert v.ignored and v.region == REGION


def test_route_table_ignores_disassociated_subnets() -> None:
    rt = parse.route_table(
        {
            "RouteTableId": "rtb-1",
            "VpcId": "vpc-1",
            "Associations": [
                {"SubnetId": "subnet-1", "AssociationState": {"State": "associated"}},
                {"SubnetId": "subnet-2", "AssociationState": {"State": "disassociated"}},
            ],
            "Routes": [
                {"DestinationIpv6CidrBlock": "2600:1::/56", "VpcPeeringConnectionId": "pcx-1"},
                {"DestinationCidrBlock": "10.9.0.0/16", "TransitGatewayId": "tgw-1"},
                {"DestinationCidrBlock": "10.8.0.0/16"},  # no target: not a usable route
            ],
        }
    )
    assert rt.subnet_ids == ("subnet-1",) and not rt.is_main
    assert [(r.destination, r.target, r.destination_kwarg) for r in rt.routes] == [
        ("2600:1::/56", "pcx-1", "DestinationIpv6CidrBlock"),
        ("10.9.0.0/16", "tgw-1", "DestinationCidrBlock"),
    ]


def test_peering_reads_cidr_sets_regions_and_expiry() -> None:
    p = parse.peering(
        {
            "VpcPeeringConnectionId": "pcx-1",
            "Status": {"Code": "pending-acceptance", "Message": "Pending Acceptance"},
            "ExpirationTime": "2024-05-08T12:00:00.000Z",
            "RequesterVpcInfo": {
                "OwnerId": OTHER_ACCOUNT,
                "VpcId": "vpc-r",
                "Region": OTHER_REGION,
                "CidrBlock": "10.0.0.0/16",
                "CidrBlockSet": [{"CidrBlock": "10.0.0.0/16"}, {"CidrBlock": "10.50.0.0/16"}],
                "Ipv6CidrBlockSet": [{"Ipv6CidrBlock": "2600:1::/56"}],
            },
            "AccepterVpcInfo": {"OwnerId": ACCOUNT, "VpcId": "vpc-a"},
        },
        REGION,
    )
    assert p.expiration_time == datetime(2024, 5, 8, 12, tzinfo=UTC)
    assert p.requester.all_cidrs == ("10.0.0.0/16", "10.50.0.0/16", "2600:1::/56")
    assert (p.requester.region, p.accepter.region) == (OTHER_REGION, REGION)
    assert p.other("vpc-a") is p.requester and p.side_of("vpc-x") is None


# -- findings ------------------------------------------------------------------------------------


def finding(key: str = "", detail: str = "d", severity: Severity = Severity.LOW) -> Finding:
    return Finding(
        check_id="route.blackhole",
        severity=severity,
        resource_type="AWS::EC2::RouteTable",
        resource_id="rtb-1",
        account_id=ACCOUNT,
        region=REGION,
        title="t",
        detail=detail,
        key=key,
    )


def test_fingerprint_ignores_wording_but_not_the_key() -> None:
    assert finding(detail="a").fingerprint == finding(detail="b").fingerprint
    assert finding(key="10.0.0.0/16").fingerprint != finding(key="10.1.0.0/16").fingerprint
    assert finding(detail="a").content_hash != finding(detail="b").content_hash
    dumped = finding(key="k").model_dump(mode="json")
    assert "key" not in dumped and len(dumped["fingerprint"]) == 32


def test_findings_sort_most_severe_first() -> None:
    low, high = finding(key="a"), finding(key="b", severity=Severity.HIGH)
    assert sort_findings([low, high]) == [high, low]


def test_severity_parse_names_the_choices() -> None:
    assert Severity.parse("HIGH") is Severity.HIGH
    with pytest.raises(ValueError, match=r"unknown severity 'urgent'.*info, low"):
        Severity.parse("urgent")


def test_remediation_as_a_cli_command() -> None:
    r = Remediation(
        action="CreateRoute",
        parameters={
            "RouteTableId": "rtb-1",
            "DestinationCidrBlock": "10.0.0.0/16",
            "VpcPeeringConnectionId": "pcx-1",
        },
    )
    assert r.cli() == (
        "aws ec2 create-route --route-table-id rtb-1 --destination-cidr-block 10.0.0.0/16 "
        "--vpc-peering-connection-id pcx-1"
    )


def test_snapshot_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        Snapshot(account_id=ACCOUNT, taken_at=NOW, readable=frozenset(), surprise=1)  # type: ignore[call-arg]
