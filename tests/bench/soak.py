"""Soak: 10,000 events through one warm change auditor while the state table grows to
100,000 items. Per-event time and memory must stay flat (no leak in caches or clients).

    python -m tests.bench.soak [--events 10000] [--items 100000] [--peerings 50]

The handler is functions/change_auditor/app.py as template.yaml configures it, loaded once
and called for every event, as a warm Lambda container is. Each event is a CreateRoute on
one of `--peerings` one-sided peerings (so each audit finds, dedups and touches a real
finding); after each event the table gets the items a busy account adds (idempotency
records, change records, findings of other regions) until it holds `--items`.

PeerGuard's own time per event is the wall time minus the time spent inside moto (every
call of every client); memory is what tracemalloc holds in allocations made by peerguard,
botocore, boto3, powertools, pydantic and slack_sdk code (moto's table is moto's). p50 and
p99 are given for the first and the last 10% of the events, side by side.

moto answers an index Query by walking every item of the table; DynamoDB reads only the
index partition. So that the run measures PeerGuard and not that walk, the bench gives
moto's open-findings index a lookup of its own (`_indexed_moto`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import time
import tracemalloc
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

from peerguard.usecases.pipeline import reset_runtimes
from peerguard_lab.events import sample
from peerguard_lab.stack import REGION, LambdaContext, Stack, metrics_from_environment
from tests.integration import awsnet

AUDITOR = "ChangeAuditorFunction"
INDEX, INDEX_KEY = "open-findings", "open_scope"
OURS = ("peerguard", "botocore", "boto3", "aws_lambda_powertools", "pydantic", "slack_sdk")


@contextlib.contextmanager
def _indexed_moto() -> Iterator[None]:
    """moto's open-findings index as a lookup by `open_scope`, kept on every write."""
    scopes: dict[int, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
    saved = (DynamoDBBackend.put_item, DynamoDBBackend.update_item, DynamoDBBackend.delete_item)
    saved_query, saved_all = Table.query, Table.all_items

    def reindex(backend: Any, table_name: str, key: Any) -> None:
        table = backend.get_table(table_name)
        pk = key["pk"].value if hasattr(key["pk"], "value") else key["pk"]["S"]
        for members in scopes[id(table)].values():
            members.pop(pk, None)
        item = table.items.get(pk) if isinstance(table.items, dict) else None
        if item is not None and INDEX_KEY in item.attrs:
            scopes[id(table)][item.attrs[INDEX_KEY].value][pk] = item

    def put_item(self: Any, table_name: str, item_attrs: dict[str, Any], *a: Any, **kw: Any) -> Any:
        out = saved[0](self, table_name, item_attrs, *a, **kw)
        reindex(self, table_name, {"pk": item_attrs["pk"]})
        return out

    def update_item(self: Any, table_name: str, key: dict[str, Any], *a: Any, **kw: Any) -> Any:
        out = saved[1](self, table_name, key, *a, **kw)
        reindex(self, table_name, key)
        return out

    def delete_item(self: Any, table_name: str, key: dict[str, Any], *a: Any, **kw: Any) -> Any:
        out = saved[2](self, table_name, key, *a, **kw)
        reindex(self, table_name, key)
        return out

    def query(self: Any, *args: Any, **kw: Any) -> Any:
        index_name = args[7] if len(args) > 7 else kw.get("index_name")
        if index_name != INDEX:
            return saved_query(self, *args, **kw)
        wanted = args[0].value  # the hash key value queried
        members = list(scopes[id(self)][wanted].values())
        self.all_items = lambda: members  # the index partition, not the table
        try:
            return saved_query(self, *args, **kw)
        finally:
            del self.all_items

    DynamoDBBackend.put_item = put_item  # type: ignore[method-assign]
    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]
    DynamoDBBackend.delete_item = delete_item  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoDBBackend.put_item, DynamoDBBackend.update_item, DynamoDBBackend.delete_item = saved  # type: ignore[method-assign]
        Table.query, Table.all_items = saved_query, saved_all  # type: ignore[method-assign]


