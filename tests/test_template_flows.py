"""template.yaml's flow analyzer: its schedule, failure destination, and least privilege."""

from __future__ import annotations

from typing import Any

from peerguard.domain.flows.rules import FLOW_READ
from peerguard_lab.template import functions, template
from tests.test_template import actions, statements

FN = "FlowAnalyzerFunction"


def props() -> dict[str, Any]:
    return functions()[FN]["Properties"]


def grants() -> dict[str, tuple[str | None, dict[str, Any]]]:
    return {s["Sid"]: (cond, s) for cond, s in statements(props()["Policies"]) if "Sid" in s}


def test_it_runs_on_its_schedule_with_a_failure_destination_like_the_sweep() -> None:
    p = props()
    (event,) = p["Events"].values()
    assert event["Type"] == "Schedule"
    assert event["Properties"]["Schedule"] == {"Fn::Sub": "rate(${FlowAnalysisMinutes} minutes)"}
    minutes = template()["Parameters"]["FlowAnalysisMinutes"]
    assert minutes["Default"] == 15 and minutes["MinValue"] >= 1
    sweep = functions()["SweepFunction"]["Properties"]["EventInvokeConfig"]
    assert p["EventInvokeConfig"] == sweep
    assert p["Timeout"] == 900  # Lambda's longest: the run stops before it (reserve)
    assert "Runtime" not in p and "Architectures" not in p  # python3.13 arm64 from Globals


def test_flow_logs_are_read_only_where_flow_logs_can_be_and_only_read() -> None:
    g = grants()
    _, logs = g["ReadFlowLogGroups"]
    assert actions(logs) == {"logs:FilterLogEvents"}
    subs = [r["Fn::Sub"] for r in logs["Resource"]]
    assert all(":${AWS::AccountId}:log-group:${FlowLogGroupPattern}" in r for r in subs)
    _, get = g["ReadFlowLogObjects"]
    assert actions(get) == {"s3:GetObject"}
    assert get["Resource"]["Fn::Sub"].endswith(":::${FlowLogBucketPattern}/*vpcflowlogs/*")
    _, listing = g["ListFlowLogFolders"]
    assert actions(listing) == {"s3:ListBucket"}
    assert listing["Condition"] == {"StringLike": {"s3:prefix": "*AWSLogs/*"}}
    every = {a for _, s in statements(props()["Policies"]) for a in actions(s)}
    assert not {a for a in every if a.split(":")[1].startswith(("Put", "Delete", "Create"))} - {
        "glue:CreateTable",  # the pushdown's table (IF NOT EXISTS), under its condition
        "s3:PutObject",  # Athena's results, in the stack's own bucket, under its condition
    }
    assert every >= set(FLOW_READ)  # every path's reads are granted (some conditionally)


def test_athena_glue_and_insights_only_with_pushdown_and_only_on_the_stacks_own() -> None:
    def querying(a: str) -> bool:
        return a.startswith(("athena:", "glue:")) or a == "logs:StartQuery"

    found = [(cond, a) for cond, s in statements(props()["Policies"]) for a in actions(s)]
    pushdown = {a for cond, a in found if querying(a) and cond == "HasFlowPushdown"}
    anywhere = {a for _, a in found if querying(a)}
    assert pushdown == anywhere and "athena:StartQueryExecution" in pushdown
    g = grants()
    assert g["RunFlowQueries"][1]["Resource"]["Fn::Sub"].endswith(
        ":workgroup/${FlowAthenaWorkGroup}"
    )
    star = [s["Sid"] for _, s in statements(props()["Policies"]) if s["Resource"] == "*"]
    assert star == ["ReadNetwork", "ReadFlowQueryResults"]  # Describe* and query ids
    resources = template()["Resources"]
    for name in ("FlowQueryResultsBucket", "FlowAthenaWorkGroup", "FlowGlueDatabase"):
        assert resources[name]["Condition"] == "HasFlowPushdown", name
    assert template()["Conditions"]["HasFlowPushdown"] == {
        "Fn::Equals": [{"Ref": "FlowPushdown"}, "true"]
    }
