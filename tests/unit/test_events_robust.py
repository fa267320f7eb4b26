"""The reproducers of issue 7: each is one field of a sample in events/ changed, and each
used to raise out of a handler. Now every one is refused at the edge in one line, before
anything reaches AWS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from peerguard.domain.scope import Scope
from peerguard.events import MalformedEvent, parse_change, parse_event
from peerguard.events.grace import GraceBody, parse_grace

EVENTS = Path(__file__).resolve().parents[2] / "events"


def sample(stem: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{stem}.json").read_text())


def changed(stem: str, *path: str | int, value: Any) -> dict[str, Any]:
    event = sample(stem)
    where: Any = event
    for step in path[:-1]:
        where = where[step]
    where[path[-1]] = value
    return event


def deep(levels: int) -> Any:
    value: Any = "rtb-0a1b2c3d"
    for _ in range(levels):
        value = {"items": [value]}
    return value


REPRODUCERS = [
    (changed("CreateRoute", "detail", "eventName", value=["CreateRoute"]), "eventName is not a"),
    (changed("CreateRoute", "detail", "awsRegion", value="xx-fake-9"), "unknown region"),
    (changed("CreateRoute", "detail", "awsRegion", value="us east 1"), "bad region"),
    (changed("CreateRoute", "detail", "awsRegion", value="us-east-1\n"), "bad region"),
    (changed("CreateRoute", "region", value="us-east-99"), "region: unknown region"),
    (
        changed("CreateRoute", "detail", "requestParameters", "routeTableId", value="\ud83d"),
        "text that is not valid Unicode",
    ),
    (
        changed("CreateVpcPeeringConnection.failed", "detail", "eventID", value="\ud83d"),
        "text that is not valid Unicode",
    ),
    (changed("CreateRoute", "id", value=""), "id is empty"),
    (changed("CreateRoute", "detail", "requestParameters", value=deep(250)), "nests deeper"),
    (
        changed("CreateRoute", "detail", "requestParameters", "routeTableId", value="rtb-1 x"),
        "is not a well-formed route table id",
    ),
    (changed("CreateRoute", "account", value=123456789012), "account is not a 12-digit"),
]


@pytest.mark.parametrize(("event", "says"), REPRODUCERS)
def test_each_reproducer_is_refused_in_one_line(event: Any, says: str) -> None:
    for parse in (parse_change, parse_event):  # the change auditor and the acceptance function
        with pytest.raises(MalformedEvent) as refused:
            parse(event)
        assert says in str(refused.value)
        assert "\n" not in str(refused.value) and len(str(refused.value)) < 200


def test_the_samples_themselves_still_parse() -> None:
    for path in sorted(EVENTS.glob("*.json")):
        if path.stem.startswith(("malformed", "not-ours", "schedule")):
            continue
        assert parse_change(json.loads(path.read_text())).event_name == path.stem.split(".")[0]


VALID_BODY = GraceBody.of(
    "c0ffee-1",
    "CreateRoute",
    ["us-east-1"],
    Scope(route_table_ids=frozenset({"rtb-0a1b2c3d"}), peering_ids=frozenset({"pcx-0a1b2c3d"})),
).model_dump_json()


def test_a_grace_body_round_trips() -> None:
    body = parse_grace(VALID_BODY)
    assert body.to_scope().route_table_ids == {"rtb-0a1b2c3d"}
    assert body.regions == ("us-east-1",)


@pytest.mark.parametrize(
    ("mutate", "says"),
    [
        (lambda b: b | {"regions": "us-east-1"}, "regions"),
        (lambda b: b | {"regions": ["xx-fake-9"]}, "unknown region"),
        (lambda b: b | {"scope": {"route_table_ids": "rtb-0a1b2c3d"}}, "route_table_ids"),
        (lambda b: b | {"scope": {"route_table_ids": [5]}}, "route_table_ids"),
        (lambda b: b | {"scope": {"vpc_ids": ["vpc-\ud83d"]}}, "grace message"),
        (lambda b: b | {"event_id": None}, "event_id"),
        (lambda b: b | {"extra": 1}, "extra"),
        (lambda b: {k: v for k, v in b.items() if k != "scope"}, "scope"),
        (lambda b: [b], "grace message"),
    ],
)
def test_a_grace_body_with_a_wrong_type_anywhere_is_malformed(mutate: Any, says: str) -> None:
    body = json.dumps(mutate(json.loads(VALID_BODY)))
    with pytest.raises(MalformedEvent) as refused:
        parse_grace(body)
    assert says in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize("body", [None, 5, b"\xff\xfe", "{", "", "[]" * 10_000])
def test_a_grace_body_that_is_not_json_text_is_malformed(body: Any) -> None:
    with pytest.raises(MalformedEvent):
        parse_grace(body)


def test_an_empty_sqs_batch_is_malformed_not_a_powertools_error() -> None:
    from peerguard.usecases.grace import parse_batch  # found by make fuzz: {"Records": []}

    with pytest.raises(MalformedEvent, match="no records"):
        parse_batch({"Records": []})


def test_a_grace_body_carries_security_group_acl_and_flow_log_ids() -> None:
    scope = Scope(
        security_group_ids=frozenset({"sg-0a1b2c3d"}),
        network_acl_ids=frozenset({"acl-0a1b2c3d"}),
        flow_log_ids=frozenset({"fl-0a1b2c3d"}),
    )
    body = GraceBody.of("c0ffee-2", "CreateNetworkAclEntry", ["us-east-1"], scope)
    assert parse_grace(body.model_dump_json()).to_scope() == scope
    bad = json.loads(body.model_dump_json())
    bad["scope"]["security_group_ids"] = ["sg-1 x"]
    with pytest.raises(MalformedEvent, match="security_group_ids"):
        parse_grace(json.dumps(bad))
