"""`peerguard audit --mode notify|dry-run|fix` against in-process moto."""

from __future__ import annotations

import json
import shlex
from typing import Any

import boto3
import pytest

from peerguard import cli
from tests.integration.test_remediation import build, error_response, routes_by_table

REGION = "us-east-1"


def _answer_dry_run(params: dict[str, Any], **_: Any) -> Any:
    """EC2's answer to DryRun=True (moto 5.2.5 would make the change instead)."""
    if str(params.get("body", {}).get("DryRun", "")).lower() == "true":
        return error_response("DryRunOperation", 412)
    return None


def session_with(event: str, handler: Any) -> boto3.Session:
    """A session whose every client runs `handler` on `event` (faults moto cannot make)."""
    session = boto3.Session(region_name=REGION)
    session._session.register(event, handler)  # botocore session: all its clients
    return session


def run(
    capsys: pytest.CaptureFixture[str], *args: str, session: boto3.Session | None = None
) -> tuple[int, str, str]:
    code = cli.main(["audit", "--region", REGION, *args], session=session)
    out, err = capsys.readouterr()
    return code, out, err


def test_notify_is_the_default_and_unchanged(ec2: Any, capsys: pytest.CaptureFixture[str]) -> None:
    build(ec2)
    before = routes_by_table(ec2)
    code, out, _ = run(capsys, "--format", "json")
    body = json.loads(out)
    assert "remediation" not in body and set(body) == {"findings", "summary"}
    assert code == cli.EXIT_FINDINGS  # missing return routes are high
    assert routes_by_table(ec2) == before


def test_fix_applies_then_reports_the_remaining_findings(
    ec2: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    t = build(ec2)
    code, out, _ = run(capsys, "--format", "json", "--mode", "fix")
    body = json.loads(out)
    rem = body["remediation"]
    assert rem["mode"] == "fix" and rem["counts"]["applied"] == 4
    assert rem["findings_before"] > body["summary"]["total"]
    left = {f["check_id"] for f in body["findings"]}
    assert not left & {"route.blackhole", "route.missing_reciprocal"}
    assert code == cli.EXIT_OK  # exit code follows the findings left, none of them high
    assert routes_by_table(ec2)[t.rt["b2"]] >= {("10.0.0.0/16", t.pcx["b"])}


def test_fix_table_shows_what_was_done(ec2: Any, capsys: pytest.CaptureFixture[str]) -> None:
    t = build(ec2)
    _, out, _ = run(capsys, "--mode", "fix", "--max-changes", "1")
    # The whole plan comes first, before anything is made...
    plan = out.index("Plan (mode fix, at most 1 change): 4 calls to make")
    done = out.index("Remediation (mode fix, at most 1 change): 1 applied, 3 pending")
    assert plan < done
    assert out[plan:done].count("aws ec2 ") >= 4
    # ...then what was made, with its undo, and what waits for the next run.
    assert "APPLIED" in out and "undo: " in out and "change cap reached" in out
    assert "After the fixes:" in out
    assert t.rt["a1"] in out


def test_plan_format_cli_is_a_runnable_script_and_changes_nothing(
    ec2: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    build(ec2)
    before = routes_by_table(ec2)
    code, out, _ = run(capsys, "--mode", "fix", "--plan-format", "cli")
    assert routes_by_table(ec2) == before
    lines = out.splitlines()
    assert lines[0] == "#!/usr/bin/env bash" and "set -euo pipefail" in lines
    calls = [line for line in lines if line.startswith("aws ec2 ")]
    undos = [line for line in lines if line.startswith("# undo: aws ec2 ")]
    assert len(calls) == len(undos) == 4
    assert all(shlex.split(c)[:2] == ["aws", "ec2"] for c in calls)  # it parses as a shell line
    assert code == cli.EXIT_FINDINGS


def test_dry_run_prints_the_calls_and_changes_nothing(
    ec2: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    t = build(ec2)
    before = routes_by_table(ec2)
    like_aws = session_with("before-call.ec2", _answer_dry_run)
    code, out, _ = run(capsys, "--mode", "dry-run", session=like_aws)
    assert routes_by_table(ec2) == before
    assert "4 verified" in out
    assert (
        f"aws ec2 create-route --route-table-id {t.rt['b2']} --destination-cidr-block "
        f"10.0.0.0/16 --vpc-peering-connection-id {t.pcx['b']}" in out
    )
    assert code == cli.EXIT_FINDINGS  # dry-run fixes nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--mode", "yolo"], "unknown mode 'yolo'"),
        (["--max-changes", "-3"], "bad number '-3'"),
        (["--max-changes", "many"], "bad number 'many'"),
    ],
)
def test_bad_flags_are_one_line_usage_errors(
    aws: None, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, *args)
    assert code == cli.EXIT_ERROR and out == ""
    assert err.count("\n") == 1 and message in err and err.startswith("peerguard: error: usage:")


def test_denied_fix_is_reported_not_a_crash(ec2: Any, capsys: pytest.CaptureFixture[str]) -> None:
    denied = session_with(
        "before-call.ec2.DeleteRoute", lambda **_: error_response("UnauthorizedOperation", 403)
    )
    build(ec2)
    code, out, _ = run(
        capsys, "--mode", "fix", "--format", "json", "--fail-on", "medium", session=denied
    )
    body = json.loads(out)
    rem = body["remediation"]
    assert rem["counts"]["failed"] == 2 and rem["counts"]["applied"] == 2
    failed = [o for o in rem["outcomes"] if o["status"] == "failed"]
    assert failed and all("ec2:DeleteRoute was denied" in o["message"] for o in failed)
    assert [f["check_id"] for f in body["findings"]].count("route.blackhole") == 2
    assert code == cli.EXIT_FINDINGS  # the blackholes (medium) are still there
