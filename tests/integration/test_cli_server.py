"""`peerguard audit` end to end against a moto server on loopback (--endpoint-url)."""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from peerguard.cli import main
from tests.integration import awsnet

REGION = "us-east-1"
FINDING_FIELDS = {
    "check_id",
    "severity",
    "resource_type",
    "resource_id",
    "account_id",
    "region",
    "vpc_id",
    "peering_connection_id",
    "title",
    "detail",
    "fingerprint",
    "remediation",
}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    yield f"http://{host}:{port}"
    srv.stop()


@pytest.fixture
def endpoint(server: str) -> str:
    """The server, emptied for this test."""
    urllib.request.urlopen(urllib.request.Request(f"{server}/moto-api/reset", method="POST"))
    return server


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """No backoff sleeps between retries (the retries themselves still happen)."""
    monkeypatch.setattr(
        "botocore.retries.standard.ExponentialBackoff.delay_amount", lambda self, ctx: 0
    )


def server_ec2(endpoint: str) -> Any:
    return boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)


def audit(endpoint: str, *args: str) -> int:
    return main(["audit", "--region", REGION, "--endpoint-url", endpoint, *args])


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("peerguard: error: ")
    return lines[0]


def broken_peering(endpoint: str) -> str:
    """A peering whose db side has no return route. Returns db's main table."""
    ec2 = server_ec2(endpoint)
    app, db, _ = awsnet.peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")
    ec2.delete_route(RouteTableId=db.main_table, DestinationCidrBlock=app.cidr)
    return db.main_table


def test_clean_account_exits_0_with_the_json_contract(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    awsnet.peered_pair(server_ec2(endpoint), "10.0.0.0/16", "10.1.0.0/16")

    code = audit(endpoint, "--format", "json")

    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(out) == {"findings", "summary"}
    assert not [f for f in out["findings"] if f["severity"] in ("high", "critical")]
    assert out["summary"]["regions"] == [REGION]
    assert out["summary"]["total"] == len(out["findings"])
    assert out["summary"]["peerings"] == 1


def test_high_finding_exits_1_with_every_finding_field(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    table = broken_peering(endpoint)

    code = audit(endpoint, "--format", "json")

    out = json.loads(capsys.readouterr().out)
    assert code == 1
    [f] = [f for f in out["findings"] if f["check_id"] == "route.missing_reciprocal"]
    assert set(f) == FINDING_FIELDS
    assert (f["severity"], f["resource_id"], f["region"]) == ("high", table, REGION)
    assert len(f["fingerprint"]) == 32
    assert {"action", "parameters", "automatic"} <= set(f["remediation"])
    assert f["remediation"]["parameters"]["RouteTableId"] == table
    assert out["summary"]["by_severity"]["high"] == 1
    assert out["summary"]["by_check"]["route.missing_reciprocal"] == 1


@pytest.mark.parametrize(("fail_on", "code"), [("critical", 0), ("high", 1), ("low", 1)])
def test_fail_on_sets_the_threshold(
    endpoint: str, capsys: pytest.CaptureFixture[str], fail_on: str, code: int
) -> None:
    broken_peering(endpoint)
    assert audit(endpoint, "--fail-on", fail_on) == code


def test_fail_on_low_catches_a_low_finding(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ec2 = server_ec2(endpoint)
    a, b = awsnet.vpc(ec2, "10.0.0.0/16"), awsnet.vpc(ec2, "10.1.0.0/16")
    awsnet.peer(ec2, a, b)  # active, no routes: peering.no_routes (low)
    assert audit(endpoint, "--checks", "peering.no_routes") == 0
    assert audit(endpoint, "--checks", "peering.no_routes", "--fail-on", "low") == 1


def test_checks_option_limits_the_run_and_output_goes_to_a_file(
    endpoint: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken_peering(endpoint)
    report = tmp_path / "report.json"

    code = audit(
        endpoint, "--checks", "route.blackhole", "--format", "json", "--output", str(report)
    )

    out = json.loads(report.read_text())
    assert code == 0
    assert out["findings"] == []
    assert out["summary"]["checks_run"] == ["route.blackhole"]
    assert capsys.readouterr().out == ""


def test_unknown_check_id_is_one_line_and_exit_2(
    endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert audit(endpoint, "--checks", "route.blackhole,route.nope") == 2
    assert "route.nope" in one_line_error(capsys)


def test_bad_region_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "--region", "mars-1"]) == 2
    assert "mars-1" in one_line_error(capsys)


def test_endpoint_down_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], fast_retries: None
) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    assert audit(f"http://127.0.0.1:{port}") == 2
    assert "cannot reach the AWS endpoint" in one_line_error(capsys)


def test_no_credentials_is_one_line_and_exit_2(
    endpoint: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    assert audit(endpoint) == 2
    assert "no AWS credentials" in one_line_error(capsys)
