"""`make fuzz`: mutated inputs through the real handlers, counting what escapes them.

    python -m tests.fuzz.run [--count 10000] [--seed 7] [--out bench-results/fuzz]

Five entry points, each fed `--count` mutations (1 to 3 fields changed, see mutate.py) of
real-shaped inputs: the change auditor with every CloudTrail sample in events/, the change
auditor with grace-queue batches, the acceptance function with request events and
schedules, the sweep with schedules, and the flow analyzer with schedules. The handlers
run as template.yaml deploys them (peerguard_lab.Stack, in-process moto). Anything raised
out of a handler is an unhandled exception: counted by type, its first input written to
`--out`. Exit 1 when there is one.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto import mock_aws
from moto.moto_api._internal.models import moto_api_backend

from peerguard.domain.scope import Scope
from peerguard.events.grace import GraceBody
from peerguard_lab.stack import Stack, quiet
from peerguard_lab.template import ROOT
from tests.fuzz.mutate import mutate

EVENTS = ROOT / "events"
AUDITOR, ACCEPTANCE, SWEEP = "ChangeAuditorFunction", "AcceptanceFunction", "SweepFunction"
FLOWS = "FlowAnalyzerFunction"


def _samples(*stems: str) -> list[Any]:
    paths = sorted(EVENTS.glob("*.json")) if not stems else [EVENTS / f"{s}.json" for s in stems]
    return [json.loads(p.read_text()) for p in paths if not p.stem.startswith("schedule") or stems]


def _grace_batch(body: Any) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {
        "Records": [
            {
                "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
                "body": text,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1545082649183",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1545082649185",
                },
                "messageAttributes": {},
                "md5OfBody": "098f6bcd4621d373cade4e832627b4f6",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:GraceQueue",
                "awsRegion": "us-east-1",
            }
        ]
    }


GRACE_BODY = GraceBody.of(
    "c0ffee-1",
    "CreateRoute",
    ["us-east-1"],
    Scope(route_table_ids=frozenset({"rtb-0a1b2c3d"}), peering_ids=frozenset({"pcx-0a1b2c3d"})),
).model_dump(mode="json")


def _grace_input(rng: random.Random) -> Any:
    # Mostly the body is broken, sometimes the SQS envelope around a good body.
    if rng.random() < 0.7:
        return _grace_batch(mutate(GRACE_BODY, rng))
    return mutate(_grace_batch(GRACE_BODY), rng)


@dataclass(frozen=True)
class EntryPoint:
    name: str
    function: str
    make: Callable[[random.Random], Any]


def entry_points() -> list[EntryPoint]:
    changes = [s for s in _samples() if s.get("detail-type") == "AWS API Call via CloudTrail"]
    requests = _samples("CreateVpcPeeringConnection", "CreateVpcPeeringConnection.failed")
    schedules = _samples("schedule")
    return [
        EntryPoint("change event", AUDITOR, lambda r: mutate(r.choice(changes), r)),
        EntryPoint("grace body", AUDITOR, _grace_input),
        EntryPoint(
            "acceptance event", ACCEPTANCE, lambda r: mutate(r.choice(requests + schedules), r)
        ),
        EntryPoint("schedule event", SWEEP, lambda r: mutate(r.choice(schedules), r)),
        EntryPoint("flow schedule event", FLOWS, lambda r: mutate(r.choice(schedules), r)),
    ]


@dataclass
class Tally:
    inputs: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    unhandled: Counter[str] = field(default_factory=Counter)
    first: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _outcome(result: Any) -> str:
    if isinstance(result, dict):
        if "batchItemFailures" in result:
            return "batch"
        return str(result.get("status", "done"))
    return type(result).__name__


def fuzz(count: int, seed: int, points: list[EntryPoint] | None = None) -> dict[str, Tally]:
    """`count` mutated inputs per entry point through its handler; what happened to each.
    Runs inside an active moto mock (the caller's)."""
    rng = random.Random(seed)
    stack = Stack({"GracePeriodMinutes": "0"})
    tallies: dict[str, Tally] = {}
    for point in points or entry_points():
        tally = tallies.setdefault(point.name, Tally())
        started = time.perf_counter()
        for i in range(count):
            event = point.make(rng)
            tally.inputs += 1
            try:
                with quiet():
                    result = stack.invoke(point.function, event)
            except Exception as e:  # what the fuzz is looking for
                kind = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
                tally.unhandled[kind] += 1
                tally.first.setdefault(kind, event)
            else:
                tally.outcomes[_outcome(result)] += 1
            if i % 500 == 499:  # keep moto's state (idempotency records) small
                moto_api_backend.reset()
                stack = Stack({"GracePeriodMinutes": "0"})
        tally.seconds = time.perf_counter() - started
    return tallies


def report(tallies: dict[str, Tally]) -> Iterator[str]:
    yield "| entry point | inputs | unhandled exceptions | outcomes | seconds |"
    yield "|---|---:|---:|---|---:|"
    for name, t in tallies.items():
        outcomes = ", ".join(f"{k} {v}" for k, v in t.outcomes.most_common())
        escaped = sum(t.unhandled.values())
        yield f"| {name} | {t.inputs:,} | {escaped} | {outcomes} | {t.seconds:.0f} |"
    for name, t in tallies.items():
        for kind, n in t.unhandled.most_common():
            yield f"  {name}: {n} x {kind}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--out", type=Path, default=ROOT / "bench-results" / "fuzz")
    args = p.parse_args(argv)
    with mock_aws():
        tallies = fuzz(args.count, args.seed)
    print("\n".join(report(tallies)))
    failures = {k: v for t in tallies.values() for k, v in t.first.items()}
    if failures:
        args.out.mkdir(parents=True, exist_ok=True)
        for i, (kind, event) in enumerate(failures.items()):
            path = args.out / f"unhandled-{i}.json"
            path.write_text(json.dumps({"error": kind, "input": event}, default=repr, indent=2))
            print(f"reproducer: {path}", file=sys.stderr)
    total = sum(sum(t.unhandled.values()) for t in tallies.values())
    print(f"unhandled exceptions: {total}")
    return 1 if total else 0


if __name__ == "__main__":
    raise SystemExit(main())
