"""The peering.* checks over hand-built snapshots."""

from __future__ import annotations

from datetime import timedelta

import pytest

from peerguard.domain import catalogue
from peerguard.domain.allowlist import Allowed
from peerguard.domain.checks import CheckContext, resolve, run_checks
from peerguard.domain.findings import Severity
from tests.unit.netbuilder import (
    ACCOUNT,
    OTHER_ACCOUNT,
    OTHER_REGION,
    REGION,
    Net,
    allowed,
    allowing,
    in_hours,
    run,
)

EXPECTED_IDS = {
    "peering.pending_acceptance",
    "peering.not_allowlisted",
    "peering.cidr_overlap",
    "peering.failed",
    "peering.no_routes",
    "peering.dns_resolution_disabled",
    "peering.quota_near",
    "route.missing_reciprocal",
    "route.blackhole",
    "route.outside_peer_cidr",
    "route.shadowed",
    "route.peer_side_unverified",
}


def test_catalogue_registers_every_documented_check_with_iam_actions() -> None:
    checks = catalogue.checks()
    assert set(checks) >= EXPECTED_IDS
    for c in checks.values():
        assert c.iam_actions and all(a.startswith("ec2:") for a in c.iam_actions), c.id


def test_resolve_names_unknown_ids() -> None:
    with pytest.raises(ValueError, match="unknown check id\\(s\\): nope"):
        resolve(["route.blackhole", "nope"])
    assert [c.id for c in resolve([" route.blackhole "])] == ["route.blackhole"]


def cross_account_request(hours_left: float, *, status: str = "pending-acceptance") -> Net:
    """Another account asks to peer with our VPC."""
    net = Net()
    ours = net.vpc("ours", "10.0.0.0/16")
    theirs = net.vpc("theirs", "10.9.0.0/16", owner=OTHER_ACCOUNT)
    net.peer(theirs, ours, status=status, expires=in_hours(net.now, hours_left))
    return net


# -- peering.pending_acceptance -------------------------------------------------------------


def test_pending_request_to_this_account_is_medium_with_accept_call() -> None:
    [f] = run("peering.pending_acceptance", cross_account_request(72).snapshot())

    assert f.severity is Severity.MEDIUM
    assert (f.resource_id, f.vpc_id, f.account_id) == ("pcx-theirs-ours", "vpc-ours", ACCOUNT)
    assert "2024-05-04 12:00" in f.detail
    assert f.remediation is not None and not f.remediation.automatic
    assert f.remediation.action == "AcceptVpcPeeringConnection"
    assert f.remediation.parameters == {"VpcPeeringConnectionId": "pcx-theirs-ours"}


@pytest.mark.parametrize("hours_left", [23.9, 1, 0, -1])
def test_pending_request_close_to_expiry_is_high(hours_left: float) -> None:
    [f] = run("peering.pending_acceptance", cross_account_request(hours_left).snapshot())
    assert f.severity is Severity.HIGH
    assert "expires at" in f.detail


def test_expiry_warning_window_is_configurable() -> None:
    snap = cross_account_request(30).snapshot()
    [f] = run("peering.pending_acceptance", snap, CheckContext(expiry_warning=timedelta(hours=48)))
    assert f.severity is Severity.HIGH


def test_request_we_sent_is_not_ours_to_accept() -> None:
    net = Net()
    ours = net.vpc("ours", "10.0.0.0/16")
    theirs = net.vpc("theirs", "10.9.0.0/16", owner=OTHER_ACCOUNT)
    net.peer(ours, theirs, status="pending-acceptance")
    assert run("peering.pending_acceptance", net.snapshot()) == []


@pytest.mark.parametrize("status", ["active", "rejected", "expired", "provisioning"])
def test_only_pending_requests_wait_for_acceptance(status: str) -> None:
    assert (
        run("peering.pending_acceptance", cross_account_request(72, status=status).snapshot()) == []
    )


# -- peering.not_allowlisted ------------------------------------------------------------------


def test_no_allowlist_configured_means_no_finding() -> None:
    snap = cross_account_request(72, status="active").snapshot()
    assert run("peering.not_allowlisted", snap, CheckContext()) == []


def test_peer_account_off_the_allowlist_is_high() -> None:
    snap = cross_account_request(72, status="active").snapshot()
    ctx = allowing(allowed("333333333333"))

    [f] = run("peering.not_allowlisted", snap, ctx)

    assert f.severity is Severity.HIGH
    assert OTHER_ACCOUNT in f.detail
    assert f.remediation is not None and f.remediation.action == "DeleteVpcPeeringConnection"
    assert not f.remediation.automatic


def test_pending_request_off_the_allowlist_proposes_reject() -> None:
    snap = cross_account_request(72).snapshot()
    [f] = run("peering.not_allowlisted", snap, allowing())
    assert f.remediation is not None and f.remediation.action == "RejectVpcPeeringConnection"


