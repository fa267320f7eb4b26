"""route.blackhole, route.outside_peer_cidr, route.shadowed, route.peer_side_unverified."""

from __future__ import annotations

import pytest

from peerguard.domain.checks import CheckContext, run_checks
from peerguard.domain.findings import Severity
from tests.unit.netbuilder import OTHER_ACCOUNT, OTHER_REGION, REGION, Net, run


def peered(status: str = "active") -> tuple[Net, str, str, str]:
    """web 10.0.0.0/16 -> api 10.1.0.0/16, web's main table routes api's block via the pcx."""
    net = Net()
    web, api = net.vpc("web", "10.0.0.0/16"), net.vpc("api", "10.1.0.0/16")
    pcx = net.peer(web, api, status=status)
    net.route_to_peer(net.main(web), pcx)
    return net, web, api, pcx


# -- route.blackhole -------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["deleted", "deleting", "rejected", "expired", "failed"])
def test_route_through_a_dead_peering_is_a_blackhole(status: str) -> None:
    net, _, _, pcx = peered(status)

    [f] = run("route.blackhole", net.snapshot())

    assert (f.severity, f.resource_id, f.peering_connection_id) == (
        Severity.MEDIUM,
        "rtb-web-main",
        pcx,
    )
    assert status in f.detail
    assert f.remediation is not None and f.remediation.automatic
    assert (f.remediation.action, f.remediation.parameters) == (
        "DeleteRoute",
        {"RouteTableId": "rtb-web-main", "DestinationCidrBlock": "10.1.0.0/16"},
    )


def test_route_to_a_peering_that_no_longer_exists_is_a_blackhole() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    net.route(net.main(web), "2600:1f18:bb00::/56", "pcx-gone")

    [f] = run("route.blackhole", net.snapshot())

    assert "unknown" in f.detail
    assert f.remediation is not None
    assert f.remediation.parameters == {
        "RouteTableId": "rtb-web-main",
        "DestinationIpv6CidrBlock": "2600:1f18:bb00::/56",
    }


def test_unknown_peering_is_not_a_blackhole_when_peerings_could_not_be_read() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    net.route(net.main(web), "10.1.0.0/16", "pcx-gone")
    net.partial.add((REGION, "peerings"))
    assert run("route.blackhole", net.snapshot()) == []


def test_route_aws_marks_blackhole_is_reported_even_if_the_peering_looks_alive() -> None:
    net, web, _, pcx = peered()
    net.route(net.main(web), "10.1.200.0/24", pcx, state="blackhole")
    [f] = run("route.blackhole", net.snapshot())
    assert f.key == "10.1.200.0/24"


@pytest.mark.parametrize("status", ["active", "pending-acceptance", "provisioning"])
def test_route_through_a_live_peering_is_not_a_blackhole(status: str) -> None:
    net, *_ = peered(status)
    assert run("route.blackhole", net.snapshot()) == []


def test_blackhole_routes_to_other_targets_are_not_peering_findings() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    net.route(net.main(web), "10.244.1.0/24", "eni-961cc8ce", state="blackhole")
    assert run("route.blackhole", net.snapshot()) == []


def test_each_dead_route_is_its_own_finding() -> None:
    net, web, _, pcx = peered("deleted")
    extra = net.table(web)
    net.route_to_peer(extra, pcx)
    found = run("route.blackhole", net.snapshot())
    assert sorted(f.resource_id for f in found) == ["rtb-web-1", "rtb-web-main"]
    assert len({f.fingerprint for f in found}) == 2


# -- route.outside_peer_cidr -----------------------------------------------------------------


def test_routes_inside_the_peer_blocks_are_fine() -> None:
    net, web, _, pcx = peered()
    net.route(net.main(web), "10.1.4.0/24", pcx)
    assert run("route.outside_peer_cidr", net.snapshot()) == []


@pytest.mark.parametrize(
    "destination",
    [
        "0.0.0.0/0",  # the peer's NAT or internet gateway: no edge-to-edge routing
        "10.0.0.0/8",  # a supernet of the peer
        "10.2.0.0/16",  # a third VPC behind the peer: not transitive
        "172.16.0.0/12",  # on-premises behind the peer's VPN
    ],
)
def test_routes_beyond_the_peer_vpc_are_dropped(destination: str) -> None:
    net, web, _, pcx = peered()
    net.route(net.main(web), destination, pcx)

    [f] = run("route.outside_peer_cidr", net.snapshot())

    assert (f.resource_id, f.key, f.severity) == ("rtb-web-main", destination, Severity.MEDIUM)
    assert "10.1.0.0/16" in f.detail and "not transitive" in f.detail


def test_the_peer_secondary_block_is_inside_the_peer() -> None:
    net = Net()
    web, api = net.vpc("web", "10.0.0.0/16"), net.vpc("api", "10.1.0.0/16", "100.64.0.0/16")
    pcx = net.peer(web, api)
    net.route_to_peer(net.main(web), pcx)
    assert run("route.outside_peer_cidr", net.snapshot()) == []


