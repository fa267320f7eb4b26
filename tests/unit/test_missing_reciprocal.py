"""route.missing_reciprocal: per subnet, longest-prefix match, the exact CreateRoute call."""

from __future__ import annotations

import pytest

from peerguard.domain.findings import Finding, Severity
from tests.unit.netbuilder import OTHER_ACCOUNT, OTHER_REGION, REGION, Net, run

CHECK = "route.missing_reciprocal"


def two_vpcs() -> tuple[Net, str, str]:
    """app 10.0.0.0/16 (requester) and db 10.1.0.0/16, one subnet each on the main table."""
    net = Net()
    app = net.vpc("app", "10.0.0.0/16")
    db = net.vpc("db", "10.1.0.0/16")
    net.subnet(app, "10.0.1.0/24")
    net.subnet(db, "10.1.1.0/24")
    return net, app, db


def missing(net: Net) -> list[Finding]:
    return run(CHECK, net.snapshot())


def create_route(f: Finding) -> dict[str, object]:
    assert f.remediation is not None and f.remediation.action == "CreateRoute"
    return f.remediation.parameters


def test_symmetric_routes_have_no_finding() -> None:
    net, app, db = two_vpcs()
    net.peer_routed(app, db)
    assert missing(net) == []


def test_forward_route_without_return_route_names_the_table_and_the_call() -> None:
    # Given app routes to db through the peering but db's main table has no way back
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)

    # When the check runs
    [f] = missing(net)

    # Then the finding is on db's main table, with the mirror route to add
    assert (f.severity, f.resource_type) == (Severity.HIGH, "AWS::EC2::RouteTable")
    assert (f.resource_id, f.vpc_id, f.peering_connection_id) == ("rtb-db-main", db, pcx)
    assert "subnet-app-1" in f.detail and "subnet-db-1" in f.detail
    assert create_route(f) == {
        "RouteTableId": "rtb-db-main",
        "DestinationCidrBlock": "10.0.0.0/16",
        "VpcPeeringConnectionId": pcx,
    }
    assert f.remediation is not None and f.remediation.automatic


def test_gaps_are_found_in_both_directions() -> None:
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    app_private = net.table(app)
    net.subnet(app, "10.0.2.0/24", table=app_private)
    net.route_to_peer(net.main(app), pcx)  # app's public subnet -> db
    net.route_to_peer(net.main(db), pcx)  # db -> all of app, but app_private has no way back

    [f] = missing(net)

    assert f.resource_id == app_private
    assert create_route(f)["DestinationCidrBlock"] == "10.1.0.0/16"


def test_only_the_subnet_whose_table_lacks_the_route_is_reported() -> None:
    # db has two subnets on two tables: one routes back, the other does not
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)
    good, bad = net.table(db), net.table(db)
    net.subnet(db, "10.1.2.0/24", table=good)
    net.subnet(db, "10.1.3.0/24", table=bad)
    net.route_to_peer(good, pcx)
    net.route_to_peer(net.main(db), pcx)

    [f] = missing(net)

    assert f.resource_id == bad
    assert "subnet-db-3" in f.detail and "subnet-db-2" not in f.detail


def test_explicit_association_overrides_a_correct_main_table() -> None:
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)
    net.route_to_peer(net.main(db), pcx)
    isolated = net.table(db)
    net.subnet(db, "10.1.9.0/24", table=isolated)

    assert [f.resource_id for f in missing(net)] == [isolated]


def test_main_table_used_by_unassociated_subnets_is_checked_too() -> None:
    net, app, db = two_vpcs()  # subnet-db-1 uses the main table
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)
    explicit = net.table(db)
    net.subnet(db, "10.1.2.0/24", table=explicit)
    net.route_to_peer(explicit, pcx)

    [f] = missing(net)

    assert f.resource_id == "rtb-db-main"
    assert "subnet-db-1" in f.detail


def test_a_table_no_subnet_uses_needs_no_return_route() -> None:
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)
    net.route_to_peer(net.main(db), pcx)
    net.table(db)  # spare table, no associations
    assert missing(net) == []