def test_allowlisted_account_passes() -> None:
    snap = cross_account_request(72, status="active").snapshot()
    assert run("peering.not_allowlisted", snap, allowing(allowed(OTHER_ACCOUNT))) == []


@pytest.mark.parametrize(
    ("entry", "flagged"),
    [
        (allowed(OTHER_ACCOUNT, regions=frozenset({REGION})), False),
        (allowed(OTHER_ACCOUNT, regions=frozenset({OTHER_REGION})), True),
        (allowed(OTHER_ACCOUNT, vpc_ids=frozenset({"vpc-theirs"})), False),
        (allowed(OTHER_ACCOUNT, vpc_ids=frozenset({"vpc-someone-else"})), True),
    ],
)
def test_allowlist_narrowing_by_region_and_vpc(entry: Allowed, flagged: bool) -> None:
    snap = cross_account_request(72, status="active").snapshot()
    found = run("peering.not_allowlisted", snap, allowing(entry))
    assert bool(found) is flagged


def test_same_account_peering_never_needs_the_allowlist() -> None:
    net = Net()
    net.peer(net.vpc("a", "10.0.0.0/16"), net.vpc("b", "10.1.0.0/16"))
    assert run("peering.not_allowlisted", net.snapshot(), allowing()) == []


@pytest.mark.parametrize("status", ["deleted", "rejected", "failed", "expired"])
def test_dead_peerings_are_not_allowlist_violations(status: str) -> None:
    snap = cross_account_request(72, status=status).snapshot()
    assert run("peering.not_allowlisted", snap, allowing()) == []


# -- peering.cidr_overlap -----------------------------------------------------------------------


def test_overlapping_primary_blocks() -> None:
    net = Net()
    net.peer(net.vpc("a", "10.0.0.0/16"), net.vpc("b", "10.0.0.0/16"), status="failed")
    [f] = run("peering.cidr_overlap", net.snapshot())
    assert f.severity is Severity.HIGH
    assert "10.0.0.0/16 ~ 10.0.0.0/16" in f.detail
    assert "PrivateLink" in f.detail


def test_overlap_through_a_secondary_block() -> None:
    net = Net()
    a = net.vpc("a", "10.0.0.0/16", "100.64.0.0/16")
    b = net.vpc("b", "10.1.0.0/16", "100.64.128.0/17")
    net.peer(a, b)
    [f] = run("peering.cidr_overlap", net.snapshot())
    assert "100.64.0.0/16 ~ 100.64.128.0/17" in f.detail


def test_disjoint_blocks_and_different_families_do_not_overlap() -> None:
    net = Net()
    a = net.vpc("a", "10.0.0.0/16", ipv6=("2600:1f18:1::/56",))
    b = net.vpc("b", "10.1.0.0/16", ipv6=("2600:1f18:2::/56",))
    net.peer(a, b)
    assert run("peering.cidr_overlap", net.snapshot()) == []


def test_overlap_of_a_deleted_peering_is_history() -> None:
    net = Net()
    net.peer(net.vpc("a", "10.0.0.0/16"), net.vpc("b", "10.0.0.0/16"), status="deleted")
    assert run("peering.cidr_overlap", net.snapshot()) == []


# -- peering.failed ----------------------------------------------------------------------------


def test_failed_request_is_low_with_reason() -> None:
    net = Net()
    a, b = net.vpc("a", "10.0.0.0/16"), net.vpc("b", "10.1.0.0/16")
    net.peer(a, b, status="failed", message="Overlapping CIDR range")
    net.peer(b, a, status="active", pcx_id="pcx-ok")
    [f] = run("peering.failed", net.snapshot())
    assert (f.severity, f.resource_id) == (Severity.LOW, "pcx-a-b")
    assert "Overlapping CIDR range" in f.detail


# -- peering.no_routes -------------------------------------------------------------------------


def test_active_peering_without_any_route() -> None:
    net = Net()
    net.peer(net.vpc("a", "10.0.0.0/16"), net.vpc("b", "10.1.0.0/16"))
    [f] = run("peering.no_routes", net.snapshot())
    assert (f.severity, f.resource_id) == (Severity.LOW, "pcx-a-b")
    assert "vpc-a and vpc-b" in f.detail


def test_a_single_route_means_the_peering_is_used() -> None:
    net = Net()
    a = net.vpc("a", "10.0.0.0/16")
    pcx = net.peer(a, net.vpc("b", "10.1.0.0/16"))
    net.route_to_peer(net.main(a), pcx)
    assert run("peering.no_routes", net.snapshot()) == []


def test_no_routes_needs_readable_route_tables() -> None:
    net = Net()
    net.peer(net.vpc("a", "10.0.0.0/16"), net.vpc("b", "10.1.0.0/16"))
    net.partial.add((REGION, "route_tables"))
    assert run("peering.no_routes", net.snapshot()) == []


