"""Faults moto cannot produce, injected on one operation of a real moto-backed client.

AccessDenied: a `before-call` hook answers that one operation with an error response
(botocore raises ClientError from it exactly as from AWS). Throttling: a `before-send`
hook answers the first HTTP attempt with 400 RequestLimitExceeded, so botocore's retry
logic (which the Stubber bypasses) must retry it; later attempts reach moto.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from botocore.awsrequest import AWSResponse

from peerguard.aws.clients import Clients
from tests.integration import awsnet
from tests.integration.awsnet import peered_pair, route_findings, run_audit

EAST = "us-east-1"


class _Raw:
    """The minimal raw body AWSResponse reads from."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def deny(clients: Clients, operation: str, code: str = "UnauthorizedOperation") -> None:
    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        http = AWSResponse("https://ec2.us-east-1.amazonaws.com/", 403, {}, _Raw(b""))
        error = {"Code": code, "Message": "You are not authorized to perform this operation."}
        return http, {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 403}}

    clients.client("ec2", EAST).meta.events.register_first(f"before-call.ec2.{operation}", answer)


def throttle_once(clients: Clients, operation: str) -> Counter[str]:
    attempts: Counter[str] = Counter()
    body = (
        b"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error>"
        b"<Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
        b"</Error></Errors><RequestID>throttled-1</RequestID></Response>"
    )

    def answer(request: Any, **_: Any) -> AWSResponse | None:
        attempts[operation] += 1
        if attempts[operation] == 1:
            return AWSResponse(request.url, 400, {"content-type": "text/xml"}, _Raw(body))
        return None  # let moto answer

    clients.client("ec2", EAST).meta.events.register_first(f"before-send.ec2.{operation}", answer)
    return attempts


def test_denied_route_tables_become_a_warning_and_the_rest_still_runs(
    ec2: Any, clients: Clients
) -> None:
    # Given a broken return route, a pending peering, and no permission to read route tables
    app, db, _ = peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")
    ec2.delete_route(RouteTableId=db.main_table, DestinationCidrBlock=app.cidr)
    spare = awsnet.vpc(ec2, "10.5.0.0/16")
    pending = ec2.create_vpc_peering_connection(VpcId=spare.vpc_id, PeerVpcId=app.vpc_id)[
        "VpcPeeringConnection"
    ]["VpcPeeringConnectionId"]
    deny(clients, "DescribeRouteTables")

    # When the account is audited
    result = run_audit(clients, [EAST])

    # Then the missing permission is named, route tables are not judged, the rest runs
    assert result.warnings == (
        "missing permission ec2:DescribeRouteTables in us-east-1 (UnauthorizedOperation): "
        "route_tables not checked there",
    )
    assert (EAST, "route_tables") in result.snapshot.partial
    assert route_findings(result) == []
    assert ("peering.pending_acceptance", pending) in {
        (f.check_id, f.resource_id) for f in result.findings
    }
    assert result.summary()["warnings"] == list(result.warnings)


def test_denied_peerings_do_not_turn_every_peering_route_into_a_blackhole(
    ec2: Any, clients: Clients
) -> None:
    app, db, _ = peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")
    deny(clients, "DescribeVpcPeeringConnections", code="AccessDenied")

    result = run_audit(clients, [EAST])

    assert result.warnings == (
        "missing permission ec2:DescribeVpcPeeringConnections in us-east-1 (AccessDenied): "
        "peerings not checked there",
    )
    assert result.findings == []
    # the other reads still happened (moto's default VPC is there too)
    assert {app.main_table, db.main_table} <= set(result.snapshot.route_tables)


def test_a_throttled_call_is_retried_and_the_audit_completes(ec2: Any, clients: Clients) -> None:
    app, db, _ = peered_pair(ec2, "10.0.0.0/16", "10.1.0.0/16")
    attempts = throttle_once(clients, "DescribeVpcs")

    result = run_audit(clients, [EAST])

    assert attempts["DescribeVpcs"] == 2  # throttled once, then answered by moto
    assert clients.calls["ec2:DescribeVpcs"] == 1  # one API call, retried inside botocore
    assert {app.vpc_id, db.vpc_id} <= set(result.snapshot.vpcs)
    assert result.warnings == ()
    assert route_findings(result) == []
