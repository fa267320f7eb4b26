"""The acceptance function as deployed: template environment, handler, table, topic, in moto.

Requests come from a partner account (111111111111, reached with sts assume_role, which
switches the account in moto); the stack runs in moto's default account 123456789012.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.awsrequest import AWSResponse

from peerguard_lab.stack import REGION, Stack
from peerguard_lab.template import ROOT

US, PARTNER, STRANGER = "123456789012", "111111111111", "222222222222"
ACCEPTANCE = "AcceptanceFunction"


def partner_ec2(account: str) -> Any:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/network-admin", RoleSessionName="partner"
    )["Credentials"]
    return boto3.client(
        "ec2",
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def network(account: str = PARTNER) -> dict[str, str]:
    """Our VPC with a route table tagged for peer routes; the partner's request to it."""
    ec2 = boto3.client("ec2", region_name=REGION)
    ours = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    tag = [{"Key": "peerguard:peer-routes", "Value": "true"}]
    rt = ec2.create_route_table(
        VpcId=ours, TagSpecifications=[{"ResourceType": "route-table", "Tags": tag}]
    )["RouteTable"]["RouteTableId"]
    theirs_ec2 = partner_ec2(account)
    theirs = theirs_ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    pcx = theirs_ec2.create_vpc_peering_connection(VpcId=theirs, PeerVpcId=ours, PeerOwnerId=US)
    return {
        "ours": ours,
        "rt": rt,
        "theirs": theirs,
        "pcx": pcx["VpcPeeringConnection"]["VpcPeeringConnectionId"],
    }


def request_event(net: dict[str, str], account: str = PARTNER) -> dict[str, Any]:
    """events/CreateVpcPeeringConnection.json, re-pointed at the request made in moto."""
    event = copy.deepcopy(
        json.loads((ROOT / "events" / "CreateVpcPeeringConnection.json").read_text())
    )
    event["id"] = str(uuid.uuid4())
    detail = event["detail"]
    detail["eventID"] = str(uuid.uuid4())
    detail["requestParameters"] = {
        "vpcId": net["theirs"],
        "peerVpcId": net["ours"],
        "peerOwnerId": US,
        "peerRegion": REGION,
    }
    pcx = detail["responseElements"]["vpcPeeringConnection"]
    pcx["vpcPeeringConnectionId"] = net["pcx"]
    pcx["requesterVpcInfo"].update(ownerId=account, vpcId=net["theirs"], cidrBlock="10.9.0.0/16")
    pcx["requesterVpcInfo"]["cidrBlockSet"] = {"items": [{"cidrBlock": "10.9.0.0/16"}]}
    pcx["accepterVpcInfo"] = {"ownerId": US, "vpcId": net["ours"], "region": REGION}
    return event


def schedule_event() -> dict[str, Any]:
    event = json.loads((ROOT / "events" / "schedule.json").read_text())
    event["id"] = str(uuid.uuid4())
    return event


def status(pcx: str) -> str:
    ec2 = boto3.client("ec2", region_name=REGION)
    found = ec2.describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])
    return str(found["VpcPeeringConnections"][0]["Status"]["Code"])


def change_records(stack: Stack) -> list[dict[str, Any]]:
    ddb = boto3.client("dynamodb", region_name=REGION)
    items = ddb.scan(TableName=stack.physical["StateTable"])["Items"]
    plain = [{k: TypeDeserializer().deserialize(v) for k, v in i.items()} for i in items]
    return [i for i in plain if str(i["pk"]).startswith("change#")]


def check_ids(messages: list[dict[str, Any]]) -> list[str]:
    return sorted(m["body"]["check_id"] for m in messages)


def test_the_same_request_event_delivered_twice_accepts_once(aws: None) -> None:
    net = network()
    stack = Stack({"AutoAcceptPeerings": "true", "AllowlistedAccounts": PARTNER})
    topic = stack.subscribe_queue()
    event = request_event(net)
    assert ACCEPTANCE in stack.routes(event)

    first = stack.deliver(event)[ACCEPTANCE]
    second = stack.deliver(event)[ACCEPTANCE]

    assert status(net["pcx"]) == "active"
    assert first["changes"] == 2 and second == first  # the duplicate got the first result
    records = change_records(stack)
    assert sorted(r["change"] for r in records) == [
        "acceptance.accepted",
        "acceptance.route_added",
    ]
    announced = check_ids(stack.messages(topic))
    assert announced.count("acceptance.accepted") == 1
    assert announced.count("acceptance.route_added") == 1


