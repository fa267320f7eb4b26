"""Change records in DynamoDB (moto): one item per change, partition key `pk` only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from peerguard.domain.plans.actions import ChangeRecord
from peerguard.state.changes import DynamoRecorder, to_item

TABLE = "peerguard-state"


@pytest.fixture
def table(aws: None) -> Any:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return ddb


def change(**kw: Any) -> ChangeRecord:
    base: dict[str, Any] = dict(
        id="c0ffee000001",
        when=datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        trigger="evt-123",
        fingerprint="f" * 32,
        check_id="route.missing_reciprocal",
        change="remediation.applied",
        account_id="123456789012",
        region="us-east-1",
        call={
            "action": "CreateRoute",
            "parameters": {
                "RouteTableId": "rtb-1",
                "DestinationCidrBlock": "10.0.0.0/16",
                "VpcPeeringConnectionId": "pcx-1",
            },
        },
        undo={
            "action": "DeleteRoute",
            "parameters": {"RouteTableId": "rtb-1", "DestinationCidrBlock": "10.0.0.0/16"},
        },
        before={"route": None},
        after={
            "route": {
                "destination": "10.0.0.0/16",
                "target": "pcx-1",
                "state": "active",
                "origin": "CreateRoute",
            }
        },
        result="applied",
    )
    return ChangeRecord(**{**base, **kw})


def test_change_is_written_with_prefix_key_and_ttl(table: Any) -> None:
    rec = change()
    DynamoRecorder(table, TABLE, retention=timedelta(days=30)).record(rec)

    pk = to_item(rec)["pk"]
    item = table.get_item(TableName=TABLE, Key={"pk": {"S": pk}})["Item"]
    assert pk == "change#2025-03-01T12:00:00.000000Z#c0ffee000001"
    assert item["trigger"] == {"S": "evt-123"}
    assert item["check_id"] == {"S": "route.missing_reciprocal"}
    assert item["change"] == {"S": "remediation.applied"}
    assert item["call"]["M"]["action"] == {"S": "CreateRoute"}
    assert item["undo"]["M"]["action"] == {"S": "DeleteRoute"}
    assert item["before"]["M"]["route"] == {"NULL": True}
    assert item["after"]["M"]["route"]["M"]["target"] == {"S": "pcx-1"}
    assert item["result"] == {"S": "applied"}
    expected_ttl = int((rec.when + timedelta(days=30)).timestamp())
    assert item["ttl"] == {"N": str(expected_ttl)}


def test_two_changes_in_the_same_instant_are_two_items(table: Any) -> None:
    recorder = DynamoRecorder(table, TABLE)
    recorder.record(change(id="c0ffee000001"))
    recorder.record(change(id="c0ffee000002"))
    assert table.scan(TableName=TABLE)["Count"] == 2


def test_a_record_is_never_overwritten(table: Any) -> None:
    recorder = DynamoRecorder(table, TABLE)
    recorder.record(change())
    with pytest.raises(table.exceptions.ConditionalCheckFailedException):
        recorder.record(change(result="failed: X"))


def test_missing_table_name_is_a_clear_error(table: Any) -> None:
    with pytest.raises(ValueError, match="no DynamoDB table name"):
        DynamoRecorder(table, "")
