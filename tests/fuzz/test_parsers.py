"""Fuzz (bounded, in `make test`): mutated events and queue bodies never make the edge
parsers raise anything but their one-line refusals. `make fuzz` drives many more of them
through the real handlers."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerguard.domain.scope import Scope
from peerguard.events import MalformedEvent, parse_change, parse_event, parse_schedule
from peerguard.events.grace import GraceBody, parse_grace
from peerguard.usecases.grace import parse_batch
from tests.fuzz.mutate import mutate

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLES = [json.loads(p.read_text()) for p in sorted(EVENTS.glob("*.json"))]
GRACE = GraceBody.of(
    "c0ffee-1", "CreateRoute", ["us-east-1"], Scope(route_table_ids=frozenset({"rtb-0a1b2c3d"}))
).model_dump(mode="json")
SQS = {
    "Records": [
        {
            "messageId": "m-1",
            "receiptHandle": "r-1",
            "body": json.dumps(GRACE),
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1700000000000",
                "SenderId": "AIDA",
                "ApproximateFirstReceiveTimestamp": "1700000000000",
            },
            "messageAttributes": {},
            "md5OfBody": "x",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:grace",
            "awsRegion": "us-east-1",
        }
    ]
}
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def refuses_cleanly(parse: Any, value: Any) -> None:
    try:
        parse(value)
    except MalformedEvent as e:  # NotOurs is a MalformedEvent too
        assert "\n" not in str(e)


@FUZZ
@given(st.integers(0, len(SAMPLES) - 1), st.randoms(use_true_random=False))
def test_mutated_events_are_parsed_or_refused(index: int, rng: random.Random) -> None:
    event = mutate(SAMPLES[index], rng)
    for parse in (parse_change, parse_event, parse_schedule):
        refuses_cleanly(parse, event)


@FUZZ
@given(st.randoms(use_true_random=False))
def test_mutated_grace_bodies_are_parsed_or_refused(rng: random.Random) -> None:
    body = mutate(GRACE, rng)
    try:
        text = json.dumps(body)
    except (ValueError, RecursionError):
        return  # not representable as a message body at all
    refuses_cleanly(parse_grace, text)


@FUZZ
@given(st.randoms(use_true_random=False))
def test_mutated_sqs_batches_are_parsed_or_refused(rng: random.Random) -> None:
    refuses_cleanly(parse_batch, mutate(SQS, rng))
