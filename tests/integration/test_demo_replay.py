"""`peerguard demo`, second act: each scenario's CloudTrail event replayed through the handlers
as template.yaml routes them, inside the emulator; the Slack and SNS messages they send."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from peerguard_lab.demo import run_scenarios
from peerguard_lab.demo.replay import Replayed, render_replay, replay, slack_text, steps_for
from peerguard_lab.emulator import Emulator
from peerguard_lab.events import from_sample
from peerguard_lab.template import ROOT, TEMPLATE, NoCheckout, load

pytestmark = pytest.mark.skipif(not TEMPLATE.exists(), reason="template.yaml is not written yet")


@pytest.fixture(scope="module")
def replayed() -> Iterator[list[Replayed]]:
    with Emulator() as emu:
        outcomes, _ = run_scenarios(emu)
        yield replay(emu, [o.scenario for o in outcomes])


def sns_checks(r: Replayed) -> set[str]:
    return {m["MessageAttributes"]["check_id"]["Value"] for m in r.sns}


@pytest.mark.parametrize("key", ["web", "mesh", "eks", "private", "overlap", "hub", "sg"])
def test_each_scenarios_event_makes_slack_and_sns_messages_about_its_mistake(
    replayed: list[Replayed], key: str
) -> None:
    r = next(r for r in replayed if r.scenario.key == key)

    assert r.events, "every seed scenario's mistake is a recorded call"
    assert r.slack and r.sns
    assert set(r.scenario.expected) <= sns_checks(r)
    slack = "\n".join(line for payload in r.slack for line in slack_text(payload))
    assert any(resource in slack for resource in r.scenario.broken)


def test_each_event_went_to_the_change_auditor_and_it_audited(replayed: list[Replayed]) -> None:
    for r in replayed:
        for step, _, results in r.events:
            assert results["ChangeAuditorFunction"]["status"] == "audited", (step, results)


def test_only_the_peering_request_also_wakes_the_acceptance_function(
    replayed: list[Replayed],
) -> None:
    woken = {
        step.sample
        for r in replayed
        for step, _, results in r.events
        if "AcceptanceFunction" in results
    }
    assert woken == {"CreateVpcPeeringConnection"}


def test_the_rendering_shows_each_message(replayed: list[Replayed]) -> None:
    text = render_replay(replayed, 1.0)

    assert text.count("-> ChangeAuditorFunction: audited") == sum(len(r.events) for r in replayed)
    web = next(r for r in replayed if r.scenario.key == "web")
    table = web.scenario.named["rt-db-b"]
    assert f"aws ec2 create-route --route-table-id {table}" in text
    assert f"[HIGH] route.missing_reciprocal {table}" in text


# -- pieces, no emulator ------------------------------------------------------------------------


def test_from_sample_puts_real_ids_in_and_gives_a_fresh_record() -> None:
    sample = json.loads((ROOT / "events" / "CreateRoute.json").read_text())

    event = from_sample(sample, {"rtb-0a1b2c3d4e5f67890": "rtb-real", "10.1.0.0/16": "10.9.0.0/16"})

    assert event["detail"]["requestParameters"] == {
        "routeTableId": "rtb-real",
        "destinationCidrBlock": "10.9.0.0/16",
        "vpcPeeringConnectionId": "pcx-0a1b2c3d4e5f67890",
    }
    assert event["id"] != sample["id"]
    assert event["detail"]["eventID"] != sample["detail"]["eventID"]
    assert sample["detail"]["requestParameters"]["routeTableId"] == "rtb-0a1b2c3d4e5f67890"


def test_from_sample_swaps_ids_at_once_and_moves_the_record_to_another_account() -> None:
    sample = json.loads((ROOT / "events" / "CreateVpcPeeringConnection.json").read_text())

    event = from_sample(
        sample, {"123456789012": "210987654321", "210987654321": "123456789012"}, "210987654321"
    )

    vpc = event["detail"]["responseElements"]["vpcPeeringConnection"]
    assert vpc["requesterVpcInfo"]["ownerId"] == "210987654321"
    assert vpc["accepterVpcInfo"]["ownerId"] == "123456789012"
    assert event["account"] == event["detail"]["recipientAccountId"] == "210987654321"
    assert "210987654321" in event["detail"]["userIdentity"]["arn"]


def test_slack_text_renders_block_kit_compactly() -> None:
    payload = {
        "text": "fallback",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "PeerGuard: pcx-1"}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "<https://x|open> &amp; y"}],
            },
            {"type": "section", "text": {"type": "mrkdwn", "text": "*A*\n```aws ec2 x```"}},
            {"type": "divider"},
        ],
    }

    assert slack_text(payload) == ["# PeerGuard: pcx-1", "open & y", "*A*", "aws ec2 x", "---"]


def test_without_a_checkout_the_lab_says_so_plainly(tmp_path: Path) -> None:
    with pytest.raises(NoCheckout, match=r"no template.yaml and events/ at .*repository checkout"):
        load(tmp_path)


def test_scenarios_without_a_known_story_have_no_steps() -> None:
    from peerguard_lab.demo.scenarios import Scenario

    assert steps_for(Scenario("other", "Other", ())) == []


def test_replay_works_when_the_handlers_were_imported_without_the_lambda_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from peerguard.observability import metrics
    from peerguard_lab.demo.scenarios import hub_and_spokes

    # As in `peerguard demo`, where another demo step imports the handlers' modules first.
    monkeypatch.setattr(metrics, "namespace", None)
    with Emulator() as emu:
        (done,) = replay(emu, [hub_and_spokes(emu.clients())])

    assert done.sns and done.slack
    assert metrics.namespace is None  # left as it was
