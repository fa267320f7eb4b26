"""The organization simulation: 50 accounts in moto, 100 cross-account peerings, defects
planted on the far (accepter) sides. Audited at once through the member role: every
defect found once, nothing else; every account gets the same number of API calls."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from peerguard.aws.clients import Clients
from peerguard.cli import main
from peerguard.domain.checks import CheckContext, resolve
from peerguard.usecases.accounts import audit_accounts
from peerguard_lab.faults import Faults, Rule, error_response
from tests.integration.orgnet import CHECKS, ROLE, build_org

REGION = "us-east-1"


def ec2_in(account: str) -> Any:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/peerguard/setup", RoleSessionName="setup"
    )["Credentials"]
    return boto3.client(
        "ec2",
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def test_fifty_accounts_every_far_side_defect_found_once_and_nothing_else(aws: None) -> None:
    # Given 50 accounts, 100 cross-account peerings, 15 defects on accepter sides
    org = build_org(50, ec2_in)
    assert (len(org.accounts), len(org.peerings), len(org.planted)) == (50, 100, 15)
    base = Clients(boto3.Session(region_name=REGION), default_region=REGION)

    # When all of them are audited at once through the member role
    report = audit_accounts(
        base, org.accounts, ROLE, [REGION], CheckContext(), resolve(CHECKS), max_workers=8
    )

    # Then every planted defect is reported exactly once, and nothing else
    assert report.failures == []
    found = [(f.check_id, f.resource_id, f.account_id) for f in report.findings]
    assert sorted(found) == sorted(org.planted)
    # each was also judged from the requester's side, across the peering (the far side)
    for defect, requester in org.seen_from.items():
        seen = report.results[requester].findings
        assert defect in {(f.check_id, f.resource_id, f.account_id) for f in seen}, defect
    # every peering is one peering, seen from both sides
    assert report.summary()["peerings"] == 100
    # and the calls each account receives are the same for all: they do not grow with the org
    calls = report.calls_per_account
    assert set(calls) == set(org.accounts)
    assert max(calls.values()) - min(calls.values()) <= 2, calls


def test_the_cli_audits_listed_accounts_isolates_a_failing_one_and_merges(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    org = build_org(6, ec2_in)
    # an account the role cannot be assumed in: its line on stderr, the rest goes on
    argv = ["audit", "--region", REGION, "--format", "json", "--role-name", ROLE,
            "--checks", ",".join(CHECKS), "--max-workers", "3",
            "--accounts", ",".join([*org.accounts, "not-an-account"])]  # fmt: skip
    assert main(argv, session=boto3.Session(region_name=REGION)) == 2
    assert "bad account id" in capsys.readouterr().err

    # STS refuses the member role of one account (not deployed there)
    session = boto3.Session(region_name=REGION)
    broken = org.accounts[0]
    Faults(session).add(
        Rule(
            "sts",
            "AssumeRole",
            lambda request: error_response("sts", "AccessDenied", 403, request.url),
            when=lambda request: broken in str(request.body),
        )
    )
    code = main([*argv[:-1], ",".join(org.accounts)], session=session)
    out, err = capsys.readouterr()

    # Then its one line names it and why, the others are audited and merged, exit 2
    assert code == 2
    assert f"peerguard: error: account {broken}: AccessDenied assuming" in err
    assert "[6/6]" in err
    body = json.loads(out)
    assert body["summary"]["accounts_audited"] == sorted(org.accounts[1:])
    unverified = [f for f in body["findings"] if f["check_id"] == "route.peer_side_unverified"]
    assert unverified and all(broken in f["detail"] for f in unverified)
    # Everything planted on peerings without that account is found; anything else is about a peering
    # with it, judged from one side only (e.g. peering.no_routes: no route from here)
    half_seen = {f["resource_id"] for f in unverified}
    found = {(f["check_id"], f["resource_id"], f["account_id"]): f for f in body["findings"]}
    assert {d for d in org.planted if broken not in (d[2], org.seen_from[d])} <= set(found)
    others = [f for k, f in found.items() if k not in org.planted]
    assert others and all(f["peering_connection_id"] in half_seen for f in others)


def test_the_merged_table_names_the_accounts_and_each_finding_once(
    aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    org = build_org(5, ec2_in)
    argv = ["audit", "--region", REGION, "--role-name", ROLE, "--checks", ",".join(CHECKS),
            "--accounts", ",".join(org.accounts)]  # fmt: skip

    assert main(argv, session=boto3.Session(region_name=REGION)) == 1

    out, err = capsys.readouterr()
    head = out.splitlines()[0]
    assert head.startswith("PeerGuard audit of 5 accounts in us-east-1: ") and "10 peerings" in head
    rows = [line.split()[1:3] for line in out.splitlines() if line.startswith("  HIGH ")]
    assert sorted(rows) == sorted([c, r] for c, r, _ in org.planted)
    assert "[5/5]" in err
