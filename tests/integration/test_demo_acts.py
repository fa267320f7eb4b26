"""`peerguard demo` as a new user reads it: one act at a time (`--act N`), each about two
screens, no id cut mid-string, every applied change printed once."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest

from peerguard import cli
from peerguard_lab.demo import ACTS, DemoRun, fix_text, play
from peerguard_lab.demo.acceptance import UNKNOWN_ACCOUNT, VENDOR_ACCOUNT
from peerguard_lab.demo.scenarios import PARTNER_ACCOUNT, REGIONS
from peerguard_lab.emulator import Emulator

# An AWS-style id, whole or cut: "vpc-0a1b…" and a bare "vpc-" at a line end match too, and
# match no id the emulator created; words such as "vpc-peering" do not match.
ID = re.compile(r"(?<![\w-])(?:vpc|rtb|pcx|sgr|sg|subnet|fl)-[0-9a-f]*(?![\w-])")
HEADING = re.compile(r"^== Act (\d) of \d\. ", re.M)


def created_ids(emu: Emulator) -> set[str]:
    """Every id the emulator holds, in every account and region the demo uses."""
    base = emu.clients()
    accounts = [base] + [
        base.assume(f"arn:aws:iam::{a}:role/network-admin")
        for a in (PARTNER_ACCOUNT, VENDOR_ACCOUNT, UNKNOWN_ACCOUNT)
    ]
    ids: set[str] = set()
    for clients in accounts:
        for region in REGIONS:
            ec2 = clients.client("ec2", region)
            calls: list[tuple[str, str, str]] = [
                ("describe_vpcs", "Vpcs", "VpcId"),
                ("describe_subnets", "Subnets", "SubnetId"),
                ("describe_route_tables", "RouteTables", "RouteTableId"),
                ("describe_vpc_peering_connections", "VpcPeeringConnections",
                 "VpcPeeringConnectionId"),
                ("describe_security_groups", "SecurityGroups", "GroupId"),
                ("describe_security_group_rules", "SecurityGroupRules", "SecurityGroupRuleId"),
                ("describe_flow_logs", "FlowLogs", "FlowLogId"),
            ]  # fmt: skip
            for method, key, field in calls:
                items: list[dict[str, Any]] = getattr(ec2, method)()[key]
                ids |= {str(i[field]) for i in items}
    return ids


RUNS: list[DemoRun] = []  # what the acts of the fixture built and did


@pytest.fixture(scope="module")
def acts() -> Iterator[tuple[dict[int, str], set[str]]]:
    """Each act's output, and every id the emulator created (before act 5 empties it)."""
    texts: dict[int, str] = {}
    ids: set[str] = set()
    with Emulator() as emu:
        for group in ([1, 2, 3, 4], [5]):
            out = io.StringIO()
            run = play(emu, group, out)
            RUNS.append(run)
            assert run.ok, out.getvalue()
            if run.result is not None:  # the rules act 4 revokes, as act 1 read them
                groups = (run.result.snapshot.security_groups or {}).values()
                ids |= {str(r.rule_id) for g in groups for r in g.rules}
            parts = HEADING.split(out.getvalue())[1:]
            texts |= {int(n): body for n, body in zip(parts[::2], parts[1::2], strict=True)}
            ids |= created_ids(emu)
    yield texts, ids


def test_every_act_is_about_two_screens(acts: tuple[dict[int, str], set[str]]) -> None:
    texts, _ = acts
    assert sorted(texts) == sorted(ACTS)
    lengths = {n: len(text.strip("\n").splitlines()) + 1 for n, text in texts.items()}
    assert all(n <= 60 for n in lengths.values()), lengths


def test_no_line_cuts_an_id(acts: tuple[dict[int, str], set[str]]) -> None:
    texts, created = acts
    shown = {m.group(0) for text in texts.values() for m in ID.finditer(text)}
    assert shown, "the demo names the resources it talks about"
    assert shown - created == set()


def test_each_applied_change_is_printed_once(acts: tuple[dict[int, str], set[str]]) -> None:
    texts, _ = acts
    repair = " ".join(texts[4].split())  # wrapped lines joined: a call may span two
    calls = re.findall(r"pass \d+ .*?(aws ec2 [a-z-]+ .*?)(?= undo: )", repair)
    assert len(calls) >= 5
    for call in calls:  # the same text as another change's undo is that undo, not a repeat
        assert len(re.findall(rf"(?<!undo: ){re.escape(call)}", repair)) == 1, call


def test_the_re_audit_lists_every_finding_that_remains(
    acts: tuple[dict[int, str], set[str]],
) -> None:
    texts, _ = acts
    head = re.search(r"Re-audit: (\d+) findings remain", texts[4])
    assert head is not None
    listed = texts[4].split(head.group(0))[1].splitlines()[1:]
    rows = [line for line in listed if re.match(r"  [A-Z]+ +[a-z_]+\.[a-z_]+ ", line)]
    assert len(rows) == int(head.group(1))


def test_the_eks_return_route_is_labelled_as_fix_mode_makes_it(
    acts: tuple[dict[int, str], set[str]],
) -> None:
    texts, _ = acts
    audit = " ".join(texts[1].split())
    eks = audit.split("3. Two EKS clusters.")[1].split("4. Private subnets")[0]
    assert "by hand" not in eks  # act 4 makes both of its fixes
    assert "automatic in fix mode, the sweep after the route.blackhole fix" in eks
    assert "(automatic now: the earlier pass removed what blocked it)" in " ".join(texts[4].split())


def test_every_fix_labelled_automatic_is_made_in_act_4_and_no_other(
    acts: tuple[dict[int, str], set[str]],
) -> None:
    run = RUNS[0]
    assert run.result is not None and run.repaired is not None
    made = {o.finding.fingerprint for p in run.repaired.passes for o in p.applied}
    findings, snap = run.result.findings, run.result.snapshot
    labels = {
        f.fingerprint: fix_text(f, findings, snap) for f in findings if f.remediation is not None
    }
    automatic = {fp for fp, text in labels.items() if text.startswith("automatic")}
    assert automatic == made
    assert any("the sweep after the route.blackhole fix" in text for text in labels.values())


def test_the_result_table_shows_every_check_a_scenario_raised(
    acts: tuple[dict[int, str], set[str]],
) -> None:
    texts, _ = acts
    result = texts[1].split("\nResult")[1]
    assert "route.blackhole*, route.missing_reciprocal" in result
    assert "sg.open_to_world*, sg.peer_all_traffic*" in result


def test_act_n_prints_only_that_act(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["demo", "--act", "3"])

    out = capsys.readouterr().out
    assert code == 0, out
    assert HEADING.findall(out) == ["3"]
    assert "Auto-accept: allowlisted request accepted and routed" in out


def test_list_names_the_acts_and_a_wrong_act_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["demo", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {n}. {title}:" in listed for n, (title, _) in ACTS.items())

    assert cli.main(["demo", "--act", "9"]) == 2
    assert "no act '9'" in capsys.readouterr().err
