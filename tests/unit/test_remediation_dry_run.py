"""Dry-run against EC2's real DryRun answers (botocore Stubber: moto ignores DryRun)."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from peerguard.aws.clients import Clients
from peerguard.aws.executor import Executor
from peerguard.domain.checks import CheckContext, run_checks
from peerguard.domain.plans.actions import Mode, Status
from peerguard.domain.plans.remediation import RemediationConfig, plan_all
from tests.unit.test_remediation_plan import REGION, network

DRY_RUN = RemediationConfig(default_mode=Mode.DRY_RUN)
CTX = CheckContext()


def stubbed() -> tuple[Clients, Stubber]:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    clients = Clients(session, default_region=REGION)
    return clients, Stubber(clients.client("ec2", REGION))


def test_dry_run_sends_dry_run_and_reads_the_answer() -> None:
    # Given one missing return route and one blackhole, EC2 allows the first, denies the second.
    snap = network()
    actions = [a for a in plan_all(run_checks(snap), snap, DRY_RUN, CTX) if a.automatic]
    assert sorted(a.subject.check_id for a in actions) == [
        "route.blackhole",
        "route.missing_reciprocal",
    ]
    clients, stub = stubbed()
    for a in actions:
        allowed = a.call.action == "CreateRoute"
        stub.add_client_error(
            a.call.method,
            service_error_code="DryRunOperation" if allowed else "UnauthorizedOperation",
            service_message="Request would have succeeded, but DryRun flag is set."
            if allowed
            else "You are not authorized to perform this operation.",
            http_status_code=412 if allowed else 403,
            expected_params={**a.call.parameters, "DryRun": True},
        )
    executor = Executor(clients, max_changes=10)

    with stub:
        outcomes = executor.run_each(actions)

    stub.assert_no_pending_responses()
    [ok] = [o for o in outcomes if o.status is Status.VERIFIED]
    assert ok.message.startswith("would succeed: aws ec2 create-route ")
    [denied] = [o for o in outcomes if o.status is Status.FAILED]
    assert denied.error_code == "UnauthorizedOperation"
    assert denied.message.startswith(
        "not permitted: ec2:DeleteRoute was denied (UnauthorizedOperation)"
    )
    assert executor.changes == 0 and not any(o.made for o in outcomes)


def test_dry_run_success_answer_means_the_endpoint_ignored_dry_run() -> None:
    snap = network()
    [action] = [
        a
        for a in plan_all(run_checks(snap), snap, DRY_RUN, CTX)
        if a.automatic and a.subject.check_id == "route.blackhole"
    ]
    clients, stub = stubbed()
    stub.add_response(
        action.call.method, {}, expected_params={**action.call.parameters, "DryRun": True}
    )
    with stub:
        [outcome] = Executor(clients, max_changes=10).run_each([action])
    assert outcome.status is Status.FAILED and outcome.error_code == "DryRunIgnored"
    assert "undo: aws ec2 create-route " in outcome.message
