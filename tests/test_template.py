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
    writes, describe_groups = policy["PolicyDocument"]["Statement"]
    assert {"logs:CreateLogStream", "logs:PutLogEvents"} <= actions(writes)
    assert "*" not in writes["Resource"]  # only the stack's own log group
    # A list call authorizes on "*" only; it is the one action there, and it reads.
    assert actions(describe_groups) == {"logs:DescribeLogGroups"}


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


# -- hardening: alarms, log groups, tracing, encryption, skips ------------------------------


def _resources(kind: str) -> dict[str, dict[str, Any]]:
    return {n: r for n, r in template()["Resources"].items() if r["Type"] == kind}


def _alarms() -> list[dict[str, Any]]:
    return [r["Properties"] for r in _resources("AWS::CloudWatch::Alarm").values()]


def _dimension(alarm: dict[str, Any], name: str) -> Any:
    return next((d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == name), None)


def _dead_letter_queues() -> set[str]:
    """Queues where messages end: every queue that redrives nowhere else. The grace queue
    redrives to its DLQ; the rest are dead letters (of EventBridge, of Lambda's async
    invocations, of the notifiers) and need a person when they hold one."""
    return {
        n
        for n, q in _resources("AWS::SQS::Queue").items()
        if "RedrivePolicy" not in q["Properties"]
    }


def test_the_dead_letter_queues_are_found() -> None:
    assert _dead_letter_queues() == {
        "GraceDeadLetterQueue",
        "NotificationDeadLetterQueue",
        "EventDeadLetterQueue",
    }
    # What the stack dead-letters into is among them.
    glob = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert glob["PEERGUARD_NOTIFY_DLQ_URL"] == {"Ref": "NotificationDeadLetterQueue"}
    redrive = template()["Resources"]["GraceQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"]["Fn::GetAtt"][0] in _dead_letter_queues()


@pytest.mark.parametrize("queue", sorted(_dead_letter_queues()))
def test_every_dead_letter_queue_alarms_on_its_first_message(queue: str) -> None:
    alarms = [
        a
        for a in _alarms()
        if a["Namespace"] == "AWS/SQS"
        and _dimension(a, "QueueName") == {"Fn::GetAtt": [queue, "QueueName"]}
    ]
    assert len(alarms) == 1, f"{queue} has {len(alarms)} alarms"
    (alarm,) = alarms
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["TreatMissingData"] == "notBreaching"  # an empty queue reports nothing
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]


@pytest.mark.parametrize("name", sorted(functions()))
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_every_function_alarms_on_errors_and_throttles(name: str, metric: str) -> None:
    alarms = [
        a
        for a in _alarms()
        if a["Namespace"] == "AWS/Lambda"
        and a["MetricName"] == metric
        and _dimension(a, "FunctionName") == {"Ref": name}
    ]
    assert len(alarms) == 1, f"{name} has {len(alarms)} {metric} alarms"
    (alarm,) = alarms
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Sum",
        "GreaterThanThreshold",
        0,
    )
    assert alarm["AlarmActions"] == [{"Ref": "AlertTopic"}]


def test_every_alarm_watches_something_that_exists() -> None:
    resources = template()["Resources"]
    for alarm in _alarms():
        for d in alarm["Dimensions"]:
            target = d["Value"].get("Ref") or d["Value"]["Fn::GetAtt"][0]
            assert target in resources, alarm["AlarmDescription"]


@pytest.mark.parametrize("name", sorted(functions()))
def test_every_function_logs_to_its_own_group_kept_for_the_retention_parameter(name: str) -> None:
    logging_config = functions()[name]["Properties"]["LoggingConfig"]
    group = logging_config["LogGroup"]["Ref"]
    res = template()["Resources"][group]
    assert res["Type"] == "AWS::Logs::LogGroup"
    assert res["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert res["Properties"]["LogGroupName"]["Fn::Sub"].startswith("/aws/lambda/${AWS::StackName}-")
    # SAM merges the function's LoggingConfig with Globals': JSON logs stay.
    assert template()["Globals"]["Function"]["LoggingConfig"] == {"LogFormat": "JSON"}
    others = [n for n, f in functions().items() if n != name]
    assert all(
        functions()[o]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] != group for o in others
    )


