"""The audit use case against real-shaped networks in moto: full and scoped reads."""

from __future__ import annotations

from typing import Any

import boto3

from peerguard.aws.clients import Clients
from peerguard.aws.reader import Scope
from tests.integration import awsnet
from tests.integration.awsnet import peered_pair, route_findings, run_audit

EAST, WEST = "us-east-1", "us-west-2"


def test_correct_two_vpc_peering_has_no_route_findings(ec2: Any, clients: Clients) -> None:
    peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")

    result = run_audit(clients, [EAST])

    assert route_findings(result) == []
    assert len(result.snapshot.peerings) == 1
    assert result.warnings == ()


def test_missing_return_route_in_one_subnet_table_names_that_table(
    ec2: Any, clients: Clients
) -> None:
    # Given a correct peering, plus a db subnet on its own table without the return route
    app, db, pcx = peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")
    isolated = awsnet.table(ec2, db)
    awsnet.subnet(ec2, db, "10.1.2.0/24", table=isolated)

    # When the account is audited
    result = run_audit(clients, [EAST])

    # Then exactly that table is reported, with the route to add
    assert route_findings(result) == [("route.missing_reciprocal", isolated)]
    [f] = [f for f in result.findings if f.check_id == "route.missing_reciprocal"]
    assert f.remediation is not None and f.remediation.parameters == {
        "RouteTableId": isolated,
        "DestinationCidrBlock": app.cidr,
        "VpcPeeringConnectionId": pcx,
    }
    assert (f.account_id, f.region, f.vpc_id) == (clients.account_id(), EAST, db.vpc_id)


def test_routes_left_after_the_peering_is_deleted_are_blackholes(
    ec2: Any, clients: Clients
) -> None:
    app, db, pcx = peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)

    result = run_audit(clients, [EAST])

    assert route_findings(result) == sorted(
        [("route.blackhole", app.main_table), ("route.blackhole", db.main_table)]
    )


def cross_region(ec2: Any) -> tuple[awsnet.Vpc, awsnet.Vpc, str]:
    """The multi-region web app: 10.0.0.0/16 in us-east-1 <-> 192.168.0.0/16 in us-west-2."""
    west = boto3.client("ec2", region_name=WEST)
    web, data = awsnet.vpc(ec2, "10.0.0.0/16"), awsnet.vpc(west, "192.168.0.0/16")
    awsnet.subnet(ec2, web, "10.0.1.0/24")
    awsnet.subnet(west, data, "192.168.1.0/24")
    pcx = awsnet.peer(ec2, web, data, accepter_ec2=west)
    awsnet.route(ec2, web.main_table, data.cidr, pcx)
    return web, data, pcx


def test_cross_region_peering_read_in_both_regions_is_verified(ec2: Any, clients: Clients) -> None:
    # The us-west-2 side has no return route: visible only when both regions are read
    _, data, _ = cross_region(ec2)

    result = run_audit(clients, [EAST, WEST])

    assert route_findings(result) == [("route.missing_reciprocal", data.main_table)]
    [f] = [f for f in result.findings if f.check_id == "route.missing_reciprocal"]
    assert f.region == WEST


def test_cross_region_peering_read_in_one_region_is_unverified(ec2: Any, clients: Clients) -> None:
    _, _, pcx = cross_region(ec2)

    result = run_audit(clients, [EAST])

    assert route_findings(result) == [("route.peer_side_unverified", pcx)]


def test_scoped_read_touches_only_the_changed_vpcs_and_their_peers(
    ec2: Any, clients: Clients
) -> None:
    # Given one broken peering among others
    app, db, pcx = peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")
    ec2.delete_route(RouteTableId=db.main_table, DestinationCidrBlock=app.cidr)
    peered_pair(ec2, "10.2.0.0/16", "10.3.0.0/16")
    scope = Scope(vpc_ids=frozenset({app.vpc_id}))

    # When a change to app is audited
    result = run_audit(clients, [EAST], scope)

    # Then app and its peer were read, nothing else, and the gap is found
    assert set(result.snapshot.vpcs) == {app.vpc_id, db.vpc_id}
    assert set(result.snapshot.peerings) == {pcx}
    assert route_findings(result) == [("route.missing_reciprocal", db.main_table)]


def test_scoped_call_count_does_not_grow_with_the_account(ec2: Any, clients: Clients) -> None:
    _, _, pcx = peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")
    scope = Scope(peering_ids=frozenset({pcx}))
    clients.account_id()  # asked once per container: both audits below run warm
    small = run_audit(clients, [EAST], scope)

    for i in range(20):  # 20 unrelated peered pairs
        peered_pair(ec2, f"10.{10 + 2 * i}.0.0/16", f"10.{11 + 2 * i}.0.0/16")
    calls_before = clients.total_calls
    large = run_audit(clients, [EAST], scope)

    assert large.api_calls == small.api_calls
    assert clients.total_calls - calls_before == large.api_calls
    assert set(large.snapshot.vpcs) == set(small.snapshot.vpcs)
    assert len(large.snapshot.vpcs) == 2
    # A full sweep of the same account does see everything
    assert len(run_audit(clients, [EAST]).snapshot.peerings) == 21


def test_scope_by_route_table_finds_its_vpc(ec2: Any, clients: Clients) -> None:
    app, db, _ = peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")
    result = run_audit(clients, [EAST], Scope(route_table_ids=frozenset({db.main_table})))
    assert set(result.snapshot.vpcs) == {app.vpc_id, db.vpc_id}
    assert route_findings(result) == []


def test_scoped_read_follows_a_cross_region_peer_into_its_region(
    ec2: Any, clients: Clients
) -> None:
    web, data, _ = cross_region(ec2)

    result = run_audit(clients, [EAST, WEST], Scope(vpc_ids=frozenset({web.vpc_id})))

    assert set(result.snapshot.vpcs) == {web.vpc_id, data.vpc_id}
    assert route_findings(result) == [("route.missing_reciprocal", data.main_table)]


def test_scoped_read_judges_routes_to_a_peering_outside_the_scope(
    ec2: Any, clients: Clients
) -> None:
    # A change to one route table: its routes point at a deleted peering
    app, _, pcx = peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")
    ec2.delete_vpc_peering_connection(VpcPeeringConnectionId=pcx)

    result = run_audit(clients, [EAST], Scope(route_table_ids=frozenset({app.main_table})))

    assert ("route.blackhole", app.main_table) in route_findings(result)
