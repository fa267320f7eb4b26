"""Change records in DynamoDB (moto): one item per change, partition key `pk` only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from peerguard.aws.clients import Clients
from peerguard.remediation import ChangeRecord, DynamoRecorder

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
        when=datetime(2025, 3, 1, 12, 0, tzinfo=UTC),
        trigger="evt-123",
        fingerprint="f" * 32,
        check_id="route.missing_reciprocal",
        account_id="123456789012",
        region="us-east-1",
        call={
            "operation": "CreateRoute",
            "parameters": {
                "RouteTableId": "rtb-1",
                "DestinationCidrBlock": "10.0.0.0/16",
                "VpcPeeringConnectionId": "pcx-1",
            },
        },
        undo={
            "operation": "DeleteRoute",
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


def test_change_is_written_with_prefix_key_and_ttl(table: Any, clients: Clients) -> None:
    rec = change()
    DynamoRecorder(clients, TABLE, retention=timedelta(days=30)).record(rec)

    item = table.get_item(TableName=TABLE, Key={"pk": {"S": rec.pk}})["Item"]
    assert rec.pk.startswith("change#2025-03-01T12:00:00.000000Z#")
    assert item["trigger"] == {"S": "evt-123"}
    assert item["check_id"] == {"S": "route.missing_reciprocal"}
    assert item["call"]["M"]["operation"] == {"S": "CreateRoute"}
    assert item["undo"]["M"]["operation"] == {"S": "DeleteRoute"}
    assert item["before"]["M"]["route"] == {"NULL": True}
    assert item["after"]["M"]["route"]["M"]["target"] == {"S": "pcx-1"}
    assert item["result"] == {"S": "applied"}
    expected_ttl = int((rec.when + timedelta(days=30)).timestamp())
    assert item["ttl"] == {"N": str(expected_ttl)}


def test_two_changes_in_the_same_instant_are_two_items(table: Any, clients: Clients) -> None:
    recorder = DynamoRecorder(clients, TABLE)
    recorder.record(change())
    recorder.record(change())
    assert table.scan(TableName=TABLE)["Count"] == 2


def test_missing_table_name_is_a_clear_error(clients: Clients) -> None:
    with pytest.raises(ValueError, match="no DynamoDB table name"):
        DynamoRecorder(clients, "")