def test_pending_peering_without_routes_is_not_unused() -> None:
    net = Net()
    net.peer(net.vpc("a", "10.0.0.0/16"), net.vpc("b", "10.1.0.0/16"), status="pending-acceptance")
    assert run("peering.no_routes", net.snapshot()) == []


# -- peering.dns_resolution_disabled ----------------------------------------------------------


def test_dns_resolution_off_on_our_side() -> None:
    net = Net()
    a, b = net.vpc("a", "10.0.0.0/16"), net.vpc("b", "10.1.0.0/16", dns_hostnames=True)
    net.peer(a, b, dns=(True, False))

    [f] = run("peering.dns_resolution_disabled", net.snapshot())

    assert f.vpc_id == b
    assert f.remediation is not None and f.remediation.automatic
    assert f.remediation.parameters == {
        "VpcPeeringConnectionId": "pcx-a-b",
        "AccepterPeeringConnectionOptions": {"AllowDnsResolutionFromRemoteVpc": True},
    }


def test_dns_resolution_off_on_both_sides_gives_one_finding_per_side() -> None:
    net = Net()
    net.peer(net.vpc("a", "10.0.0.0/16"), net.vpc("b", "10.1.0.0/16"), dns=(False, False))
    found = run("peering.dns_resolution_disabled", net.snapshot())
    assert sorted(f.vpc_id or "" for f in found) == ["vpc-a", "vpc-b"]
    assert len({f.fingerprint for f in found}) == 2


def test_dns_resolution_off_does_not_matter_without_dns_hostnames() -> None:
    net = Net()
    a, b = net.vpc("a", "10.0.0.0/16"), net.vpc("b", "10.1.0.0/16", dns_hostnames=False)
    net.peer(a, b, dns=(True, False))
    assert run("peering.dns_resolution_disabled", net.snapshot()) == []


def test_dns_option_of_the_other_account_is_not_ours_to_report() -> None:
    net = Net()
    ours = net.vpc("ours", "10.0.0.0/16")
    theirs = net.vpc("theirs", "10.9.0.0/16", owner=OTHER_ACCOUNT)
    net.peer(ours, theirs, dns=(True, False))
    assert run("peering.dns_resolution_disabled", net.snapshot()) == []


# -- peering.quota_near -------------------------------------------------------------------------


def test_vpc_near_its_peering_quota() -> None:
    net = Net()
    hub = net.vpc("hub", "10.0.0.0/16")
    for i in range(1, 5):
        net.peer(hub, net.vpc(f"spoke{i}", f"10.{i}.0.0/16"))

    found = run("peering.quota_near", net.snapshot(), CheckContext(peering_quota=5))

    assert [(f.resource_id, f.severity) for f in found] == [(hub, Severity.MEDIUM)]
    assert "4 active peerings of a quota of 5" in found[0].detail


def test_vpc_below_its_peering_quota() -> None:
    net = Net()
    hub = net.vpc("hub", "10.0.0.0/16")
    for i in range(1, 4):
        net.peer(hub, net.vpc(f"spoke{i}", f"10.{i}.0.0/16"))
    assert run("peering.quota_near", net.snapshot(), CheckContext(peering_quota=5)) == []


def test_route_table_near_its_route_quota() -> None:
    net = Net()
    a = net.vpc("a", "10.0.0.0/16")
    for i in range(7):
        net.route(net.main(a), f"192.168.{i}.0/24", "tgw-1")
    found = run("peering.quota_near", net.snapshot(), CheckContext(route_quota=10))
    assert [(f.resource_id, f.resource_type) for f in found] == [
        ("rtb-a-main", "AWS::EC2::RouteTable")
    ]
    assert run("peering.quota_near", net.snapshot(), CheckContext(route_quota=11)) == []


# -- the whole catalogue ----------------------------------------------------------------------


def test_a_clean_network_has_no_findings_at_all() -> None:
    net = Net()
    a, b = net.vpc("a", "10.0.0.0/16"), net.vpc("b", "10.1.0.0/16")
    net.subnet(a, "10.0.1.0/24")
    net.subnet(b, "10.1.1.0/24")
    net.peer_routed(a, b)
    assert run_checks(net.snapshot(), allowing()) == []


def test_findings_have_stable_fingerprints() -> None:
    first = run("peering.failed", _failed_net("x").snapshot())
    again = run("peering.failed", _failed_net("reworded").snapshot())
    assert first[0].fingerprint == again[0].fingerprint
    assert first[0].detail != again[0].detail


def _failed_net(message: str) -> Net:
    net = Net()
    net.peer(
        net.vpc("a", "10.0.0.0/16"), net.vpc("b", "10.1.0.0/16"), status="failed", message=message
    )
    return net
