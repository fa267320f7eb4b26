"""Auto-accept against moto across two accounts: the partner requests, we accept (or not).

The partner account (111111111111) is reached with sts assume_role, which switches the
account in moto; this account is moto's default, 123456789012. moto 5.2.5 ignores DryRun
(AcceptVpcPeeringConnection too) and leaves ExpirationTime out: the hooks below answer
like EC2 does, as in test_remediation.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from peerguard.aws.clients import Clients
from peerguard.domain.allowlist import ALLOWLIST_INVALID
from peerguard.domain.plans.acceptance import (
    ACCEPTED,
    DEFERRED,
    DRY_RUN,
    FAILED,
    REFUSED,
    REJECTED,
    ROUTE_ADDED,
)
from peerguard.settings import AcceptanceSettings
from peerguard.state.changes import MemoryRecorder
from peerguard.usecases.acceptance import AcceptanceRun, run_acceptance
from peerguard.usecases.pipeline import Runtime

HOME, WEST = "us-east-1", "us-west-2"
US, PARTNER, STRANGER = "123456789012", "111111111111", "222222222222"


# -- the two accounts ---------------------------------------------------------------------


def account_ec2(account: str, region: str = HOME) -> Any:
    if account == US:
        return boto3.client("ec2", region_name=region)
    creds = boto3.client("sts", region_name=HOME).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/network-admin", RoleSessionName="partner"
    )["Credentials"]
    return boto3.client(
        "ec2",
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def our_vpc(
    cidr: str = "10.0.0.0/16", region: str = HOME, tags: dict[str, str] | None = None
) -> dict[str, str]:
    """Our VPC with one route table tagged for peer routes and one that is not."""
    ec2 = account_ec2(US, region)
    spec = [
        {"ResourceType": "vpc", "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}
    ]
    vpc = ec2.create_vpc(CidrBlock=cidr, **({"TagSpecifications": spec} if tags else {}))["Vpc"][
        "VpcId"
    ]
    tagged = ec2.create_route_table(
        VpcId=vpc,
        TagSpecifications=[
            {
                "ResourceType": "route-table",
                "Tags": [{"Key": "peerguard:peer-routes", "Value": "true"}],
            }
        ],
    )["RouteTable"]["RouteTableId"]
    plain = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    return {"vpc": vpc, "tagged": tagged, "plain": plain}


def request(
    to_vpc: str,
    cidr: str = "10.9.0.0/16",
    account: str = PARTNER,
    region: str = HOME,
    accepter_region: str = HOME,
) -> str:
    """The partner creates a VPC and asks to peer it with ours."""
    ec2 = account_ec2(account, region)
    theirs = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    pcx = ec2.create_vpc_peering_connection(
        VpcId=theirs, PeerVpcId=to_vpc, PeerOwnerId=US, PeerRegion=accepter_region
    )
    return str(pcx["VpcPeeringConnection"]["VpcPeeringConnectionId"])


def status(pcx: str, region: str = HOME) -> str:
    found = account_ec2(US, region).describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])
    return str(found["VpcPeeringConnections"][0]["Status"]["Code"])


def peer_routes(rt: str, region: str = HOME) -> set[tuple[str, str]]:
    table = account_ec2(US, region).describe_route_tables(RouteTableIds=[rt])["RouteTables"][0]
    return {
        (r["DestinationCidrBlock"], r["VpcPeeringConnectionId"])
        for r in table["Routes"]
        if r.get("VpcPeeringConnectionId")
    }


# -- running PeerGuard ----------------------------------------------------------------------


def runtime(**settings: Any) -> Runtime:
    base: dict[str, Any] = {"auto_accept": True, "allowlist": PARTNER}
    clients = Clients(boto3.Session(region_name=HOME), default_region=HOME)
    return Runtime(clients, AcceptanceSettings(**{**base, **settings}), sleep=lambda _: None)


def run(rt: Runtime) -> AcceptanceRun:
    return run_acceptance(rt)


def records(rt: Runtime) -> MemoryRecorder:
    recorder = rt.recorder
    assert isinstance(recorder, MemoryRecorder)
    return recorder


def by_check(result: AcceptanceRun, check_id: str) -> list[Any]:
    return [f for f in result.findings if f.check_id == check_id]


def error_response(code: str, status: int = 400) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {
        "Error": {"Code": code, "Message": f"simulated {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return AWSResponse("https://ec2.amazonaws.com", status, {}, None), parsed


def hook(rt: Runtime, event: str, handler: Callable[..., Any], region: str = HOME) -> None:
    rt.clients.client("ec2", region).meta.events.register(event, handler)


def answer_dry_run_like_ec2(rt: Runtime) -> list[str]:
    """DryRun=True gets DryRunOperation before moto (which would make the change)."""
    seen: list[str] = []

    def answer(params: dict[str, Any], model: Any, **_: Any) -> Any:
        if str(params.get("body", {}).get("DryRun", "")).lower() == "true":
            seen.append(model.name)
            return error_response("DryRunOperation", 412)
        return None

    hook(rt, "before-call.ec2", answer)
    return seen


def mutating_calls(rt: Runtime) -> list[tuple[str, bool]]:
    calls: list[tuple[str, bool]] = []

    def spy(params: dict[str, Any], model: Any, **_: Any) -> None:
        if not model.name.startswith("Describe"):
            calls.append((model.name, bool(params.get("DryRun"))))

    hook(rt, "provide-client-params.ec2", spy)
    return calls


# -- accept ---------------------------------------------------------------------------------


def test_an_allowlisted_request_is_accepted_and_routed_only_in_tagged_tables(aws: None) -> None:
    ours = our_vpc()
    pcx = request(ours["vpc"])
    rt = runtime()
    result = run(rt)
    recorder = records(rt)

    assert status(pcx) == "active"
    assert peer_routes(ours["tagged"]) == {("10.9.0.0/16", pcx)}
    assert peer_routes(ours["plain"]) == set()
    assert [(r.change, r.result) for r in recorder.records] == [
        (ACCEPTED.id, "applied"),
        (ROUTE_ADDED.id, "applied"),
    ]
    assert recorder.records[0].undo == {
        "action": "DeleteVpcPeeringConnection",
        "parameters": {"VpcPeeringConnectionId": pcx},
    }
    assert recorder.records[1].undo == {
        "action": "DeleteRoute",
        "parameters": {"RouteTableId": ours["tagged"], "DestinationCidrBlock": "10.9.0.0/16"},
    }
    assert [f.check_id for f in result.findings] == [ACCEPTED.id, ROUTE_ADDED.id]  # pending gone
    assert pcx in result.coverage.resource_ids  # type: ignore[operator]


def test_dns_resolution_is_allowed_after_accepting_when_configured(aws: None) -> None:
    ours = our_vpc()
    pcx = request(ours["vpc"])

    result = run(runtime(accept_dns=True, accept_routes=False))

    info = account_ec2(US).describe_vpc_peering_connections(VpcPeeringConnectionIds=[pcx])
    options = info["VpcPeeringConnections"][0]["AccepterVpcInfo"]["PeeringOptions"]
    assert options["AllowDnsResolutionFromRemoteVpc"] is True
    assert peer_routes(ours["tagged"]) == set()
    dns = [
        o.action
        for o in result.outcomes
        if o.action.call.action == "ModifyVpcPeeringConnectionOptions"
    ]
    assert dns[0].undo is not None
    assert dns[0].undo.parameters["AccepterPeeringConnectionOptions"] == {
        "AllowDnsResolutionFromRemoteVpc": False
    }


def test_a_cross_region_request_is_accepted_in_the_accepter_region(aws: None) -> None:
    ours = our_vpc()
    pcx = request(ours["vpc"], region=WEST, accepter_region=HOME)
    accepts: list[str] = []
    rt = runtime()
    for region in (HOME, WEST):
        hook(
            rt,
            "before-call.ec2.AcceptVpcPeeringConnection",
            lambda region=region, **_: accepts.append(region),
            region,
        )

    run(rt)

    assert accepts == [HOME]
    assert status(pcx) == "active"
    assert peer_routes(ours["tagged"]) == {("10.9.0.0/16", pcx)}


def test_a_request_waiting_in_a_peer_region_is_alerted_for_that_regions_stack(aws: None) -> None:
    ours = our_vpc(region=WEST)
    pcx = request(ours["vpc"], accepter_region=WEST)

    result = run(runtime(peer_regions=WEST))

    assert status(pcx, WEST) == "pending-acceptance"
    assert result.verdicts[0].action == "alert" and "stack there" in result.verdicts[0].reason
    assert [f.check_id for f in result.findings] == ["peering.pending_acceptance"]


# -- refuse, alert, reject --------------------------------------------------------------------


def test_a_request_from_an_unknown_account_is_alerted_and_left_pending(aws: None) -> None:
    ours = our_vpc()
    pcx = request(ours["vpc"], account=STRANGER)

    result = run(runtime())

    assert status(pcx) == "pending-acceptance"
    assert result.changes == 0
    assert {f.check_id for f in result.findings} == {
        "peering.pending_acceptance",
        "peering.not_allowlisted",
    }


def test_an_overlapping_request_is_refused_with_privatelink_advice(aws: None) -> None:
    ours = our_vpc()
    pcx = request(ours["vpc"], cidr="10.0.128.0/17")

    result = run(runtime())

    assert status(pcx) == "pending-acceptance"
    [refused] = by_check(result, REFUSED.id)
    assert "10.0.128.0/17 ~ 10.0.0.0/16" in refused.detail
    assert "PrivateLink" in refused.detail and "Transit Gateway" in refused.detail
    assert by_check(result, "peering.cidr_overlap")


def test_overlap_with_an_existing_peer_of_our_vpc_is_refused(aws: None) -> None:
    ours = our_vpc()
    other = account_ec2(US).create_vpc(CidrBlock="10.9.0.0/20")["Vpc"]["VpcId"]
    old = account_ec2(US).create_vpc_peering_connection(VpcId=ours["vpc"], PeerVpcId=other)
    old_id = old["VpcPeeringConnection"]["VpcPeeringConnectionId"]
    account_ec2(US).accept_vpc_peering_connection(VpcPeeringConnectionId=old_id)
    pcx = request(ours["vpc"], cidr="10.9.0.0/16")

    result = run(runtime())

    assert status(pcx) == "pending-acceptance"
    [refused] = by_check(result, REFUSED.id)
    assert old_id in refused.detail and "PrivateLink" in refused.detail


def expires_in(rt: Runtime, hours: float) -> None:
    """moto leaves ExpirationTime out; EC2 sets it 7 days after the request."""

    def add(parsed: dict[str, Any], **_: Any) -> None:
        for p in parsed.get("VpcPeeringConnections", []):
            p["ExpirationTime"] = datetime.now(UTC) + timedelta(hours=hours)

    hook(rt, "after-call.ec2.DescribeVpcPeeringConnections", add)


def test_an_unknown_request_is_rejected_after_the_configured_delay(aws: None) -> None:
    ours = our_vpc()
    pcx = request(ours["vpc"], account=STRANGER)
    rt = runtime(reject_unlisted_after_hours=48)
    expires_in(rt, hours=24 * 7 - 50)  # waited 50 h

    result = run(rt)

    assert status(pcx) == "rejected"
    assert [(r.change, r.undo) for r in records(rt).records] == [(REJECTED.id, None)]
    assert [f.check_id for f in result.findings] == [REJECTED.id]  # pending, unlisted resolve


def test_a_request_close_to_expiry_is_warned_again_at_high_severity(aws: None) -> None:
    ours = our_vpc()
    request(ours["vpc"], account=STRANGER)
    rt = runtime(reject_unlisted_after_hours=0)
    expires_in(rt, hours=20)

    result = run(rt)

    [pending] = by_check(result, "peering.pending_acceptance")
    assert pending.severity.value == "high" and "expires at" in pending.detail
    assert result.changes == 0


# -- rails --------------------------------------------------------------------------------------


def test_dry_run_changes_nothing_and_reports_the_exact_calls(aws: None) -> None:
    ours = our_vpc()
    pcx = request(ours["vpc"])
    rt = runtime(mode="dry-run", accept_dns=True)
    calls = mutating_calls(rt)
    answered = answer_dry_run_like_ec2(rt)

    result = run(rt)

    assert status(pcx) == "pending-acceptance"
    assert peer_routes(ours["tagged"]) == set()
    assert calls == [("AcceptVpcPeeringConnection", True)]  # nothing without DryRun
    assert answered == ["AcceptVpcPeeringConnection"]
    [report] = by_check(result, DRY_RUN.id)
    assert (
        f"aws ec2 accept-vpc-peering-connection --vpc-peering-connection-id {pcx}" in report.detail
    )
    assert (
        f"aws ec2 create-route --route-table-id {ours['tagged']} --destination-cidr-block "
        f"10.9.0.0/16 --vpc-peering-connection-id {pcx}" in report.detail
    )
    assert "modify-vpc-peering-connection-options" in report.detail
    assert result.changes == 0


def test_an_endpoint_that_ignores_dry_run_is_reported_loudly(aws: None) -> None:
    ours = our_vpc()
    request(ours["vpc"])

    result = run(runtime(mode="dry-run"))  # moto 5.2.5 accepts despite DryRun=True

    [report] = by_check(result, DRY_RUN.id)
    if result.outcomes[0].error_code != "DryRunIgnored":
        pytest.skip("this moto honours DryRun on AcceptVpcPeeringConnection")
    assert report.severity.value == "high" and "ignored DryRun" in report.detail


def test_the_change_cap_holds_and_an_acceptance_is_never_left_half_done(aws: None) -> None:
    ours = our_vpc()
    first = request(ours["vpc"], cidr="10.8.0.0/16")
    second = request(ours["vpc"], cidr="10.9.0.0/16")

    result = run(runtime(max_changes=3))  # each acceptance is 2 changes: accept + 1 route

    assert result.changes == 2
    assert sorted(status(p) for p in (first, second)) == ["active", "pending-acceptance"]
    [held] = by_check(result, DEFERRED.id)
    assert "2 of its 2 changes not made yet: change cap reached (3 per run)" in held.detail


def tag_our_view_of(rt: Runtime, pcx: str, key: str, value: str) -> None:
    """The accepter's own tag on the pcx. moto stores it but leaves it out of describe when
    the pcx was created by another account; EC2 returns it to the account that tagged it."""
    account_ec2(US).create_tags(Resources=[pcx], Tags=[{"Key": key, "Value": value}])

    def add(parsed: dict[str, Any], **_: Any) -> None:
        for p in parsed.get("VpcPeeringConnections", []):
            if p["VpcPeeringConnectionId"] == pcx:
                p["Tags"] = [*p.get("Tags", []), {"Key": key, "Value": value}]

    hook(rt, "after-call.ec2.DescribeVpcPeeringConnections", add)


@pytest.mark.parametrize("where", ["vpc", "pcx"])
def test_the_ignore_tag_means_hands_off(aws: None, where: str) -> None:
    ours = our_vpc(tags={"peerguard:ignore": "true"} if where == "vpc" else None)
    pcx = request(ours["vpc"])
    rt = runtime()
    if where == "pcx":
        tag_our_view_of(rt, pcx, "peerguard:ignore", "true")

    result = run(rt)

    assert status(pcx) == "pending-acceptance"
    assert result.verdicts[0].action == "skip" and result.changes == 0


def test_a_request_accepted_meanwhile_is_not_accepted_again(aws: None) -> None:
    ours = our_vpc()
    pcx = request(ours["vpc"])
    rt = runtime()

    def someone_accepts_first(**_: Any) -> None:
        if status(pcx) == "pending-acceptance":  # once, between the listing and the accept
            account_ec2(US).accept_vpc_peering_connection(VpcPeeringConnectionId=pcx)

    hook(rt, "before-call.ec2.DescribeRouteTables", someone_accepts_first)  # after the listing
    result = run(rt)

    assert [o.status.value for o in result.outcomes] == ["skipped", "skipped"]  # accept, route
    assert "no longer pending (status active)" in result.outcomes[0].message


# -- failures ---------------------------------------------------------------------------------


def test_access_denied_on_accept_is_a_finding_not_a_crash(aws: None) -> None:
    ours = our_vpc()
    pcx = request(ours["vpc"])
    rt = runtime()
    hook(
        rt,
        "before-call.ec2.AcceptVpcPeeringConnection",
        lambda **_: error_response("UnauthorizedOperation", 403),
    )

    result = run(rt)
    recorder = records(rt)

    assert status(pcx) == "pending-acceptance"
    [failed] = by_check(result, FAILED.id)
    assert failed.severity.value == "high"
    assert "ec2:AcceptVpcPeeringConnection was denied (UnauthorizedOperation)" in failed.detail
    assert failed.remediation is not None and not failed.remediation.automatic
    assert [r.result for r in recorder.records] == ["failed: UnauthorizedOperation"]
    assert by_check(result, "peering.pending_acceptance")  # still waiting: still alerted


def test_access_denied_on_create_route_is_a_finding_after_a_real_accept(aws: None) -> None:
    ours = our_vpc()
    pcx = request(ours["vpc"])
    rt = runtime()
    hook(
        rt, "before-call.ec2.CreateRoute", lambda **_: error_response("UnauthorizedOperation", 403)
    )

    result = run(rt)

    assert status(pcx) == "active"
    [failed] = by_check(result, FAILED.id)
    assert failed.resource_id == ours["tagged"]
    assert "ec2:CreateRoute was denied" in failed.detail
    assert f"--route-table-id {ours['tagged']}" in failed.detail
    assert by_check(result, ACCEPTED.id)


def test_an_existing_route_counts_as_done(aws: None) -> None:
    ours = our_vpc()
    pcx = request(ours["vpc"])
    rt = runtime()
    hook(rt, "before-call.ec2.CreateRoute", lambda **_: error_response("RouteAlreadyExists"))

    run(rt)

    assert status(pcx) == "active"
    results = [r.result for r in records(rt).records]
    # RouteAlreadyExists counts as done only when the live state shows the route: here the
    # hook answered for a route that is not there, so it is a failure, not "done".
    assert results == ["applied", "failed: RouteAlreadyExists"]


# -- allowlist from SSM ----------------------------------------------------------------------


def put_allowlist(value: str) -> str:
    name = "/peerguard/allowlist"
    boto3.client("ssm", region_name=HOME).put_parameter(
        Name=name, Value=value, Type="String", Overwrite=True
    )
    return name


def test_the_ssm_allowlist_narrows_by_cidr(aws: None) -> None:
    ours = our_vpc()
    wide = request(ours["vpc"], cidr="10.9.0.0/16")
    name = put_allowlist(f'[{{"account_id": "{PARTNER}", "cidrs": ["10.9.0.0/16"]}}]')

    result = run(runtime(allowlist="", allowlist_parameter=name))

    assert status(wide) == "active" and result.allowlist_error == ""


def test_a_bad_ssm_allowlist_alerts_and_never_accepts(aws: None) -> None:
    ours = our_vpc()
    pcx = request(ours["vpc"])
    name = put_allowlist('[{"account_id": "1111"}]')

    result = run(runtime(allowlist="", allowlist_parameter=name))

    assert status(pcx) == "pending-acceptance" and result.changes == 0
    assert result.allowlist_error == (
        f"allowlist parameter {name} is invalid: "
        "allowlist entry 0 account_id: '1111' is not a 12-digit account id"
    )
    [invalid] = by_check(result, ALLOWLIST_INVALID.id)
    assert invalid.severity.value == "high" and invalid.resource_id == name
    assert by_check(result, "peering.pending_acceptance")


def test_a_missing_ssm_allowlist_is_one_clear_error(aws: None) -> None:
    ours = our_vpc()
    pcx = request(ours["vpc"])

    result = run(runtime(allowlist="", allowlist_parameter="/peerguard/nowhere"))

    assert status(pcx) == "pending-acceptance"
    assert result.allowlist_error.startswith(
        "allowlist parameter /peerguard/nowhere could not be read (ParameterNotFound"
    )
