"""template.yaml: least privilege that matches the code, validated parameters, real handlers."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from peerguard.aws.allowlist import IAM_ACTION as ALLOWLIST_READ
from peerguard.aws.reader import READ_ACTIONS
from peerguard.domain import catalogue
from peerguard.domain.plans import acceptance, rails, remediation
from peerguard.domain.setup import TRAIL_READS
from peerguard_lab.template import ROOT, functions, template

MUTATING_EC2 = set(rails.IAM_ACTIONS)


def statements(policies: list[Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """(condition name or None, statement) for every inline statement of a function."""
    out: list[tuple[str | None, dict[str, Any]]] = []
    for p in policies:
        cond = None
        if isinstance(p, dict) and "Fn::If" in p:
            cond, p = p["Fn::If"][0], p["Fn::If"][1]
        if isinstance(p, dict) and "Statement" in p:
            out.extend((cond, s) for s in p["Statement"])
    return out


def actions(stmt: dict[str, Any]) -> set[str]:
    a = stmt["Action"]
    return {a} if isinstance(a, str) else set(a)


@pytest.mark.parametrize("name", sorted(functions()))
def test_every_function_reads_exactly_what_the_checks_and_reader_need(name: str) -> None:
    # Given the IAM actions each check declares and the calls the snapshot reader makes
    declared = {a for c in catalogue.checks().values() for a in c.iam_actions}
    assert declared <= set(READ_ACTIONS), "a check needs a call the reader never makes"
    # When we read the function's unconditional EC2 grants
    grants = [s for cond, s in statements(functions()[name]["Properties"]["Policies"]) if not cond]
    ec2_read = {a for s in grants for a in actions(s) if a.startswith("ec2:")}
    # Then they are exactly the reader's describe calls: nothing more, nothing less
    assert ec2_read == set(READ_ACTIONS)


@pytest.mark.parametrize("name", sorted(functions()))
def test_mutating_permissions_exist_only_under_a_condition(name: str) -> None:
    for cond, stmt in statements(functions()[name]["Properties"]["Policies"]):
        if actions(stmt) & MUTATING_EC2:
            assert cond in {
                "IsFixMode",
                "CanFixDns",
                "CanFixFlowLogs",
                "CanAutoAccept",
                "CanAddReturnRoutes",
                "CanAcceptDns",
                "CanRejectUnlisted",
            }, f"{name}: {stmt['Sid']} is unconditional"
            assert stmt["Resource"] != "*", f"{name}: {stmt['Sid']} is not scoped"


@pytest.mark.parametrize(
    ("name", "makes"),
    [
        ("ChangeAuditorFunction", remediation.IAM_ACTIONS),
        ("SweepFunction", remediation.IAM_ACTIONS),
        ("AcceptanceFunction", acceptance.IAM_ACTIONS),
    ],
)
def test_conditional_grants_are_exactly_the_changes_the_code_makes(
    name: str, makes: tuple[str, ...]
) -> None:
    granted = {
        a
        for cond, stmt in statements(functions()[name]["Properties"]["Policies"])
        if cond
        for a in actions(stmt)
        if a.startswith("ec2:")
    }
    assert granted == set(makes)


def test_only_the_sweep_reads_trail_coverage_and_exactly_what_it_calls() -> None:
    for name, fn in functions().items():
        grants = {
            a
            for _, s in statements(fn["Properties"]["Policies"])
            for a in actions(s)
            if a.startswith("cloudtrail:")
        }
        assert grants == (set(TRAIL_READS) if name == "SweepFunction" else set()), name


def test_every_change_the_planners_make_has_a_rail() -> None:
    assert set(remediation.IAM_ACTIONS) | set(acceptance.IAM_ACTIONS) == set(rails.IAM_ACTIONS)


@pytest.mark.parametrize("name", sorted(functions()))
def test_every_function_reads_the_allowlist_parameter_it_judges_against(name: str) -> None:
    # Every function judges peerings against the allowlist, so each reads the SSM parameter,
    # only that parameter, and only when one is configured.
    grants = [
        (cond, s)
        for cond, s in statements(functions()[name]["Properties"]["Policies"])
        if ALLOWLIST_READ in actions(s)
    ]
    assert [cond for cond, _ in grants] == ["HasAllowlistParameter"]
    ((_, stmt),) = grants
    assert actions(stmt) == {ALLOWLIST_READ}
    assert "parameter${AllowlistParameterName}" in stmt["Resource"]["Fn::Sub"]


def test_route_repairs_are_denied_on_resources_tagged_to_be_ignored() -> None:
    for name, fn in functions().items():
        for cond, stmt in statements(fn["Properties"]["Policies"]):
            if cond == "IsFixMode" and "ec2:DeleteRoute" in actions(stmt):
                tag = stmt["Condition"]["StringNotEquals"]
                assert tag == {"ec2:ResourceTag/peerguard:ignore": "true"}, name


def _subs(resource: Any) -> list[str]:
    """The Fn::Sub strings of a Resource (one or a list)."""
    items = resource if isinstance(resource, list) else [resource]
    return [r["Fn::Sub"] for r in items if isinstance(r, dict) and "Fn::Sub" in r]


@pytest.mark.parametrize("name", ["ChangeAuditorFunction", "SweepFunction"])
def test_rule_revokes_exist_only_in_fix_mode_on_untagged_security_groups(name: str) -> None:
    grants = [
        (cond, s)
        for cond, s in statements(functions()[name]["Properties"]["Policies"])
        if "ec2:RevokeSecurityGroupIngress" in actions(s)
    ]
    assert [cond for cond, _ in grants] == ["IsFixMode"]
    ((_, stmt),) = grants
    assert actions(stmt) == {"ec2:RevokeSecurityGroupIngress"}  # never the group, never egress
    assert stmt["Condition"] == {"StringNotEquals": {"ec2:ResourceTag/peerguard:ignore": "true"}}
    arns = _subs(stmt["Resource"])
    assert arns and all(":security-group" in a and a.endswith("/*") for a in arns)
    assert "*" not in stmt["Resource"]


@pytest.mark.parametrize("name", ["ChangeAuditorFunction", "SweepFunction"])
def test_flow_logs_are_created_only_with_fix_flow_logs_and_pass_only_the_stacks_role(
    name: str,
) -> None:
    grants = {
        s["Sid"]: (cond, s)
        for cond, s in statements(functions()[name]["Properties"]["Policies"])
        if actions(s) & {"ec2:CreateFlowLogs", "iam:PassRole"}
    }
    assert set(grants) == {"CreateMissingFlowLogs", "PassFlowLogDeliveryRole"}
    assert {cond for cond, _ in grants.values()} == {"CanFixFlowLogs"}
    create = grants["CreateMissingFlowLogs"][1]
    assert actions(create) == {"ec2:CreateFlowLogs"}
    assert create["Condition"]["StringNotEquals"] == {"ec2:ResourceTag/peerguard:ignore": "true"}
    assert [a.rsplit(":", 1)[1] for a in _subs(create["Resource"])] == ["vpc/*", "vpc-flow-log/*"]
    passing = grants["PassFlowLogDeliveryRole"][1]
    assert passing["Resource"] == {"Fn::GetAtt": ["FlowLogDeliveryRole", "Arn"]}
    assert passing["Condition"] == {
        "StringEquals": {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}
    }
    conditions = template()["Conditions"]
    assert conditions["CanFixFlowLogs"] == {
        "Fn::And": [{"Fn::Condition": "IsFixMode"}, {"Fn::Condition": "HasFlowLogGroup"}]
    }


def test_the_flow_log_group_and_its_delivery_role_exist_only_with_fix_flow_logs() -> None:
    resources = template()["Resources"]
    assert resources["FlowLogGroup"]["Condition"] == "HasFlowLogGroup"
    role = resources["FlowLogDeliveryRole"]
    assert role["Condition"] == "HasFlowLogGroup"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    (policy,) = role["Properties"]["Policies"]
    (stmt,) = policy["PolicyDocument"]["Statement"]
    assert {"logs:CreateLogStream", "logs:PutLogEvents"} <= actions(stmt)
    assert "*" not in stmt["Resource"]  # only the stack's own log group


def test_every_parameter_is_validated() -> None:
    for name, p in template()["Parameters"].items():
        rules = {"AllowedValues", "AllowedPattern", "MinValue"} & set(p)
        assert rules, f"parameter {name} accepts anything"


@pytest.mark.parametrize("name", sorted(functions()))
def test_each_function_handler_exists(name: str) -> None:
    props = functions()[name]["Properties"]
    module, attr = props["Handler"].rsplit(".", 1)
    path = ROOT / props["CodeUri"] / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"handler_{name}", path)
    assert spec and spec.loader, path
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert callable(getattr(mod, attr))