def test_peer_blocks_come_from_the_peering_when_the_peer_vpc_is_unread() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    api = net.vpc("api", "10.1.0.0/16", owner=OTHER_ACCOUNT)
    pcx = net.peer(web, api)
    net.route(net.main(web), "10.1.0.0/16", pcx)
    net.route(net.main(web), "10.2.0.0/16", pcx)
    assert [f.key for f in run("route.outside_peer_cidr", net.snapshot())] == ["10.2.0.0/16"]


def test_ipv6_route_outside_the_peer_ipv6_block() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16", ipv6=("2600:1f18:aa00::/56",))
    api = net.vpc("api", "10.1.0.0/16", ipv6=("2600:1f18:bb00::/56",))
    pcx = net.peer(web, api)
    net.route_to_peer(net.main(web), pcx)
    net.route(net.main(web), "::/0", pcx)
    assert [f.key for f in run("route.outside_peer_cidr", net.snapshot())] == ["::/0"]


def test_route_through_a_peering_of_two_other_vpcs() -> None:
    net, web, api, _ = peered()
    other = net.vpc("other", "10.2.0.0/16")
    foreign = net.peer(api, other)
    net.route(net.main(web), "10.2.0.0/16", foreign)
    [f] = run("route.outside_peer_cidr", net.snapshot())
    assert "does not connect vpc-web" in f.detail


# -- route.shadowed --------------------------------------------------------------------------


def test_more_specific_route_elsewhere_shadows_part_of_the_peer() -> None:
    net, web, _, _ = peered()
    net.route(net.main(web), "10.1.8.0/24", "tgw-0123")

    [f] = run("route.shadowed", net.snapshot())

    assert (f.resource_id, f.key, f.severity) == ("rtb-web-main", "10.1.0.0/16", Severity.LOW)
    assert "10.1.8.0/24 -> tgw-0123" in f.detail


def test_more_specific_route_through_the_same_peering_is_not_shadowing() -> None:
    net, web, _, pcx = peered()
    net.route(net.main(web), "10.1.8.0/24", pcx)
    assert run("route.shadowed", net.snapshot()) == []


def test_routes_outside_the_peering_route_do_not_shadow_it() -> None:
    net, web, _, _ = peered()
    net.route(net.main(web), "0.0.0.0/0", "igw-1")
    net.route(net.main(web), "10.2.8.0/24", "tgw-0123")
    assert run("route.shadowed", net.snapshot()) == []


# -- route.peer_side_unverified --------------------------------------------------------------


@pytest.mark.parametrize(("owner", "region"), [(OTHER_ACCOUNT, REGION), (None, OTHER_REGION)])
def test_unreadable_other_side_is_reported_as_info(owner: str | None, region: str) -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    api = net.vpc("api", "10.1.0.0/16", owner=owner, region=region)
    pcx = net.peer(web, api)

    [f] = run("route.peer_side_unverified", net.snapshot())

    assert (f.severity, f.resource_id, f.vpc_id, f.region) == (Severity.INFO, pcx, web, REGION)
    assert api in f.detail


def test_both_sides_read_are_verified() -> None:
    net, *_ = peered()
    assert run("route.peer_side_unverified", net.snapshot()) == []


def test_other_region_read_too_is_verified() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    api = net.vpc("api", "10.1.0.0/16", region=OTHER_REGION)
    net.readable.add((net.account, OTHER_REGION))
    net.peer(web, api)
    assert run("route.peer_side_unverified", net.snapshot()) == []


def test_unverified_is_only_for_active_peerings() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    api = net.vpc("api", "10.1.0.0/16", owner=OTHER_ACCOUNT)
    net.peer(web, api, status="pending-acceptance")
    assert run("route.peer_side_unverified", net.snapshot()) == []


# -- partial snapshots -----------------------------------------------------------------------


def test_route_checks_skip_regions_whose_route_tables_are_partial() -> None:
    # Given a network full of route problems, but DescribeRouteTables was denied in its region
    net, web, _, pcx = peered()
    net.subnet(web, "10.0.1.0/24")
    net.subnet("vpc-api", "10.1.1.0/24")
    net.route(net.main(web), "0.0.0.0/0", pcx)
    net.route(net.main(web), "10.1.8.0/24", "tgw-1")
    net.route(net.main(web), "10.9.0.0/16", "pcx-gone")
    broken = net.snapshot()
    route_ids = {
        "route.missing_reciprocal",
        "route.blackhole",
        "route.outside_peer_cidr",
        "route.shadowed",
    }
    assert route_ids <= {f.check_id for f in run_checks(broken, CheckContext())}

    # When the tables are marked partial, then no route check judges them
    net.partial.add((REGION, "route_tables"))
    found = run_checks(net.snapshot(), CheckContext())

    assert not [f for f in found if f.check_id.startswith("route.")]