def test_an_unknown_account_is_alerted_on_the_topic_and_left_pending(aws: None) -> None:
    net = network(STRANGER)
    stack = Stack({"AutoAcceptPeerings": "true", "AllowlistedAccounts": PARTNER})
    topic = stack.subscribe_queue()

    out = stack.invoke(ACCEPTANCE, schedule_event())
    again = stack.invoke(ACCEPTANCE, schedule_event())  # 5 minutes later: nothing new to say

    assert status(net["pcx"]) == "pending-acceptance"
    assert out["verdicts"][net["pcx"]]["action"] == "alert"
    messages = stack.messages(topic)
    assert check_ids(messages) == ["peering.not_allowlisted", "peering.pending_acceptance"]
    severities = {
        m["body"]["check_id"]: m["attributes"]["severity"]["StringValue"] for m in messages
    }
    assert severities["peering.not_allowlisted"] == "high"
    assert again["notify"]["decisions"]["new"] == 0


def test_access_denied_on_accept_reaches_the_topic_and_does_not_crash(aws: None) -> None:
    net = network()
    stack = Stack({"AutoAcceptPeerings": "true", "AllowlistedAccounts": PARTNER})
    topic = stack.subscribe_queue()
    deny(stack, "AcceptVpcPeeringConnection")

    out = stack.invoke(ACCEPTANCE, schedule_event())

    assert status(net["pcx"]) == "pending-acceptance"
    assert [o["status"] for o in out["outcomes"]] == ["failed", "skipped"]  # accept, its route
    messages = stack.messages(topic)
    [failed] = [m for m in messages if m["body"]["check_id"] == "acceptance.failed"]
    assert failed["attributes"]["severity"]["StringValue"] == "high"
    assert "ec2:AcceptVpcPeeringConnection was denied" in json.dumps(failed["body"])


def deny(stack: Stack, operation: str) -> None:
    """IAM denial is a fault moto does not produce here: the stack's session (the one its
    handlers' clients are built on) answers like EC2 does."""

    def denied(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        parsed = {
            "Error": {"Code": "UnauthorizedOperation", "Message": "You are not authorized"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }
        return AWSResponse("https://ec2.amazonaws.com", 403, {}, None), parsed

    stack.clients.session._session.register(f"before-call.ec2.{operation}", denied)


def test_a_malformed_event_is_logged_and_counted_not_raised(aws: None) -> None:
    stack = Stack()
    event = json.loads((ROOT / "events" / "malformed.missing-event-name.json").read_text())

    out = stack.invoke(ACCEPTANCE, event)

    assert out == {"status": "malformed", "reason": "detail.eventName is missing"}


def test_an_ssm_allowlist_gives_every_function_the_same_verdict(aws: None) -> None:
    # Given the allowlist in SSM (partner only) and a request from an account not on it
    name = "/peerguard/allowlist"
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name=name, Value=f'[{{"account_id": "{PARTNER}"}}]', Type="String"
    )
    net = network(STRANGER)
    stack = Stack({"AllowlistParameterName": name})
    topic = stack.subscribe_queue()

    # When the acceptance function, then the sweep, then the acceptance function run
    first = stack.invoke(ACCEPTANCE, schedule_event())
    sweep = stack.invoke("SweepFunction", schedule_event())
    again = stack.invoke(ACCEPTANCE, schedule_event())

    # Then the unlisted request is announced once, and never "resolved" in between
    assert status(net["pcx"]) == "pending-acceptance"
    messages = [m for m in stack.messages(topic) if m["body"]["check_id"] != "setup.no_trail"]
    unlisted = [m for m in messages if m["body"]["check_id"] == "peering.not_allowlisted"]
    assert len(unlisted) == 1 and unlisted[0]["body"]["status"] == "new"
    assert not [m for m in messages if m["body"]["status"] == "resolved"]
    assert first["allowlist_error"] is None and sweep["notify"]["decisions"]["resolved"] == 0
    assert again["notify"]["decisions"]["new"] == 0
