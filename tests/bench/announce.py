"""One announce against a state table of 100 and of 100,000 items: the open-findings Query
beside the Scan it replaced, side by side on the same table.

    python -m tests.bench.announce [--sizes 100,100000] [--repeats 7]

The table is template.yaml's (with its open-findings index) in in-process moto. Its items
are what a long-lived stack accumulates: idempotency records, change records, resolved
findings and open findings of other regions, plus five open findings in the audited
region. The announce is the change auditor's: three current findings of one scope.
moto reports a constant ConsumedCapacity, so read capacity is computed from the items
each read examined, as DynamoDB bills it (4 KB per read unit, half for eventually
consistent reads, per request).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from moto import mock_aws

from peerguard.domain.coverage import Coverage
from peerguard.domain.dedup import OPEN, RESOLVED
from peerguard.domain.findings import Finding, Severity
from peerguard.notify import dispatch
from peerguard.state.findings import PREFIX, FindingStore, from_item
from peerguard_lab.stack import create_table
from tests.integration.test_state_store import TABLE

ACCOUNT, REGION, ELSEWHERE = "123456789012", "us-east-1", "eu-west-1"
NOW = __import__("datetime").datetime(2026, 12, 1, tzinfo=__import__("datetime").UTC)
_SER = TypeSerializer()


def finding(resource_id: str, region: str = REGION) -> Finding:
    return Finding(
        check_id="route.missing_reciprocal",
        severity=Severity.HIGH,
        resource_type="AWS::EC2::RouteTable",
        resource_id=resource_id,
        account_id=ACCOUNT,
        region=region,
        vpc_id="vpc-0a1b2c3d",
        peering_connection_id="pcx-0a1b2c3d",
        title="Peering route has no return route",
        detail=f"{resource_id} has no return route to 10.0.0.0/16 via pcx-0a1b2c3d, " * 3,
    )


def fill(ddb: Any, store: FindingStore, unrelated: int) -> None:
    """`unrelated` items the scoped announce has no business reading, plus 5 open ones."""
    for i in range(5):
        f = finding(f"rtb-open{i:04d}")
        store.record(f, OPEN, store.claim(f, None, NOW) or 0, NOW)
    kinds: list[Callable[[int], dict[str, Any]]] = [
        lambda i: {"pk": f"ChangeAuditorFunction#{i:032x}", "status": "COMPLETED", "data": "{}"},
        lambda i: {"pk": f"change#2026-11-01T00:00:00.000000Z#{i:012x}", "call": {"a": "x" * 200}},
    ]
    batch: list[dict[str, Any]] = []
    for i in range(unrelated):
        if i % 4 < 2:
            item = kinds[i % 2](i)
        else:  # a finding: resolved in our region, or open in another one
            f = finding(f"rtb-{i:08x}", REGION if i % 4 == 2 else ELSEWHERE)
            status = RESOLVED if i % 4 == 2 else OPEN
            item = {
                "pk": PREFIX + f.fingerprint,
                "fingerprint": f.fingerprint,
                "check_id": f.check_id,
                "severity": "high",
                "resource_id": f.resource_id,
                "account_id": ACCOUNT,
                "region": f.region,
                "first_seen": NOW.isoformat(),
                "last_seen": NOW.isoformat(),
                "revision": 1,
                "status": status,
                "finding": json.dumps(f.model_dump(mode="json")),
                **({"open_scope": f"{ACCOUNT}#{f.region}"} if status == OPEN else {}),
            }
        batch.append({"PutRequest": {"Item": {k: _SER.serialize(v) for k, v in item.items()}}})
        if len(batch) == 25:
            ddb.batch_write_item(RequestItems={TABLE: batch})
            batch = []
    if batch:
        ddb.batch_write_item(RequestItems={TABLE: batch})


@contextmanager
def examined(ddb: Any) -> Iterator[list[tuple[int, int]]]:
    """(items examined, bytes of them) per Query/Scan request, from the responses."""
    seen: list[tuple[int, int]] = []

    def count(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("Query", "Scan"):
            items = parsed.get("Items", [])
            size = sum(len(json.dumps(i)) for i in items)
            scanned = int(parsed.get("ScannedCount", len(items)))
            # A Scan bills for every item it examines, matched or not: scale by the ratio.
            if items and scanned > len(items):
                size = size * scanned // len(items)
            elif not items and scanned:
                size = scanned * 400
            seen.append((scanned, size))

    ddb.meta.events.register("after-call.dynamodb", count)
    try:
        yield seen
    finally:
        ddb.meta.events.unregister("after-call.dynamodb", count)


def read_units(requests: list[tuple[int, int]], consistent: bool) -> float:
    per = 1.0 if consistent else 0.5
    return sum(max(1, math.ceil(size / 4096)) * per for _, size in requests)


def scan_open(ddb: Any, coverage: Coverage) -> list[Any]:
    """The read the index replaced: a filtered Scan of the whole table."""
    pages = ddb.get_paginator("scan").paginate(
        TableName=TABLE,
        ConsistentRead=True,
        FilterExpression="begins_with(pk, :p) AND #st = :open AND account_id = :acct",
        ExpressionAttributeNames={"#st": "status"},
        ExpressionAttributeValues={
            ":p": {"S": PREFIX},
            ":open": {"S": OPEN},
            ":acct": {"S": ACCOUNT},
        },
    )
    return [
        from_item(i)
        for page in pages
        for i in page.get("Items", [])
        if coverage.covers(from_item(i))
    ]


def measure(unrelated: int, repeats: int) -> dict[str, Any]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        create_table(ddb, TABLE)
        store = FindingStore(ddb, TABLE, retention=timedelta(days=30))
        fill(ddb, store, unrelated)
        scope = {f"rtb-open{i:04d}" for i in range(3)} | {"vpc-0a1b2c3d", "pcx-0a1b2c3d"}
        coverage = Coverage(
            ACCOUNT, frozenset({REGION}), frozenset({"route.missing_reciprocal"}), frozenset(scope)
        )
        current = [finding(f"rtb-open{i:04d}") for i in range(3)]
        times, scans = [], []
        with examined(ddb) as query_reads:
            for r in range(repeats):
                started = time.perf_counter()
                dispatch(current, coverage, NOW + timedelta(hours=r), store, [], None)
                times.append(time.perf_counter() - started)
        query_per_announce = query_reads[: len(query_reads) // repeats]
        with examined(ddb) as scan_reads:
            for _ in range(repeats):
                started = time.perf_counter()
                scan_open(ddb, coverage)
                scans.append(time.perf_counter() - started)
        scan_per_announce = scan_reads[: len(scan_reads) // repeats]
    return {
        "items": unrelated + 5,
        "announce_ms": statistics.median(times) * 1000,
        "query_items": sum(n for n, _ in query_per_announce),
        "query_rcu": read_units(query_per_announce, consistent=False),
        "scan_ms": statistics.median(scans) * 1000,
        "scan_items": sum(n for n, _ in scan_per_announce),
        "scan_rcu": read_units(scan_per_announce, consistent=True),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| items in the table | one announce (Query on the index) | items read | read units "
        "| the Scan it replaced | items read | read units |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['items']:,} | {r['announce_ms']:.1f} ms | {r['query_items']} | "
            f"{r['query_rcu']:.1f} | {r['scan_ms']:.1f} ms | {r['scan_items']:,} | "
            f"{r['scan_rcu']:,.1f} |"
        )
    first, last = rows[0], rows[-1]
    lines.append("")
    grew = last["announce_ms"] / first["announce_ms"]
    lines.append(
        f"Items read per announce: {first['query_items']} at {first['items']:,} items, "
        f"{last['query_items']} at {last['items']:,} (the Scan: {first['scan_items']:,} and "
        f"{last['scan_items']:,}). Wall time in moto grows {grew:.1f}x for the Query too: moto "
        "answers an index Query by walking every item; DynamoDB reads only the index partition."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", default="100,100000")
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args(argv)
    rows = [measure(int(n) - 5, args.repeats) for n in args.sizes.split(",")]
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
