"""The finding state store against DynamoDB in moto: claims, records, expiry, and the
open-findings index that finds what to resolve without a Scan."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from peerguard.domain.coverage import Coverage
from peerguard.domain.dedup import OPEN, RESOLVED
from peerguard.state.findings import FindingStore
from peerguard_lab.stack import create_table
from tests.unit.test_notify_dedup import ACCOUNT, NOW, REGION, finding

TABLE = "peerguard-state"
CHECKS = frozenset({"route.missing_reciprocal"})


def covering(account: str = ACCOUNT, resources: set[str] | None = None) -> Coverage:
    return Coverage(
        account, frozenset({REGION}), CHECKS, frozenset(resources) if resources else None
    )


@pytest.fixture
def dynamodb(aws: None):  # type: ignore[no-untyped-def]
    client = boto3.client("dynamodb", region_name=REGION)
    create_table(client, TABLE)  # as template.yaml declares it: keys, indexes, expiry
    return client


@pytest.fixture
def store(dynamodb) -> FindingStore:  # type: ignore[no-untyped-def]
    return FindingStore(dynamodb, TABLE, retention=timedelta(days=30))


def test_a_claimed_and_recorded_finding_reads_back_whole(store: FindingStore, dynamodb) -> None:  # type: ignore[no-untyped-def]
    f = finding(key="10.1.0.0/16")
    revision = store.claim(f, None, NOW)
    assert revision == 1
    assert store.record(f, OPEN, revision, NOW)

    state = store.get_many([f.fingerprint])[f.fingerprint]
    assert state.finding == f and state.finding.fingerprint == f.fingerprint  # key kept
    assert (state.status, state.content_hash, state.notified_at) == (OPEN, f.content_hash, NOW)
    assert (state.first_seen, state.peering_connection_id, state.revision) == (NOW, "pcx-1", 1)
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"finding#{f.fingerprint}"}})["Item"]
    assert int(item["ttl"]["N"]) == int((NOW + timedelta(days=30)).timestamp())


def test_only_one_of_two_concurrent_claims_wins(store: FindingStore) -> None:
    f = finding()
    assert store.claim(f, None, NOW) == 1
    assert store.claim(f, None, NOW) is None  # the other invocation read "absent" too
    state = store.get_many([f.fingerprint])[f.fingerprint]
    assert store.claim(f, state, NOW) == 2
    assert store.claim(f, state, NOW) is None  # same stale read, already bumped


def test_a_record_under_a_lost_claim_is_refused(store: FindingStore) -> None:
    f = finding()
    first = store.claim(f, None, NOW)
    assert first is not None
    state = store.get_many([f.fingerprint])[f.fingerprint]
    store.claim(f, state, NOW + timedelta(hours=1))  # lease expired, someone re-claimed
    assert not store.record(f, OPEN, first, NOW)


def test_touch_moves_last_seen_but_never_creates_an_item(store: FindingStore) -> None:
    f = finding()
    assert not store.touch(f.fingerprint, NOW)
    assert store.get_many([f.fingerprint]) == {}
    store.record(f, OPEN, store.claim(f, None, NOW) or 0, NOW)
    later = NOW + timedelta(hours=2)
    assert store.touch(f.fingerprint, later)
    state = store.get_many([f.fingerprint])[f.fingerprint]
    assert (state.last_seen, state.notified_at) == (later, NOW)


def test_open_states_lists_open_findings_of_the_account_and_regions(
    store: FindingStore, dynamodb
) -> None:  # type: ignore[no-untyped-def]
    opened, resolved, elsewhere = (
        finding("rtb-1"),
        finding("rtb-2"),
        finding("rtb-3", region="eu-west-1"),
    )
    for f, status in ((opened, OPEN), (resolved, RESOLVED), (elsewhere, OPEN)):
        store.record(f, status, store.claim(f, None, NOW) or 0, NOW)
    # an idempotency record sharing the table is not a finding
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "idem#abc"}, "status": {"S": OPEN}})
    found = list(store.open_states(covering()))
    assert [s.resource_id for s in found] == ["rtb-1"]
    assert list(store.open_states(covering("999999999999"))) == []
    # A scoped audit asks for its own resources only.
    assert [s.resource_id for s in store.open_states(covering(resources={"rtb-1"}))] == ["rtb-1"]
    assert list(store.open_states(covering(resources={"rtb-2", "rtb-9"}))) == []
    assert store.consumed > 0  # the queries report their cost


def test_a_resolved_finding_leaves_the_open_index(store: FindingStore) -> None:
    f = finding("rtb-1")
    store.record(f, OPEN, store.claim(f, None, NOW) or 0, NOW)
    assert [s.resource_id for s in store.open_states(covering())] == ["rtb-1"]
    previous = store.get_many([f.fingerprint])[f.fingerprint]
    store.record(f, RESOLVED, store.claim(f, previous, NOW) or 0, NOW)
    assert list(store.open_states(covering())) == []


def test_a_big_scope_asks_for_the_region_once(store: FindingStore) -> None:
    for i in range(3):
        f = finding(f"rtb-{i}")
        store.record(f, OPEN, store.claim(f, None, NOW) or 0, NOW)
    many = {f"rtb-{i}" for i in range(40)}  # more than the per-resource queries
    assert sorted(s.resource_id for s in store.open_states(covering(resources=many))) == [
        "rtb-0",
        "rtb-1",
        "rtb-2",
    ]


def test_get_many_reads_more_than_one_batch(store: FindingStore) -> None:
    findings = [finding(f"rtb-{i}") for i in range(130)]
    for f in findings[::2]:
        store.claim(f, None, NOW)
    assert len(store.get_many(f.fingerprint for f in findings)) == 65


def test_a_store_without_a_table_name_says_so(dynamodb) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="PEERGUARD_TABLE"):
        FindingStore(dynamodb, "")


def test_a_recorded_change_waits_in_the_outbox_until_its_announcement_is_settled(
    dynamodb,
    store: FindingStore,  # type: ignore[no-untyped-def]
) -> None:
    from peerguard.domain.plans.actions import ChangeRecord
    from peerguard.state.changes import DynamoRecorder, Outbox

    told = finding("rtb-0a1b2c3d", "route.missing_reciprocal")
    change = ChangeRecord(
        id="c0ffee",
        when=NOW,
        trigger="event-1",
        fingerprint=told.fingerprint,
        check_id=told.check_id,
        change="remediation.applied",
        account_id=ACCOUNT,
        region=REGION,
        call={"action": "CreateRoute", "parameters": {}},
        undo=None,
        before=None,
        after=None,
        result="applied",
        announcement=told.to_record(),
    )
    DynamoRecorder(dynamodb, TABLE).record(change)
    outbox = Outbox(dynamodb, TABLE)

    [(key, waiting)] = list(outbox.waiting(ACCOUNT, [REGION]))
    assert waiting.fingerprint == told.fingerprint  # rebuilt exactly: dedup recognises it
    assert list(outbox.waiting(ACCOUNT, ["eu-west-1"])) == []
    assert all(s.fingerprint != told.fingerprint for s in store.open_states(covering()))

    outbox.settle([key])

    assert list(outbox.waiting(ACCOUNT, [REGION])) == []
    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": key}})["Item"]
    assert item["result"]["S"] == "applied"  # the record itself stays