def test_source_subnet_without_a_peering_route_expects_no_reply() -> None:
    # app's only route to db is in a table no subnet uses: nothing is sent, nothing is missing
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    net.route_to_peer(net.table(app), pcx)
    assert missing(net) == []


def test_secondary_cidr_block_needs_its_own_return_route() -> None:
    # app has a secondary block with a subnet in it; db routes only app's primary block back
    net, app, db = two_vpcs()
    net.add_cidr(app, "100.64.0.0/16")
    net.subnet(app, "100.64.1.0/24")
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)
    net.route(net.main(db), "10.0.0.0/16", pcx)

    [f] = missing(net)

    assert f.resource_id == "rtb-db-main"
    assert create_route(f)["DestinationCidrBlock"] == "100.64.0.0/16"
    assert "subnet-app-2" in f.detail and "subnet-app-1" not in f.detail


def test_secondary_block_routed_on_both_sides_is_fine() -> None:
    net, app, db = two_vpcs()
    net.add_cidr(db, "100.65.0.0/16")
    net.subnet(db, "100.65.4.0/24")
    net.peer_routed(app, db)
    assert missing(net) == []


def test_partial_return_route_covers_only_some_source_subnets() -> None:
    # db routes back only 10.0.1.0/24 of app's /16; app's second subnet gets no replies
    net, app, db = two_vpcs()
    net.subnet(app, "10.0.2.0/24")
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)
    net.route(net.main(db), "10.0.1.0/24", pcx)

    [f] = missing(net)

    assert "subnet-app-2" in f.detail and "subnet-app-1" not in f.detail
    # The natural fix is the whole block containing the source subnet
    assert create_route(f)["DestinationCidrBlock"] == "10.0.0.0/16"
    assert f.remediation is not None and f.remediation.automatic


def test_return_route_to_a_slice_of_the_source_subnet_is_not_enough() -> None:
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)
    net.route(net.main(db), "10.0.1.0/25", pcx)  # half of subnet-app-1 only
    [f] = missing(net)
    assert create_route(f)["DestinationCidrBlock"] == "10.0.0.0/16"


def test_partial_forward_route_only_needs_returns_from_the_subnets_it_reaches() -> None:
    # app routes only 10.1.5.0/24 (one /24 of db's /16) through the peering
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    reached, not_reached = net.table(db), net.table(db)
    net.subnet(db, "10.1.5.0/24", table=reached)
    net.subnet(db, "10.1.6.0/24", table=not_reached)
    net.route(net.main(app), "10.1.5.0/24", pcx)

    found = missing(net)

    assert [f.resource_id for f in found] == [reached]


def test_forward_route_to_part_of_a_large_subnet_still_reaches_it() -> None:
    net = Net()
    app, db = net.vpc("app", "10.0.0.0/16"), net.vpc("db", "10.1.0.0/16")
    net.subnet(app, "10.0.1.0/24")
    net.subnet(db, "10.1.0.0/20")
    pcx = net.peer(app, db)
    net.route(net.main(app), "10.1.5.0/24", pcx)
    assert [f.resource_id for f in missing(net)] == ["rtb-db-main"]


def test_return_route_through_the_wrong_peering_is_not_automatic() -> None:
    # db routes app's block through its peering with a third VPC
    net, app, db = two_vpcs()
    other = net.vpc("other", "10.2.0.0/16")
    pcx = net.peer(app, db)
    wrong = net.peer(db, other)
    net.route_to_peer(net.main(app), pcx)
    net.route(net.main(db), "10.0.0.0/16", wrong)

    [f] = missing(net)

    assert (f.resource_id, f.peering_connection_id) == ("rtb-db-main", pcx)
    assert f"goes to {wrong} instead" in f.detail
    assert create_route(f)["VpcPeeringConnectionId"] == pcx
    assert f.remediation is not None and not f.remediation.automatic
    assert wrong in f.remediation.reason


