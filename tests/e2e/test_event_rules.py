"""The EventBridge rules in template.yaml route each sample in events/ to the right function.

Matching is moto's EventBridge pattern matcher (moto's own `test_event_pattern` is a stub), as
the lab's `routes` applies it for the e2e tests and the demo.
"""

from __future__ import annotations

from typing import Any

import pytest

from peerguard.events import EVENT_NAMES
from peerguard_lab.events import load_sample as load
from peerguard_lab.stack import routes
from peerguard_lab.template import EVENTS, TEMPLATE, functions

pytestmark = pytest.mark.skipif(
    not TEMPLATE.exists(), reason="template.yaml is not written yet (the lead owns it)"
)

CHANGE_AUDITOR, ACCEPTANCE = "ChangeAuditorFunction", "AcceptanceFunction"
EXTRAS = {"schedule", "malformed.missing-event-name", "not-ours.AuthorizeSecurityGroupEgress"}
# Every CloudTrail sample of a watched call, failed ones included (a failed peering request
# is still worth a finding, so the rules must not filter on errorCode).
CLOUDTRAIL_SAMPLES = sorted(p.stem for p in EVENTS.glob("*.json") if p.stem not in EXTRAS)


def rule_patterns(function: str) -> list[dict[str, Any]]:
    """The patterns of the function's EventBridgeRule event sources (schedules excluded)."""
    events = functions()[function]["Properties"].get("Events", {})
    return [
        source["Properties"]["Pattern"]
        for source in events.values()
        if source["Type"] == "EventBridgeRule"
    ]


def routed_to(event: dict[str, Any]) -> set[str]:
    """The functions whose EventBridge rules match the event."""
    return set(routes(event))


def test_change_auditor_rule_lists_exactly_the_watched_event_names() -> None:
    names: list[str] = []
    for pattern in rule_patterns(CHANGE_AUDITOR):
        names += pattern["detail"]["eventName"]
    assert len(names) == len(set(names)), "an event name is listed twice"
    assert set(names) == set(EVENT_NAMES)
    assert set(EVENT_NAMES) <= set(CLOUDTRAIL_SAMPLES), "every watched call has a sample"


@pytest.mark.parametrize("stem", CLOUDTRAIL_SAMPLES)
def test_cloudtrail_sample_reaches_the_change_auditor(stem: str) -> None:
    targets = routed_to(load(stem))

    assert CHANGE_AUDITOR in targets
    # Only peering requests also wake the acceptance function.
    assert (ACCEPTANCE in targets) is stem.startswith("CreateVpcPeeringConnection")


def test_schedule_sample_reaches_no_event_rule() -> None:
    assert routed_to(load("schedule")) == set()


@pytest.mark.parametrize(
    "stem", ["not-ours.AuthorizeSecurityGroupEgress", "malformed.missing-event-name"]
)
def test_calls_we_do_not_watch_reach_no_function(stem: str) -> None:
    assert routed_to(load(stem)) == set()


@pytest.mark.parametrize(
    ("key", "value"),
    [("source", "aws.s3"), ("detail-type", "AWS Service Event via CloudTrail")],
)
def test_rules_pin_source_and_detail_type(key: str, value: str) -> None:
    event = load("CreateVpcPeeringConnection")
    event[key] = value
    assert routed_to(event) == set()


def test_rules_pin_the_ec2_event_source() -> None:
    event = load("CreateRoute")
    event["detail"]["eventSource"] = "s3.amazonaws.com"
    assert routed_to(event) == set()
