"""Finding state in DynamoDB: what was announced, when, and who is announcing it now.

One table holds all PeerGuard state (partition key `pk`, TTL attribute `ttl`); Powertools
idempotency records and change records share it, so every item here has a `finding#` key
prefix. Open findings also carry `open_scope` (account#region), the key of the sparse
global secondary index `open-findings` (sort key `resource_id`): the candidates to resolve
are found by Query on it, never by a Scan, so their cost does not grow with the table.

Announcing a finding takes two writes. `claim` bumps the item's `revision` on the condition
that nobody else did since we read it, so of two concurrent invocations only one announces.
`record` then stores what was announced (status, content hash, finding, notified_at) once the
delivery attempt is over (delivered or dead-lettered). A claim that is never recorded (the
function died mid-way) expires after a lease, and the finding is announced again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from peerguard.domain.coverage import Coverage
from peerguard.domain.dedup import OPEN, FindingState
from peerguard.domain.findings import Finding

PREFIX = "finding#"
OPEN_INDEX = "open-findings"
_BATCH_GET = 100  # BatchGetItem's limit
# Up to this many resources, a scoped coverage asks for each one; beyond, for the region.
_PER_RESOURCE_QUERIES = 25


def key_of(fingerprint: str) -> str:
    return PREFIX + fingerprint


def finding_json(finding: Finding) -> str:
    # `key` is excluded from the public JSON but is part of the fingerprint: keep it.
    return json.dumps({**finding.model_dump(mode="json"), "key": finding.key}, sort_keys=True)


def open_scope(account_id: str, region: str) -> str:
    return f"{account_id}#{region}"


def _when(item: dict[str, Any], name: str) -> datetime | None:
    raw = item.get(name, {}).get("S")
    return datetime.fromisoformat(raw) if raw else None


def _text(item: dict[str, Any], name: str) -> str | None:
    value = item.get(name, {}).get("S")
    return str(value) if value is not None else None


def from_item(item: dict[str, Any]) -> FindingState:
    raw = _text(item, "finding")
    first_seen = _when(item, "first_seen")
    last_seen = _when(item, "last_seen")
    if first_seen is None or last_seen is None:
        raise ValueError(f"finding state {item.get('pk', {}).get('S')!r} has no first/last_seen")
    return FindingState(
        fingerprint=item["fingerprint"]["S"],
        check_id=item["check_id"]["S"],
        severity=item["severity"]["S"],
        resource_id=item["resource_id"]["S"],
        account_id=item["account_id"]["S"],
        region=item["region"]["S"],
        first_seen=first_seen,
        last_seen=last_seen,
        revision=int(item["revision"]["N"]),
        peering_connection_id=_text(item, "peering_connection_id"),
        vpc_id=_text(item, "vpc_id"),
        status=_text(item, "status"),
        notified_at=_when(item, "notified_at"),
        content_hash=_text(item, "content_hash"),
        finding=Finding.model_validate_json(raw) if raw else None,
        claimed_at=_when(item, "claimed_at"),
    )


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _ts(when: datetime) -> dict[str, str]:
    return {"S": when.astimezone(UTC).isoformat()}


class FindingStore:
    """Finding states in the shared DynamoDB table. The client is passed in (low-level API)."""

    def __init__(self, dynamodb: Any, table_name: str, retention: timedelta = timedelta(days=30)):
        if not table_name:
            raise ValueError("no state table name given (set PEERGUARD_TABLE)")
        self.dynamodb = dynamodb
        self.table = table_name
        self.retention = retention
        self.consumed = 0.0  # read capacity units of the open-findings queries

    def _ttl(self, now: datetime) -> dict[str, str]:
        return {"N": str(int((now + self.retention).timestamp()))}

    # -- reads ------------------------------------------------------------------

    def get_many(self, fingerprints: Iterable[str]) -> dict[str, FindingState]:
        keys = sorted(set(fingerprints))
        out: dict[str, FindingState] = {}
        for i in range(0, len(keys), _BATCH_GET):
            request: dict[str, Any] = {
                self.table: {
                    "Keys": [{"pk": _s(key_of(fp))} for fp in keys[i : i + _BATCH_GET]],
                    "ConsistentRead": True,
                }
            }
            while request:
                resp = self.dynamodb.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self.table, []):
                    state = from_item(item)
                    out[state.fingerprint] = state
                request = resp.get("UnprocessedKeys") or {}
        return out

    def open_states(self, coverage: Coverage) -> Iterator[FindingState]:
        """The open findings `coverage` could resolve: by Query on the open-findings index
        (per resource for a small scoped audit, per region otherwise)."""
        for account, region in coverage.scopes():
            home = account == coverage.account_id
            wanted = coverage.resource_ids if home else coverage.far_resources
            many = wanted is None or len(wanted) > _PER_RESOURCE_QUERIES
            scope = _s(open_scope(account, region))
            if many:
                keys = [("open_scope = :scope", {":scope": scope})]
            else:
                keys = [
                    ("open_scope = :scope AND resource_id = :res", {":scope": scope, ":res": _s(r)})
                    for r in sorted(wanted or ())
                ]
            for condition, values in keys:
                for item in self._query(condition, values):
                    state = from_item(item)
                    if state.is_open and coverage.covers(state):
                        yield state

    def _query(self, condition: str, values: dict[str, Any]) -> Iterator[dict[str, Any]]:
        pages = self.dynamodb.get_paginator("query").paginate(
            TableName=self.table,
            IndexName=OPEN_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ReturnConsumedCapacity="TOTAL",
        )
        for page in pages:
            self.consumed += float((page.get("ConsumedCapacity") or {}).get("CapacityUnits", 0))
            yield from page.get("Items", [])

    # -- writes -----------------------------------------------------------------

    def claim(self, finding: Finding, previous: FindingState | None, now: datetime) -> int | None:
        """Take the right to announce `finding`; the new revision, or None if another
        invocation changed the item since `previous` was read (it announces, not us)."""
        names = {"#rev": "revision"}
        values: dict[str, Any] = {
            ":next": {"N": str((previous.revision if previous else 0) + 1)},
            ":now": _ts(now),
            ":ttl": self._ttl(now),
            ":fp": _s(finding.fingerprint),
            ":check": _s(finding.check_id),
            ":sev": _s(finding.severity.value),
            ":res": _s(finding.resource_id),
            ":acct": _s(finding.account_id),
            ":region": _s(finding.region),
        }
        sets = [
            "#rev = :next",
            "claimed_at = :now",
            "#ttl = :ttl",
            "fingerprint = :fp",
            "check_id = :check",
            "severity = :sev",
            "resource_id = :res",
            "account_id = :acct",
            "#region = :region",
            "first_seen = if_not_exists(first_seen, :now)",
            "last_seen = if_not_exists(last_seen, :now)",
        ]
        names |= {"#ttl": "ttl", "#region": "region"}
        for attr, value in (
            ("peering_connection_id", finding.peering_connection_id),
            ("vpc_id", finding.vpc_id),
        ):
            if value:
                sets.append(f"{attr} = :{attr}")
                values[f":{attr}"] = _s(value)
        if previous is None:
            condition = "attribute_not_exists(pk)"
        else:
            condition = "#rev = :seen"
            values[":seen"] = {"N": str(previous.revision)}
        if self._update(finding.fingerprint, sets, names, values, condition):
            return int(values[":next"]["N"])
        return None

    def record(self, finding: Finding, status: str, revision: int, now: datetime) -> bool:
        """Store what was announced under our claim; False if someone re-claimed it since."""
        sets = [
            "#st = :status",
            "content_hash = :hash",
            "finding = :finding",
            "notified_at = :now",
            "severity = :sev",
            "#ttl = :ttl",
        ]
        values: dict[str, Any] = {
            ":status": _s(status),
            ":hash": _s(finding.content_hash),
            ":finding": _s(finding_json(finding)),
            ":now": _ts(now),
            ":sev": _s(finding.severity.value),
            ":ttl": self._ttl(now),
            ":rev": {"N": str(revision)},
        }
        removes = []
        if status == OPEN:
            sets += ["last_seen = :now", "open_scope = :scope"]
            values[":scope"] = _s(open_scope(finding.account_id, finding.region))
        else:
            removes.append("open_scope")  # out of the open-findings index
        names = {"#st": "status", "#ttl": "ttl", "#rev": "revision"}
        return self._update(finding.fingerprint, sets, names, values, "#rev = :rev", removes)

    def touch(self, fingerprint: str, now: datetime) -> bool:
        """Seen again, not announced: move last_seen and the expiry forward."""
        return self._update(
            fingerprint,
            ["last_seen = :now", "#ttl = :ttl"],
            {"#ttl": "ttl"},
            {":now": _ts(now), ":ttl": self._ttl(now)},
            "attribute_exists(pk)",
        )

    def _update(
        self,
        fingerprint: str,
        sets: list[str],
        names: dict[str, str],
        values: dict[str, Any],
        condition: str,
        removes: Iterable[str] = (),
    ) -> bool:
        used = set(re.findall(r"[:#]\w+", " ".join(sets) + " " + condition))
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"pk": _s(key_of(fingerprint))},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames={k: v for k, v in names.items() if k in used},
                ExpressionAttributeValues={k: v for k, v in values.items() if k in used},
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