def test_more_specific_route_elsewhere_blocks_the_automatic_fix() -> None:
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)
    net.route(net.main(db), "10.0.1.0/24", "tgw-0123")

    [f] = missing(net)

    assert f.remediation is not None and not f.remediation.automatic
    assert "10.0.1.0/24 -> tgw-0123" in f.remediation.reason


def test_a_default_route_to_the_internet_does_not_block_the_fix() -> None:
    # A public subnet's table: 0.0.0.0/0 -> igw cannot carry traffic to the peer anyway,
    # and the mirror route is more specific, so adding it is safe.
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)
    net.route(net.main(db), "0.0.0.0/0", "igw-0abc")
    net.route(net.main(db), "::/0", "eigw-0abc")

    [f] = missing(net)

    assert f.remediation is not None and f.remediation.automatic, f.remediation.reason


def test_a_default_route_to_a_transit_gateway_blocks_the_automatic_fix() -> None:
    # Replies may be meant to go through the TGW: a person decides.
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)
    net.route(net.main(db), "0.0.0.0/0", "tgw-0123")

    [f] = missing(net)

    assert f.remediation is not None and not f.remediation.automatic
    assert "tgw-0123" in f.remediation.reason


def test_blackholed_return_route_counts_as_missing() -> None:
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)
    net.route(net.main(db), "10.0.0.0/16", pcx, state="blackhole")
    assert [f.resource_id for f in missing(net)] == ["rtb-db-main"]


def test_ipv6_return_route_uses_the_ipv6_parameter() -> None:
    net = Net()
    app = net.vpc("app", "10.0.0.0/16", ipv6=("2600:1f18:aa00::/56",))
    db = net.vpc("db", "10.1.0.0/16", ipv6=("2600:1f18:bb00::/56",))
    net.subnet(app, "10.0.1.0/24", ipv6=("2600:1f18:aa00:1::/64",))
    net.subnet(db, "10.1.1.0/24", ipv6=("2600:1f18:bb00:1::/64",))
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)  # both families
    net.route(net.main(db), "10.0.0.0/16", pcx)  # IPv4 only

    [f] = missing(net)

    assert create_route(f) == {
        "RouteTableId": "rtb-db-main",
        "DestinationIpv6CidrBlock": "2600:1f18:aa00::/56",
        "VpcPeeringConnectionId": pcx,
    }


def test_ipv6_only_subnets_routed_both_ways_are_fine() -> None:
    net = Net()
    app = net.vpc("app", "10.0.0.0/16", ipv6=("2600:1f18:aa00::/56",))
    db = net.vpc("db", "10.1.0.0/16", ipv6=("2600:1f18:bb00::/56",))
    net.subnet(app, None, ipv6=("2600:1f18:aa00:1::/64",))
    net.subnet(db, None, ipv6=("2600:1f18:bb00:1::/64",))
    net.peer_routed(app, db)
    assert missing(net) == []


def test_one_finding_per_table_and_block_however_many_subnets() -> None:
    net, app, db = two_vpcs()
    for i in range(2, 5):
        net.subnet(app, f"10.0.{i}.0/24")
        net.subnet(db, f"10.1.{i}.0/24")
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)

    [f] = missing(net)

    assert all(f"subnet-app-{i}" in f.detail for i in range(1, 5))


def test_each_gap_has_its_own_fingerprint() -> None:
    net, app, db = two_vpcs()
    net.add_cidr(app, "100.64.0.0/16")
    net.subnet(app, "100.64.1.0/24")
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)

    found = missing(net)

    assert sorted(create_route(f)["DestinationCidrBlock"] for f in found) == [  # type: ignore[type-var]
        "10.0.0.0/16",
        "100.64.0.0/16",
    ]
    assert len({f.fingerprint for f in found}) == 2


@pytest.mark.parametrize("status", ["pending-acceptance", "deleted", "rejected", "expired"])
def test_only_active_peerings_need_return_routes(status: str) -> None:
    net, app, db = two_vpcs()
    pcx = net.peer(app, db, status=status)
    net.route_to_peer(net.main(app), pcx)
    assert missing(net) == []


