"""`peerguard demo`: each seed scenario is built in a loopback moto server, its mistake found."""

from __future__ import annotations

import io
import os
import socket
from collections.abc import Iterator

import pytest

from peerguard.usecases.pipeline import AuditResult
from peerguard_lab.demo import Outcome, run_demo, run_scenarios
from peerguard_lab.emulator import Emulator


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[list[Outcome], AuditResult]]:
    with Emulator() as emu:
        yield run_scenarios(emu)


def test_run_demo_exits_0_and_says_every_mistake_was_found() -> None:
    out = io.StringIO()

    code = run_demo(out=out)

    text = out.getvalue()
    assert code == 0, text
    assert "MISSED" not in text
    result_lines = text.split("\nResult in ")[1].split("\n\n")[0].splitlines()[1:]
    assert len(result_lines) == 7 and all(" found " in line for line in result_lines)
    # After the audit, the replay of the mistakes' events (tests/integration/test_demo_replay.py)
    assert (
        text.index("\nResult") < text.index("== Act 2 of 5. Replay") < text.index("Replay done in")
    )


def test_demo_leaves_the_callers_aws_environment_alone() -> None:
    before = dict(os.environ)

    with Emulator():
        assert os.environ["AWS_CONFIG_FILE"] == os.devnull

    assert dict(os.environ) == before


@pytest.mark.parametrize("key", ["web", "mesh", "eks", "private", "overlap", "hub", "sg"])
def test_each_scenario_reports_its_expected_checks_on_the_broken_resource(
    demo: tuple[list[Outcome], AuditResult], key: str
) -> None:
    outcome = next(o for o in demo[0] if o.scenario.key == key)

    on_broken = {
        f.check_id
        for f in outcome.findings
        if {f.resource_id, f.peering_connection_id} & outcome.scenario.broken
    }

    assert set(outcome.scenario.expected) <= on_broken
    assert outcome.found


def test_correctly_built_parts_have_no_findings(demo: tuple[list[Outcome], AuditResult]) -> None:
    outcomes, result = demo

    misattributed = [
        (o.scenario.key, f.check_id, f.resource_id)
        for o in outcomes
        for f in o.findings
        if not {f.resource_id, f.peering_connection_id} & o.scenario.broken
    ]
    unowned = [f.check_id for f in result.findings if not any(o.scenario.owns(f) for o in outcomes)]

    assert misattributed == []
    assert unowned == []


def test_cross_region_peering_is_read_from_both_regions(
    demo: tuple[list[Outcome], AuditResult],
) -> None:
    outcomes, result = demo
    web = next(o for o in outcomes if o.scenario.key == "web").scenario

    account = result.snapshot.account_id
    assert result.snapshot.readable >= {(account, "us-east-1"), (account, "us-west-2")}
    assert web.named["db-us-west-2"] in result.snapshot.vpcs
    assert result.snapshot.vpcs[web.named["db-us-west-2"]].region == "us-west-2"


def test_taken_port_is_a_one_line_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]

        with pytest.raises(OSError, match=f"port {port} on 127.0.0.1 is in use"):
            Emulator(port).__enter__()
