"""Dry-run against EC2's real DryRun answers (botocore Stubber: moto ignores DryRun)."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from peerguard.aws.clients import Clients
from peerguard.checks import run_checks
from peerguard.remediation import Mode, RemediationConfig, Status, plan_all
from peerguard.remediation.apply import Applier
from tests.unit.test_remediation_plan import REGION, network

DRY_RUN = RemediationConfig(default_mode=Mode.DRY_RUN)


def stubbed() -> tuple[Clients, Stubber]:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    clients = Clients(session, default_region=REGION)
    return clients, Stubber(clients.client("ec2", REGION))


def test_dry_run_sends_dry_run_and_reads_the_answer() -> None:
    # Given one missing return route and one blackhole, EC2 allows the first, denies the second.
    snap = network()
    actions = [a for a in plan_all(run_checks(snap), snap, DRY_RUN) if a.automatic]
    assert sorted(a.finding.check_id for a in actions) == [
        "route.blackhole",
        "route.missing_reciprocal",
    ]
    clients, stub = stubbed()
    for a in actions:
        assert a.call is not None
        allowed = a.call.operation == "CreateRoute"
        stub.add_client_error(
            a.call.method,
            service_error_code="DryRunOperation" if allowed else "UnauthorizedOperation",
            service_message="Request would have succeeded, but DryRun flag is set."
            if allowed
            else "You are not authorized to perform this operation.",
            http_status_code=412 if allowed else 403,
            expected_params={**a.call.parameters, "DryRun": True},
        )

    with stub:
        result = Applier(clients, DRY_RUN).run(actions)

    stub.assert_no_pending_responses()
    [ok] = result.verified
    assert ok.message.startswith("would succeed: CreateRoute(")
    [denied] = result.failed
    assert denied.status is Status.FAILED and denied.error_code == "UnauthorizedOperation"
    assert denied.message.startswith(
        "not permitted: ec2:DeleteRoute was denied (UnauthorizedOperation)"
    )
    assert result.changes_attempted == 0


def test_dry_run_success_answer_means_the_endpoint_ignored_dry_run() -> None:
    snap = network()
    [action] = [
        a
        for a in plan_all(run_checks(snap), snap, DRY_RUN)
        if a.automatic and a.finding.check_id == "route.blackhole"
    ]
    assert action.call is not None
    clients, stub = stubbed()
    stub.add_response(
        action.call.method, {}, expected_params={**action.call.parameters, "DryRun": True}
    )
    with stub:
        [outcome] = Applier(clients, DRY_RUN).run([action]).outcomes
    assert outcome.status is Status.FAILED and outcome.error_code == "DryRunIgnored"
    assert "undo: CreateRoute(" in outcome.message
