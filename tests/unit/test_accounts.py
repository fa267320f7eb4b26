"""Several accounts in one picture (pure): what one account's audit says about a far side,
how audits of many accounts merge, what a far-side finding may be resolved by, and how
Security Hub and the rails see it."""

from __future__ import annotations

from datetime import timedelta

from peerguard.domain.accounts import in_view, merge
from peerguard.domain.checks import CheckContext, run_checks
from peerguard.domain.coverage import Coverage
from peerguard.domain.dedup import Notification, Status
from peerguard.domain.plans.actions import Mode
from peerguard.domain.plans.remediation import RemediationConfig, plan
from peerguard.notify.securityhub import render
from tests.unit.netbuilder import ACCOUNT, NOW, OTHER_ACCOUNT, REGION, Net, run

THIRD = "333333333333"


def cross(*, return_route: bool = False, home: str = ACCOUNT) -> tuple[Net, str, str, str]:
    """Ours (10.0/16) -> theirs (10.1/16, another account, read through the member role)."""
    net = Net(account=home)
    ours = net.vpc("ours", "10.0.0.0/16", owner=ACCOUNT)
    theirs = net.vpc("theirs", "10.1.0.0/16", owner=OTHER_ACCOUNT)
    net.subnet(ours, "10.0.1.0/24")
    net.subnet(theirs, "10.1.1.0/24")
    net.readable |= {(ACCOUNT, REGION), (OTHER_ACCOUNT, REGION)}
    pcx = net.peer(ours, theirs)
    net.route_to_peer(net.main(ours), pcx)
    if return_route:
        net.route_to_peer(net.main(theirs), pcx)
    return net, ours, theirs, pcx


def test_the_far_sides_missing_return_route_is_theirs_and_never_automatic() -> None:
    net, _, theirs, _pcx = cross()
    [f] = run("route.missing_reciprocal", net.snapshot())
    assert (f.resource_id, f.account_id) == (net.main(theirs), OTHER_ACCOUNT)
    assert f.remediation is not None and not f.remediation.automatic
    assert "never changes another account" in f.remediation.reason


def test_the_same_gap_seen_from_its_own_account_is_automatic_there() -> None:
    net, _, _theirs, _ = cross(home=OTHER_ACCOUNT)
    [f] = run("route.missing_reciprocal", net.snapshot())
    assert f.account_id == OTHER_ACCOUNT and f.remediation is not None
    assert f.remediation.automatic


def test_a_plan_for_the_far_side_is_refused_by_the_rails_even_if_forced() -> None:
    net, _, _theirs, _ = cross()
    snap = net.snapshot()
    [f] = run("route.missing_reciprocal", snap)
    assert f.remediation is not None
    forced = f.model_copy(
        update={"remediation": f.remediation.model_copy(update={"automatic": True})}
    )
    action = plan(forced, snap, RemediationConfig(default_mode=Mode.FIX), CheckContext())
    assert action is not None and action.refused
    assert f"belongs to account {OTHER_ACCOUNT}" in action.reason


def test_unverified_says_why_the_far_side_was_not_read() -> None:
    net, _, _, pcx = cross()
    net.readable.discard((OTHER_ACCOUNT, REGION))
    snap = net.snapshot().model_copy(update={"unread": {OTHER_ACCOUNT: "AccessDenied assuming x"}})
    [f] = run("route.peer_side_unverified", snap)
    assert f.resource_id == pcx and f.detail.endswith(": AccessDenied assuming x.")
    assert f.extra == {"reason": "AccessDenied assuming x"}


def test_the_far_accounts_other_peerings_are_not_this_audits_to_judge() -> None:
    # theirs also peers with a third account; that peering's blackholes and unverified
    # sides are for their own audit, while their side of ours is judged here
    net, _ours, theirs, pcx = cross(return_route=True)
    third = net.vpc("third", "10.2.0.0/16", owner=THIRD)
    other_pcx = net.peer(theirs, third)
    net.route_to_peer(net.main(theirs), other_pcx)
    net.route(net.main(theirs), "10.9.0.0/16", "pcx-gone")
    snap = net.snapshot()
    everything = run_checks(snap)
    assert {f.peering_connection_id for f in everything} >= {other_pcx, "pcx-gone"}

    kept = in_view(snap, everything)

    assert {f.peering_connection_id for f in kept} <= {pcx, None}


def test_without_a_far_side_in_view_keeps_everything() -> None:
    net, _, _, _ = cross()
    net.readable.discard((OTHER_ACCOUNT, REGION))
    snap = net.snapshot()
    found = run_checks(snap)
    assert in_view(snap, found) == found


def test_merge_reports_each_finding_once_preferring_its_own_accounts_audit() -> None:
    a, _, _theirs, _pcx = cross()
    b, _, _, _ = cross(home=OTHER_ACCOUNT)
    sa, sb = a.snapshot(), b.snapshot()
    fa, fb = run_checks(sa), run_checks(sb)

    merged = merge([(sa, fa), (sb, fb)])

    gaps = [f for f in merged if f.check_id == "route.missing_reciprocal"]
    assert len(gaps) == 1 and gaps[0].remediation is not None
    assert gaps[0].remediation.automatic  # B's own audit's version: B may fix it
    keys = [(f.check_id, f.resource_id, f.key) for f in merged]
    assert len(keys) == len(set(keys))


def test_a_peering_verified_by_one_audit_is_not_unverified_in_the_merge() -> None:
    a, _, _, pcx = cross()
    b, _, _, _ = cross(home=OTHER_ACCOUNT)
    b.readable.discard((ACCOUNT, REGION))  # B could not read A's side
    sa, sb = a.snapshot(), b.snapshot()
    assert [f.resource_id for f in run_checks(sb) if f.check_id.endswith("unverified")] == [pcx]

    merged = merge([(sa, run_checks(sa)), (sb, run_checks(sb))])

    assert not [f for f in merged if f.check_id == "route.peer_side_unverified"]


def test_a_far_side_finding_is_resolved_only_where_it_was_read_again() -> None:
    net, _, _theirs, _ = cross()
    snap = net.snapshot()
    [f] = run("route.missing_reciprocal", snap)
    covered = Coverage.of_snapshot(snap, ["route.missing_reciprocal"])
    assert covered.covers(f)
    assert (OTHER_ACCOUNT, REGION) in covered.scopes()
    elsewhere = f.model_copy(update={"resource_id": "rtb-not-read"})
    assert not covered.covers(elsewhere)
    net.readable.discard((OTHER_ACCOUNT, REGION))
    assert not Coverage.of_snapshot(net.snapshot(), ["route.missing_reciprocal"]).covers(f)


def test_security_hub_files_a_far_side_finding_in_this_account_naming_the_far_resource() -> None:
    net, _, theirs, _ = cross()
    [f] = run("route.missing_reciprocal", net.snapshot())
    n = Notification(f, Status.NEW, NOW - timedelta(hours=1), NOW)

    asff = render(n, REGION, ACCOUNT)

    assert asff["AwsAccountId"] == ACCOUNT  # the importer: BatchImportFindings requires it
    assert asff["ProductArn"].endswith(f":{ACCOUNT}:product/{ACCOUNT}/default")
    resource = asff["Resources"][0]
    assert resource["Id"] == f"arn:aws:ec2:{REGION}:{OTHER_ACCOUNT}:route-table/{net.main(theirs)}"
    assert resource["Region"] == REGION
    assert asff["ProductFields"]["peerguard/resource_account_id"] == OTHER_ACCOUNT
