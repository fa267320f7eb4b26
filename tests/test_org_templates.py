"""org/: the member role reads exactly what the reader reads and writes nothing; it trusts
only PeerGuard's function roles of the organization; the stack assumes only it."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
import yaml

from peerguard.aws.reader import READ_ACTIONS
from peerguard.domain.names import ROLE_PATH
from peerguard_lab.template import ROOT, CfnLoader, functions, template
from tests.test_template import actions, statements


def load(name: str) -> dict[str, Any]:
    return yaml.load((ROOT / "org" / name).read_text(), Loader=CfnLoader)


def member_role() -> dict[str, Any]:
    return load("member-role.yaml")["Resources"]["MemberRole"]["Properties"]


def test_the_member_role_grants_exactly_the_readers_describe_calls_and_nothing_else() -> None:
    granted = {
        a
        for policy in member_role()["Policies"]
        for stmt in policy["PolicyDocument"]["Statement"]
        for a in actions(stmt)
    }
    assert granted == set(READ_ACTIONS)
    assert all(a.split(":")[1].startswith("Describe") for a in granted)  # never a write


def test_the_member_role_trusts_only_peerguard_roles_of_the_organization() -> None:
    props = member_role()
    assert props["Path"] == ROLE_PATH
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Action"] == "sts:AssumeRole" and trust["Effect"] == "Allow"
    assert trust["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}
    when_auditor, without = trust["Condition"]["ArnLike"]["aws:PrincipalArn"]["Fn::If"][1:]
    pattern = {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role" + ROLE_PATH + "*"}
    assert without == [pattern]
    assert when_auditor == [pattern, {"Ref": "AuditorRolePattern"}]


def test_peerguards_function_roles_are_under_the_path_the_member_role_trusts() -> None:
    for name, fn in functions().items():
        assert fn["Properties"]["RolePath"] == ROLE_PATH, name


@pytest.mark.parametrize("name", ["ChangeAuditorFunction", "SweepFunction"])
def test_the_stack_assumes_only_the_member_role_only_when_named_and_in_its_organization(
    name: str,
) -> None:
    grants = [
        (cond, s)
        for cond, s in statements(functions()[name]["Properties"]["Policies"])
        if any(a.startswith("sts:") for a in actions(s))
    ]
    assert [cond for cond, _ in grants] == ["HasMemberRole"]
    ((_, stmt),) = grants
    assert actions(stmt) == {"sts:AssumeRole"}
    assert stmt["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:iam::*:role" + ROLE_PATH + "${MemberRoleName}"
    }
    assert stmt["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}}
    env = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert env["PEERGUARD_MEMBER_ROLE_NAME"] == {"Ref": "MemberRoleName"}


def test_the_central_topic_and_bus_take_only_the_organizations_peerguard() -> None:
    res = load("central.yaml")["Resources"]
    (topic,) = res["FindingsTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert topic["Action"] == "sns:Publish"
    assert topic["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}
    bus = res["FindingsBusPolicy"]["Properties"]["Statement"]
    assert bus["Condition"]["StringEquals"] == {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}


@pytest.mark.parametrize("kind", ["peerguard", "member"])
def test_stackset_commands_are_service_managed_auto_deployed_to_the_ous(kind: str) -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "org" / "stackset.py"), kind],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    cfg = json.loads((ROOT / "org" / "parameters.json").read_text())
    assert "--permission-model SERVICE_MANAGED" in out
    assert "--auto-deployment Enabled=true" in out
    assert f"OrganizationalUnitIds={','.join(cfg['OrganizationalUnitIds'])}" in out
    if kind == "peerguard":
        assert "sam package" in out and "file://.aws-sam/packaged.yaml" in out
    else:
        assert "file://org/member-role.yaml" in out