class MotoTime:
    """Seconds spent inside moto (every AWS call of every client and session, the
    idempotency layer's included), so the rest is PeerGuard's own."""

    def __init__(self) -> None:
        self.total = 0.0
        self._saved = BotocoreStubber.process_request

    def __enter__(self) -> MotoTime:
        saved, clock = self._saved, self

        def timed(stub: Any, request: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return saved(stub, request)
            finally:
                clock.total += time.perf_counter() - t0

        BotocoreStubber.process_request = timed  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        BotocoreStubber.process_request = self._saved  # type: ignore[method-assign]


def _ours(snapshot: tracemalloc.Snapshot) -> int:
    return sum(
        s.size
        for s in snapshot.statistics("filename")
        if any(f"/{name}/" in s.traceback[0].filename for name in OURS)
    )


def _filler(ddb: Any, table: str, n: int, start: int) -> None:
    """`n` items of the kinds a long-lived stack accumulates (none in our open scope)."""
    for i in range(start, start + n):
        kind = i % 3
        if kind == 0:
            item = {"pk": {"S": f"{AUDITOR}#{i:032x}"}, "status": {"S": "COMPLETED"}}
        elif kind == 1:
            item = {"pk": {"S": f"change#2026-11-01T00:00:00Z#{i:012x}"}, "call": {"S": "x" * 200}}
        else:
            item = {
                "pk": {"S": f"finding#{i:032x}"},
                "open_scope": {"S": f"123456789012#eu-west-{1 + i % 3}"},
                "resource_id": {"S": f"rtb-{i:08x}"},
                "status": {"S": "open"},
            }
        ddb.put_item(TableName=table, Item=item)


def run(events: int, items: int, peerings: int) -> dict[str, Any]:
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_LAMBDA_FUNCTION_NAME=AUDITOR,
        AWS_REGION=REGION,
        POWERTOOLS_METRICS_NAMESPACE="PeerGuard",
    )
    with mock_aws(), _indexed_moto(), contextlib.ExitStack() as scope:
        session = boto3.Session(region_name=REGION)
        stack = Stack({"GracePeriodMinutes": "0"})
        ec2, ddb = session.client("ec2"), session.client("dynamodb")
        stories = []
        for i in range(peerings):
            a = awsnet.vpc(ec2, f"10.{2 * i}.0.0/16")
            b = awsnet.vpc(ec2, f"10.{2 * i + 1}.0.0/16")
            pcx = awsnet.peer(ec2, a, b)
            awsnet.route(ec2, a.main_table, b.cidr, pcx)
            stories.append(
                {
                    "vpc-0a1b2c3d4e5f67890": a.vpc_id,
                    "vpc-0b1c2d3e4f5a67891": b.vpc_id,
                    "rtb-0a1b2c3d4e5f67890": a.main_table,
                    "pcx-0a1b2c3d4e5f67890": pcx,
                }
            )
        os.environ.update(stack.environment(AUDITOR))
        scope.enter_context(metrics_from_environment())  # read at import: set it now
        reset_runtimes(session)
        aws = scope.enter_context(MotoTime())
        handler = stack.handler(AUDITOR)
        assert handler is not None
        table = stack.physical["StateTable"]
        per_event_items = max(0, (items - events * 2) // events)  # the handler adds ~2
        own: list[float] = []
        wall: list[float] = []
        memory: list[tuple[int, int]] = []
        tracemalloc.start()
        sink = io.StringIO()
        for n in range(events):
            event = sample("CreateRoute", stories[n % peerings])
            event["id"] = str(uuid.uuid4())
            before_aws, t0 = aws.total, time.perf_counter()
            with contextlib.redirect_stdout(sink):
                handler(event, LambdaContext(AUDITOR))
            spent = time.perf_counter() - t0
            wall.append(spent)
            own.append(spent - (aws.total - before_aws))
            sink.seek(0)
            sink.truncate()
            _filler(ddb, table, per_event_items, n * per_event_items)
            if n in (events // 10, events // 2, events - 1):
                memory.append((n + 1, _ours(tracemalloc.take_snapshot())))
        tracemalloc.stop()
        final_items = ddb.describe_table(TableName=table)["Table"]["ItemCount"]
    tenth = max(1, events // 10)

    def pct(xs: list[float], q: int) -> float:
        return statistics.quantiles(xs, n=100)[q - 1] * 1000 if len(xs) > 1 else xs[0] * 1000

    return {
        "events": events,
        "items": final_items,
        "own_p50": (pct(own[:tenth], 50), pct(own[-tenth:], 50)),
        "own_p99": (pct(own[:tenth], 99), pct(own[-tenth:], 99)),
        "wall_p50": (pct(wall[:tenth], 50), pct(wall[-tenth:], 50)),
        "memory": memory,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--peerings", type=int, default=50)
    p.add_argument("--output", type=Path, default=Path("bench-results/soak.md"))
    args = p.parse_args(argv)
    r = run(args.events, args.items, args.peerings)
    (m0, b0), (mh, bh), (m1, b1) = r["memory"]
    lines = [
        f"Soak: {r['events']:,} events through one warm change auditor; the state table grew "
        f"to {r['items']:,} items.",
        "",
        "| | first 10% of events | last 10% of events | last / first |",
        "|---|---:|---:|---:|",
        *(
            f"| {label} | {a:.1f} ms | {b:.1f} ms | {b / a:.2f}x |"
            for label, (a, b) in (
                ("PeerGuard's own time p50", r["own_p50"]),
                ("PeerGuard's own time p99", r["own_p99"]),
                ("wall time p50 (with moto)", r["wall_p50"]),
            )
        ),
        "",
        "Memory held by PeerGuard, boto3, botocore, powertools, pydantic and slack_sdk code: "
        f"{b0 / 1024:.0f} KiB after event {m0:,}, {bh / 1024:.0f} KiB after {mh:,}, "
        f"{b1 / 1024:.0f} KiB after {m1:,} ({b1 / bh:.2f}x over the second half).",
    ]
    text = "\n".join(lines) + "\n"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
