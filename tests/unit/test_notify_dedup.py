"""Dedup decisions: announce new, changed, due-again and resolved findings; suppress the rest."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from peerguard.domain.coverage import Coverage
from peerguard.domain.dedup import OPEN, RESOLVED, FindingState, Kind, decide
from peerguard.domain.findings import Finding, Remediation, Severity
from peerguard.domain.model import PeeringConnection, PeeringSide, RouteTable, Snapshot, Vpc
from peerguard.domain.scope import Scope

ACCOUNT, REGION = "123456789012", "us-east-1"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(hours=24)
FULL = Coverage(
    ACCOUNT, frozenset({REGION}), frozenset({"route.missing_reciprocal", "peering.no_routes"})
)


def finding(
    resource_id: str = "rtb-0a1",
    check_id: str = "route.missing_reciprocal",
    detail: str = "subnet-1 routes 10.1.0.0/16 via pcx-1, no return route",
    severity: Severity = Severity.HIGH,
    pcx: str | None = "pcx-1",
    region: str = REGION,
    key: str = "",
) -> Finding:
    return Finding(
        check_id=check_id,
        severity=severity,
        resource_type="AWS::EC2::RouteTable"
        if resource_id.startswith("rtb-")
        else "AWS::EC2::VPCPeeringConnection",
        resource_id=resource_id,
        account_id=ACCOUNT,
        region=region,
        vpc_id="vpc-b",
        peering_connection_id=pcx,
        title="Peer subnet has no return route",
        detail=detail,
        remediation=Remediation(
            action="CreateRoute",
            parameters={
                "RouteTableId": resource_id,
                "DestinationCidrBlock": "10.0.0.0/16",
                "VpcPeeringConnectionId": pcx,
            },
            automatic=True,
        ),
        key=key,
    )


def state(
    f: Finding,
    *,
    notified_ago: timedelta | None = timedelta(hours=1),
    status: str | None = OPEN,
    content_hash: str | None = None,
    claimed_ago: timedelta | None = None,
) -> FindingState:
    notified_at = NOW - notified_ago if notified_ago is not None else None
    return FindingState(
        fingerprint=f.fingerprint,
        check_id=f.check_id,
        severity=f.severity.value,
        resource_id=f.resource_id,
        account_id=f.account_id,
        region=f.region,
        first_seen=NOW - timedelta(days=3),
        last_seen=NOW - timedelta(hours=1),
        revision=2,
        peering_connection_id=f.peering_connection_id,
        vpc_id=f.vpc_id,
        status=status,
        notified_at=notified_at,
        content_hash=content_hash or f.content_hash,
        finding=f,
        claimed_at=(NOW - claimed_ago) if claimed_ago is not None else notified_at,
    )


def kinds(findings, previous, coverage=FULL) -> dict[str, Kind]:
    by_fp = {s.fingerprint: s for s in previous}
    return {d.finding.resource_id: d.kind for d in decide(findings, by_fp, coverage, NOW, WINDOW)}


def test_a_finding_never_seen_is_new() -> None:
    assert kinds([finding()], []) == {"rtb-0a1": Kind.NEW}


def test_a_finding_announced_within_the_window_is_suppressed() -> None:
    f = finding()
    assert kinds([f], [state(f, notified_ago=timedelta(hours=23))]) == {"rtb-0a1": Kind.SUPPRESSED}


def test_a_finding_still_open_after_the_window_is_announced_again() -> None:
    f = finding()
    assert kinds([f], [state(f, notified_ago=timedelta(hours=24))]) == {"rtb-0a1": Kind.REPEAT}


def test_a_finding_whose_content_changed_is_announced_within_the_window() -> None:
    before = finding(detail="old wording")
    now = finding(detail="new wording, another subnet affected")
    assert before.fingerprint == now.fingerprint
    assert kinds([now], [state(before, notified_ago=timedelta(minutes=5))]) == {
        "rtb-0a1": Kind.CHANGED
    }


def test_a_severity_change_counts_as_a_change() -> None:
    before = finding(severity=Severity.MEDIUM)
    assert kinds([finding()], [state(before)]) == {"rtb-0a1": Kind.CHANGED}


def test_a_resolved_finding_that_comes_back_is_new_again() -> None:
    f = finding()
    assert kinds([f], [state(f, status=RESOLVED)]) == {"rtb-0a1": Kind.NEW}


def test_a_claimed_but_never_recorded_finding_is_suppressed_while_the_claim_is_fresh() -> None:
    f = finding()
    fresh = state(f, status=None, notified_ago=None, claimed_ago=timedelta(minutes=2))
    assert kinds([f], [fresh]) == {"rtb-0a1": Kind.SUPPRESSED}


def test_an_abandoned_claim_is_announced_as_new() -> None:
    f = finding()
    stale = state(f, status=None, notified_ago=None, claimed_ago=timedelta(hours=2))
    assert kinds([f], [stale]) == {"rtb-0a1": Kind.NEW}


def test_an_open_finding_gone_from_a_full_audit_is_resolved() -> None:
    gone = finding("rtb-gone")
    decisions = decide([], {gone.fingerprint: state(gone)}, FULL, NOW, WINDOW)
    assert [(d.kind, d.finding) for d in decisions] == [(Kind.RESOLVED, gone)]


def test_an_already_resolved_finding_is_not_resolved_twice() -> None:
    gone = finding("rtb-gone")
    assert kinds([], [state(gone, status=RESOLVED)]) == {}


@pytest.mark.parametrize(
    "coverage",
    [
        replace(FULL, check_ids=frozenset({"peering.no_routes"})),  # its check did not run
        replace(FULL, regions=frozenset({"eu-west-1"})),  # its region was not read
        replace(FULL, account_id="999999999999"),  # another account
        replace(FULL, resource_ids=frozenset({"rtb-other", "vpc-b"})),  # scoped elsewhere
    ],
    ids=["check", "region", "account", "scope"],
)
def test_an_open_finding_outside_the_coverage_is_left_alone(coverage: Coverage) -> None:
    gone = finding("rtb-gone")
    assert kinds([], [state(gone)], coverage) == {}


def test_a_scoped_audit_resolves_findings_about_what_it_looked_at() -> None:
    looked, elsewhere = finding("rtb-looked"), finding("rtb-elsewhere")
    scoped = replace(FULL, resource_ids=frozenset({"rtb-looked"}))
    assert kinds([], [state(looked), state(elsewhere)], scoped) == {"rtb-looked": Kind.RESOLVED}


def test_two_findings_of_one_check_on_one_resource_are_told_apart_by_key() -> None:
    a, b = finding(key="10.1.0.0/16"), finding(key="10.2.0.0/16")
    decisions = decide([a, b, a], {a.fingerprint: state(a)}, FULL, NOW, WINDOW)
    assert sorted(d.kind for d in decisions) == [Kind.NEW, Kind.SUPPRESSED]


def test_decision_carries_first_seen_into_the_notification() -> None:
    f = finding()
    prev = state(f, notified_ago=timedelta(days=2))
    (d,) = decide([f], {f.fingerprint: prev}, FULL, NOW, WINDOW)
    n = d.notification(NOW)
    assert (n.status.value, n.first_seen, n.observed_at) == ("repeat", prev.first_seen, NOW)


# -- coverage of real snapshots ----------------------------------------------------------------


def _snapshot(partial: frozenset[tuple[str, str]] = frozenset()) -> Snapshot:
    side_a = PeeringSide(
        owner_id=ACCOUNT, vpc_id="vpc-a", region=REGION, cidr_blocks=("10.0.0.0/16",)
    )
    side_b = PeeringSide(
        owner_id=ACCOUNT, vpc_id="vpc-b", region=REGION, cidr_blocks=("10.1.0.0/16",)
    )
    side_x = PeeringSide(
        owner_id=ACCOUNT, vpc_id="vpc-x", region=REGION, cidr_blocks=("10.9.0.0/16",)
    )
    return Snapshot(
        account_id=ACCOUNT,
        taken_at=NOW,
        readable=frozenset({(ACCOUNT, REGION), (ACCOUNT, "us-west-2")}),
        vpcs={
            "vpc-a": Vpc(
                vpc_id="vpc-a", owner_id=ACCOUNT, region=REGION, cidr_blocks=("10.0.0.0/16",)
            ),
        },
        route_tables={"rtb-a": RouteTable(route_table_id="rtb-a", vpc_id="vpc-a")},
        peerings={
            "pcx-1": PeeringConnection(
                pcx_id="pcx-1", status="active", requester=side_a, accepter=side_b
            ),
            # only referenced by a route: its VPCs were not read
            "pcx-9": PeeringConnection(
                pcx_id="pcx-9", status="active", requester=side_x, accepter=side_b
            ),
        },
        partial=partial,
    )


def test_coverage_of_a_full_audit_spans_the_regions_read() -> None:
    cov = Coverage.of_snapshot(_snapshot(), ["route.blackhole"])
    assert (cov.regions, cov.resource_ids) == (frozenset({REGION, "us-west-2"}), None)


def test_coverage_leaves_out_a_region_whose_reads_failed() -> None:
    cov = Coverage.of_snapshot(_snapshot(frozenset({("us-west-2", "route_tables")})), ["x"])
    assert cov.regions == frozenset({REGION})


def test_coverage_of_a_scoped_audit_names_what_was_looked_at() -> None:
    scope = Scope(route_table_ids=frozenset({"rtb-a", "rtb-deleted"}))
    cov = Coverage.of_snapshot(_snapshot(), ["route.blackhole"], scope)
    assert cov.resource_ids == frozenset({"rtb-a", "rtb-deleted", "vpc-a", "pcx-1"})
