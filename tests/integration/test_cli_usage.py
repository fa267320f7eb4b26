"""The CLI's promises to a new user: one line and exit 2 for bad input, never a traceback;
`--version`; the whole catalogue as JSON."""

from __future__ import annotations

import json

import pytest

from peerguard import __version__
from peerguard.cli import EXIT_ERROR, EXIT_OK, main
from peerguard.domain import catalogue


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("peerguard: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--region", "us-east-99"], "unknown region 'us-east-99'"),
        (["--region", "us east 1"], "bad region 'us east 1'"),
        (["--region", "us-east-1", "--checks", ","], "no check id given"),
        (["--region", "us-east-1", "--checks", ""], "no check id given"),
        (["--region", "us-east-1", "--checks", "route.nope"], "unknown check id(s): route.nope"),
        (["--region", "us-east-1", "--allow-account", "12"], "bad account id '12'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    aws: None, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert main(["audit", *args]) == EXIT_ERROR
    assert says in one_line_error(capsys)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == f"peerguard {__version__}"


def test_checks_json_is_the_whole_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["checks", "--format", "json"]) == EXIT_OK
    listed = json.loads(capsys.readouterr().out)
    assert [e["id"] for e in listed] == list(catalogue.entries())
    for e in listed:
        assert {"id", "severity", "title", "automatic_fix", "kind", "iam_actions"} <= set(e)
        assert isinstance(e["automatic_fix"], bool)
    kinds = {e["kind"] for e in listed}
    assert {"check", "acceptance", "remediation", "setup"} <= kinds
    by_id = {e["id"]: e for e in listed}
    assert by_id["route.missing_reciprocal"]["automatic_fix"] is True
    assert by_id["route.outside_peer_cidr"]["automatic_fix"] is False


def test_checks_table_lists_every_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["checks"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(catalogue.entries())