@pytest.mark.parametrize(("owner", "region"), [(OTHER_ACCOUNT, REGION), (None, OTHER_REGION)])
def test_other_side_that_could_not_be_read_is_not_judged(owner: str | None, region: str) -> None:
    net = Net()
    app = net.vpc("app", "10.0.0.0/16")
    net.subnet(app, "10.0.1.0/24")
    db = net.vpc("db", "10.1.0.0/16", owner=owner, region=region)
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)

    assert missing(net) == []
    assert [f.resource_id for f in run("route.peer_side_unverified", net.snapshot())] == [pcx]


def test_other_region_that_was_read_is_judged() -> None:
    net = Net()
    app = net.vpc("app", "10.0.0.0/16")
    db = net.vpc("db", "10.1.0.0/16", region=OTHER_REGION)
    net.readable.add((net.account, OTHER_REGION))
    net.subnet(app, "10.0.1.0/24")
    net.subnet(db, "10.1.1.0/24")
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)

    [f] = missing(net)

    assert (f.resource_id, f.region) == ("rtb-db-main", OTHER_REGION)


def test_route_tables_that_could_not_be_read_are_not_judged() -> None:
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)
    net.partial.add((REGION, "route_tables"))
    assert missing(net) == []


# -- the mirror route never widens: it has the forward route's granularity ---------------


def private_subnets_only(forward: str = "10.1.1.0/24") -> tuple[Net, dict[str, str], str]:
    """batch 10.0/16 and reporting 10.1/16; only their private subnets route to each other,
    with subnet-sized routes (the demo's "Private subnets only" scenario). batch-private's
    table sends `forward` through the peering."""
    net = Net()
    batch, reporting = net.vpc("batch", "10.0.0.0/16"), net.vpc("reporting", "10.1.0.0/16")
    t = {
        "batch_private": net.table(batch),
        "batch_public": net.table(batch),
        "reporting_private": net.table(reporting),
    }
    net.subnet(batch, "10.0.1.0/24", table=t["batch_private"], subnet_id="subnet-batch-private")
    net.subnet(batch, "10.0.0.0/24", table=t["batch_public"], subnet_id="subnet-batch-public")
    net.subnet(
        reporting, "10.1.1.0/24", table=t["reporting_private"], subnet_id="subnet-rep-private"
    )
    pcx = net.peer(batch, reporting)
    net.route(t["batch_private"], forward, pcx)
    return net, t, pcx


def test_subnet_sized_forward_route_gets_a_subnet_sized_return_route() -> None:
    # Given batch-private routes only reporting-private's /24, and reporting routes back a /25
    net, t, pcx = private_subnets_only()
    net.route(t["reporting_private"], "10.0.1.0/25", pcx)

    # When the check runs
    [f] = missing(net)

    # Then the proposed return route is batch-private's own /24, not batch's whole /16
    assert create_route(f) == {
        "RouteTableId": t["reporting_private"],
        "DestinationCidrBlock": "10.0.1.0/24",
        "VpcPeeringConnectionId": pcx,
    }
    assert f.remediation is not None and f.remediation.automatic
    assert "covers only part of vpc-reporting" in f.detail
    assert "source subnet's own range 10.0.1.0/24" in f.detail


def test_vpc_wide_forward_route_still_gets_the_vpc_block() -> None:
    # Given batch-private routes reporting's whole /16 and reporting has no way back
    net, t, pcx = private_subnets_only(forward="10.1.0.0/16")

    [f] = missing(net)

    assert (f.resource_id, f.peering_connection_id) == (t["reporting_private"], pcx)
    assert create_route(f)["DestinationCidrBlock"] == "10.0.0.0/16"
    assert "covers a whole CIDR block of vpc-reporting" in f.detail
    assert "vpc-batch's block 10.0.0.0/16" in f.detail


