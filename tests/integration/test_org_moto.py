"""Across accounts, in moto: the far side read through the member role, the CLI, the rails.

moto switches account on sts.assume_role (the assumed credentials scope its backends to
that account id), so a peering between two accounts is two real sides here. It does not
evaluate trust policies: a role that cannot be assumed is a fault answered on the wire.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from peerguard.aws.clients import Clients
from peerguard.aws.executor import Executor
from peerguard.aws.members import MemberAccess
from peerguard.cli import main
from peerguard.domain.checks import CheckContext, resolve
from peerguard.domain.plans.actions import Mode, Status
from peerguard.domain.plans.remediation import RemediationConfig, plan_all
from peerguard.state.changes import MemoryRecorder
from peerguard.usecases.pipeline import audit
from peerguard_lab.faults import Faults, Rule, error_response
from tests.integration import awsnet

REGION = "us-east-1"
A = "123456789012"  # the caller's own account (moto's default)
ROLE = "PeerGuardMember"


def session_in(account: str) -> boto3.Session:
    """Credentials in another account, as the member role gives them."""
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/peerguard/setup", RoleSessionName="setup"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )


def cross_account(a_ec2: Any, b_ec2: Any, b: str, *, return_route: bool) -> dict[str, str]:
    """A (10.20/16) peers with B (10.30/16); A routes to B; B routes back only if asked."""
    va, vb = awsnet.vpc(a_ec2, "10.20.0.0/16"), awsnet.vpc(b_ec2, "10.30.0.0/16")
    awsnet.subnet(a_ec2, va, "10.20.1.0/24")
    awsnet.subnet(b_ec2, vb, "10.30.1.0/24")
    pcx = a_ec2.create_vpc_peering_connection(VpcId=va.vpc_id, PeerVpcId=vb.vpc_id, PeerOwnerId=b)[
        "VpcPeeringConnection"
    ]["VpcPeeringConnectionId"]
    b_ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    awsnet.route(a_ec2, va.main_table, vb.cidr, pcx)
    if return_route:
        awsnet.route(b_ec2, vb.main_table, va.cidr, pcx)
    return {"pcx": pcx, "a_table": va.main_table, "b_table": vb.main_table, "b_vpc": vb.vpc_id}


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code = main(
        ["audit", "--region", REGION, "--format", "json", *argv],
        session=boto3.Session(region_name=REGION),
    )
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


def test_done_when_the_far_sides_missing_return_route_is_reported_on_its_table(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given account A peering with account B (a topology made up here), B lacking the return
    b = "210987654321"
    net = cross_account(boto3.client("ec2", region_name=REGION), session_in(b).client("ec2"), b,
                        return_route=False)  # fmt: skip

    # When A is audited from a laptop with the member role
    code, body, _ = cli_json(capsys, "--role-name", ROLE)

    # Then B's route table is the missing return route, as B's, proposed, never automatic
    found = [(f["check_id"], f["resource_id"], f["account_id"]) for f in body["findings"]]
    assert ("route.missing_reciprocal", net["b_table"], b) in found
    assert not [f for f in found if f[0] == "route.peer_side_unverified"]
    [f] = [f for f in body["findings"] if f["check_id"] == "route.missing_reciprocal"]
    assert f["remediation"]["parameters"]["RouteTableId"] == net["b_table"]
    assert f["remediation"]["automatic"] is False
    assert "never changes another account" in f["remediation"]["reason"]
    assert code == 1  # a high finding


def test_without_the_role_the_far_side_stays_unverified_and_says_why(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    b = "210987654321"
    net = cross_account(boto3.client("ec2", region_name=REGION), session_in(b).client("ec2"), b,
                        return_route=False)  # fmt: skip

    _, body, _ = cli_json(capsys)

    [f] = [f for f in body["findings"] if f["check_id"].startswith("route.")]
    assert (f["check_id"], f["resource_id"]) == ("route.peer_side_unverified", net["pcx"])
    assert "cross-account reading is off" in f["detail"]


def test_a_correct_far_side_is_verified_and_raises_nothing_on_routes(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    b = "210987654321"
    cross_account(boto3.client("ec2", region_name=REGION), session_in(b).client("ec2"), b,
                  return_route=True)  # fmt: skip

    _, body, _ = cli_json(capsys, "--role-name", ROLE)

    assert [f for f in body["findings"] if f["check_id"].startswith("route.")] == []


def test_a_role_that_cannot_be_assumed_leaves_the_side_unverified_with_access_denied(
    aws: None,
) -> None:
    b = "210987654321"
    cross_account(boto3.client("ec2", region_name=REGION), session_in(b).client("ec2"), b,
                  return_route=False)  # fmt: skip
    session = boto3.Session(region_name=REGION)
    faults = Faults(session)  # STS refuses B's member role (not deployed there, or not trusted)
    faults.add(
        Rule(
            "sts",
            "AssumeRole",
            lambda request: error_response("sts", "AccessDenied", 403, request.url),
            when=lambda request: "210987654321" in str(request.body),
        )
    )
    clients = Clients(session, default_region=REGION)

    result = audit(
        clients, [REGION], CheckContext(), resolve(None), members=MemberAccess(clients, ROLE)
    )

    [f] = [f for f in result.findings if f.check_id.startswith("route.")]
    assert f.check_id == "route.peer_side_unverified"
    assert "AccessDenied" in f.detail and "not deployed" in f.detail
    assert f.extra["reason"].startswith(
        "AccessDenied assuming arn:aws:iam::210987654321:role/peerguard/"
    )


def test_a_peer_outside_the_organization_is_not_even_tried(aws: None) -> None:
    b = "210987654321"
    cross_account(boto3.client("ec2", region_name=REGION), session_in(b).client("ec2"), b,
                  return_route=False)  # fmt: skip
    clients = Clients(boto3.Session(region_name=REGION), default_region=REGION)
    members = MemberAccess(clients, ROLE, organization=frozenset({A}))

    result = audit(clients, [REGION], CheckContext(), resolve(None), members=members)

    [f] = [f for f in result.findings if f.check_id.startswith("route.")]
    assert "outside the organization" in f.detail
    assert clients.calls["sts:AssumeRole"] == 0


def test_fix_mode_never_writes_into_the_far_account(aws: None) -> None:
    # Given B's missing return route, read through the member role and planned in fix mode
    b = "210987654321"
    b_ec2 = session_in(b).client("ec2")
    net = cross_account(boto3.client("ec2", region_name=REGION), b_ec2, b, return_route=False)
    clients = Clients(boto3.Session(region_name=REGION), default_region=REGION)
    members = MemberAccess(clients, ROLE)
    result = audit(clients, [REGION], CheckContext(), resolve(None), members=members)
    [finding] = [f for f in result.findings if f.check_id == "route.missing_reciprocal"]
    # (even a plan someone forced to automatic, as a bug or a tampered finding would)
    forced = finding.model_copy(
        update={"remediation": finding.remediation.model_copy(update={"automatic": True})}
    )
    config = RemediationConfig(default_mode=Mode.FIX)
    [planned] = plan_all([forced], result.snapshot, config, CheckContext())
    assert planned.refused and "never changes another account" in planned.reason
    from dataclasses import replace

    unrailed = replace(planned, automatic=True, refused=False, reason="")
    executor = Executor(clients, max_changes=10, regions=[REGION], recorder=MemoryRecorder(),
                        members=members)  # fmt: skip

    # When the executor is handed it anyway, in fix mode and in dry-run
    outcomes = executor.run_each([unrailed, replace(unrailed, mode=Mode.DRY_RUN)])

    # Then it refuses both before any call, and B's table is unchanged
    assert [o.status for o in outcomes] == [Status.SKIPPED, Status.SKIPPED]
    assert all("never changes another account" in o.message for o in outcomes)
    assert executor.changes == 0
    assert clients.calls["ec2:CreateRoute"] == 0
    routes = b_ec2.describe_route_tables(RouteTableIds=[net["b_table"]])["RouteTables"][0]["Routes"]
    assert not [r for r in routes if r.get("VpcPeeringConnectionId")]


def test_fix_mode_repairs_this_sides_return_route_judged_against_the_far_side(aws: None) -> None:
    # B routes to A, A lacks the return: A's own table, fixed by A after re-reading B's side
    b = "210987654321"
    a_ec2 = boto3.client("ec2", region_name=REGION)
    b_ec2 = session_in(b).client("ec2")
    va, vb = awsnet.vpc(a_ec2, "10.20.0.0/16"), awsnet.vpc(b_ec2, "10.30.0.0/16")
    awsnet.subnet(a_ec2, va, "10.20.1.0/24")
    awsnet.subnet(b_ec2, vb, "10.30.1.0/24")
    pcx = a_ec2.create_vpc_peering_connection(VpcId=va.vpc_id, PeerVpcId=vb.vpc_id, PeerOwnerId=b)[
        "VpcPeeringConnection"
    ]["VpcPeeringConnectionId"]
    b_ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)
    awsnet.route(b_ec2, vb.main_table, va.cidr, pcx)
    clients = Clients(boto3.Session(region_name=REGION), default_region=REGION)
    members = MemberAccess(clients, ROLE)
    result = audit(clients, [REGION], CheckContext(), resolve(None), members=members)
    actions = plan_all(result.findings, result.snapshot, RemediationConfig(default_mode=Mode.FIX),
                       CheckContext())  # fmt: skip
    executor = Executor(clients, max_changes=10, regions=[REGION], recorder=MemoryRecorder(),
                        members=members)  # fmt: skip

    outcomes = executor.run_each(actions)

    routes = [o for o in outcomes if o.action.call.action == "CreateRoute"]
    assert [(o.status, o.action.call.parameters["RouteTableId"]) for o in routes] == [
        (Status.APPLIED, va.main_table)
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--role-name", "a/b"], "bad role name 'a/b'"),
        (["--accounts", "1234"], "bad account id '1234'"),
        (["--accounts", "123456789012"], "--accounts and --organization need --role-name"),
        (["--role-name", "R", "--accounts", "123456789012", "--organization"], "not both"),
        (["--role-name", "R", "--accounts", "123456789012", "--mode", "fix"], "one account"),
        (["--role-name", "R", "--organization", "--max-workers", "0"], "bad number of workers"),
    ],
)
def test_bad_organization_flags_are_one_line_and_exit_2(
    aws: None, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert main(["audit", "--region", REGION, *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and says in err


def test_organization_lists_only_active_accounts_every_page(aws: None) -> None:
    from peerguard.usecases.accounts import organization_accounts

    org = boto3.client("organizations", region_name=REGION)
    org.create_organization(FeatureSet="ALL")
    made = [
        org.create_account(AccountName=f"a{i}", Email=f"a{i}@example.com")["CreateAccountStatus"][
            "AccountId"
        ]
        for i in range(25)
    ]
    org.close_account(AccountId=made[0])
    clients = Clients(boto3.Session(region_name=REGION), default_region=REGION)

    listed = organization_accounts(clients)

    assert set(made[1:]) | {A} == set(listed)
    assert clients.calls["organizations:ListAccounts"] >= 2  # 26 accounts, 20 a page