def test_log_retention_takes_only_values_cloudwatch_accepts() -> None:
    p = template()["Parameters"]["LogRetentionDays"]
    cloudwatch = {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827}
    cloudwatch |= {2192, 2557, 2922, 3288, 3653}
    assert set(p["AllowedValues"]) == cloudwatch and p["Default"] in cloudwatch


def test_tracing_is_a_parameter_every_function_follows() -> None:
    assert template()["Parameters"]["Tracing"]["AllowedValues"] == ["Active", "PassThrough"]
    assert template()["Globals"]["Function"]["Tracing"] == {"Ref": "Tracing"}
    assert not [n for n, f in functions().items() if "Tracing" in f["Properties"]]


@pytest.mark.parametrize("queue", sorted(_resources("AWS::SQS::Queue")))
def test_every_queue_is_encrypted(queue: str) -> None:
    props = _resources("AWS::SQS::Queue")[queue]["Properties"]
    assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId")


def test_the_alert_topic_is_under_a_rotated_key_cloudwatch_alarms_may_use() -> None:
    for name, topic in _resources("AWS::SNS::Topic").items():
        key_ref = topic["Properties"]["KmsMasterKeyId"]
        # alias/aws/sns cannot be granted to CloudWatch: a customer managed key.
        assert isinstance(key_ref, dict), f"{name}: {key_ref}"
        key = template()["Resources"][key_ref["Ref"]]
        assert key["Type"] == "AWS::KMS::Key"
        assert key["Properties"]["EnableKeyRotation"] is True
        grants = {
            s["Principal"].get("Service"): s for s in key["Properties"]["KeyPolicy"]["Statement"]
        }
        cloudwatch = grants["cloudwatch.amazonaws.com"]
        assert {"kms:Decrypt", "kms:GenerateDataKey*"} == actions(cloudwatch)
        assert cloudwatch["Condition"]["StringEquals"] == {
            "aws:SourceAccount": {"Ref": "AWS::AccountId"}
        }


@pytest.mark.parametrize("name", sorted(functions()))
def test_every_function_may_publish_to_the_encrypted_topic(name: str) -> None:
    grants = [
        s
        for cond, s in statements(functions()[name]["Properties"]["Policies"])
        if not cond and "kms:GenerateDataKey" in actions(s)
    ]
    assert [g["Resource"] for g in grants] == [{"Fn::GetAtt": ["AlertKey", "Arn"]}]
    assert actions(grants[0]) == {"kms:GenerateDataKey", "kms:Decrypt"}


def _all_identity_statements() -> list[tuple[str, dict[str, Any]]]:
    out = [
        (name, s)
        for name, fn in functions().items()
        for _, s in statements(fn["Properties"]["Policies"])
    ]
    for name, role in _resources("AWS::IAM::Role").items():
        for p in role["Properties"].get("Policies", []):
            out.extend((name, s) for s in p["PolicyDocument"]["Statement"])
    return out


def test_no_action_that_changes_anything_is_granted_on_every_resource() -> None:
    # "*" is left only to calls that authorize on nothing else: EC2 and CloudTrail
    # describes/reads and the log-group list (tools/iam_lint_allow.yaml gives the reasons).
    for name, stmt in _all_identity_statements():
        if stmt["Resource"] == "*" or "*" in (
            stmt["Resource"] if isinstance(stmt["Resource"], list) else []
        ):
            verbs = {a.split(":", 1)[1] for a in actions(stmt)}
            assert all(v.startswith(("Describe", "Get", "List")) for v in verbs), (name, stmt)


def test_the_single_runners_have_reserved_concurrency_unless_the_account_cannot() -> None:
    singles = {
        n for n, f in functions().items() if "ReservedConcurrentExecutions" in f["Properties"]
    }
    assert singles == {"SweepFunction", "AcceptanceFunction"}
    for n in singles:
        assert functions()[n]["Properties"]["ReservedConcurrentExecutions"] == {
            "Fn::If": ["HasReservedConcurrency", 1, {"Ref": "AWS::NoValue"}]
        }


def test_every_checkov_skip_says_why() -> None:
    for name, res in template()["Resources"].items():
        for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV_"), name
            assert len(skip.get("comment", "")) > 40, f"{name}: {skip['id']} is not explained"