def test_the_route_that_carries_the_traffic_decides_not_a_wider_one_beside_it() -> None:
    # batch-private routes reporting's /16 and, more specifically, reporting-private's /24:
    # the /24 carries the traffic, so the return route is subnet-sized
    net, t, pcx = private_subnets_only()
    net.route(t["batch_private"], "10.1.0.0/16", pcx)

    [f] = missing(net)

    assert create_route(f)["DestinationCidrBlock"] == "10.0.1.0/24"


def test_forward_route_wider_than_the_peer_vpc_counts_as_vpc_wide() -> None:
    net, app, db = two_vpcs()
    pcx = net.peer(app, db)
    net.route(net.main(app), "10.0.0.0/8", pcx)  # contains db's 10.1.0.0/16 (and app's own)

    found = missing(net)

    assert [create_route(f)["DestinationCidrBlock"] for f in found] == ["10.0.0.0/16"]


def test_each_source_subnet_of_a_narrow_route_gets_its_own_finding() -> None:
    # Two app subnets share a table that routes one db /24: two subnet-sized return routes
    net, app, db = two_vpcs()
    net.subnet(app, "10.0.2.0/24")
    pcx = net.peer(app, db)
    net.route(net.main(app), "10.1.1.0/24", pcx)

    found = missing(net)

    assert [(f.resource_id, create_route(f)["DestinationCidrBlock"]) for f in found] == [
        ("rtb-db-main", "10.0.1.0/24"),
        ("rtb-db-main", "10.0.2.0/24"),
    ]
    assert len({f.fingerprint for f in found}) == 2


def test_subnet_sized_gap_inside_a_block_sized_gap_is_one_finding() -> None:
    # One app table routes db's whole block, another only db's subnet: the block-sized return
    # route answers both sources, so only it is proposed
    net, app, db = two_vpcs()
    narrow = net.table(app)
    net.subnet(app, "10.0.2.0/24", table=narrow)
    pcx = net.peer(app, db)
    net.route_to_peer(net.main(app), pcx)
    net.route(narrow, "10.1.1.0/24", pcx)

    [f] = missing(net)

    assert create_route(f)["DestinationCidrBlock"] == "10.0.0.0/16"
    assert "subnet-app-1, subnet-app-2 of vpc-app" in f.detail


def test_ipv6_subnet_sized_forward_route_gets_the_subnet_range() -> None:
    net = Net()
    app = net.vpc("app", "10.0.0.0/16", ipv6=("2600:1f18:aa00::/56",))
    db = net.vpc("db", "10.1.0.0/16", ipv6=("2600:1f18:bb00::/56",))
    net.subnet(app, None, ipv6=("2600:1f18:aa00:1::/64",))
    net.subnet(db, None, ipv6=("2600:1f18:bb00:1::/64",))
    pcx = net.peer(app, db)
    net.route(net.main(app), "2600:1f18:bb00:1::/64", pcx)

    [f] = missing(net)

    assert create_route(f)["DestinationIpv6CidrBlock"] == "2600:1f18:aa00:1::/64"


def test_fixing_sweep_after_sweep_never_reaches_subnets_nobody_routed() -> None:
    # Given the private-subnets network with reporting's return route missing entirely
    net, t, pcx = private_subnets_only()

    # When every proposed route is applied, sweep after sweep, until nothing is proposed
    for _ in range(5):
        found = missing(net)
        if not found:
            break
        for f in found:
            p = create_route(f)
            net.route(str(p["RouteTableId"]), str(p["DestinationCidrBlock"]), pcx)
    else:
        raise AssertionError("the fixes did not converge")

    # Then only the two private subnets are connected: batch-public is routed by no table
    snap = net.snapshot()
    peer_routes = sorted(
        (rt.route_table_id, r.destination)
        for rt in snap.route_tables.values()
        for r in rt.routes
        if r.target == pcx
    )
    assert peer_routes == [
        (t["batch_private"], "10.1.1.0/24"),
        (t["reporting_private"], "10.0.1.0/24"),
    ]
