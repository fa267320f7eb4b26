"""Security groups, network ACLs and flow logs against moto: the reader (full and scoped,
filters, faults), the checks on a planted account, and the fixes through the one executor.

What moto cannot produce is injected on its real clients with botocore event hooks:
AccessDenied, a second page, a rule referencing another account's group (moto refuses
those), and DescribeStaleSecurityGroups (moto does not implement it) answered with the
shape of AWS's recorded example (../shared/realdata/ec2-api-responses).
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from peerguard.aws.clients import Clients
from peerguard.aws.executor import Executor
from peerguard.domain.checks import CheckContext, resolve
from peerguard.domain.findings import Call
from peerguard.domain.model import IGNORE_TAG
from peerguard.domain.plans.actions import Mode, Status
from peerguard.domain.plans.remediation import RemediationConfig, plan_all
from peerguard.domain.scope import Scope
from peerguard.state.changes import MemoryRecorder
from peerguard.usecases.pipeline import AuditResult, audit
from tests.integration import awsnet, securenet
from tests.integration.securenet import World, found, rule_ids
from tests.integration.test_reader_faults import _Raw, deny

EAST = "us-east-1"
PEER_ACCOUNT = "210987654321"
FIX = RemediationConfig(default_mode=Mode.FIX, max_changes=10)


def run_audit(clients: Clients, scope: Scope | None = None, **ctx: Any) -> AuditResult:
    return audit(clients, [EAST], CheckContext(**ctx), resolve(None), scope)


@pytest.fixture
def world(ec2: Any) -> World:
    return securenet.build(ec2)


def answer(clients: Clients, operation: str, respond: Any) -> None:
    """Answer `operation` on the EC2 client with `respond(request)` instead of moto
    (`request`: the call's query parameters, e.g. {"VpcId": ..., "NextToken": ...})."""

    def hook(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = respond(params["body"])
        http = AWSResponse("https://ec2.us-east-1.amazonaws.com/", 200, {}, _Raw(b""))
        return http, {**body, "ResponseMetadata": {"HTTPStatusCode": 200}}

    clients.client("ec2", EAST).meta.events.register_first(f"before-call.ec2.{operation}", hook)


# -- the full audit ------------------------------------------------------------------------------


def test_a_full_audit_finds_every_planted_defect_and_nothing_on_the_clean_parts(
    world: World, clients: Clients
) -> None:
    result = run_audit(clients)

    assert found(result.findings) == world.expected
    assert result.warnings == ()
    snap = result.snapshot
    assert set(world.sg.values()) <= set(snap.security_groups or {})
    assert snap.security_groups[world.sg["web"]].rule(world.rule["ssh_world"]).description == (  # type: ignore[index,union-attr]
        "ops, temporary"
    )
    for name in ("DescribeSecurityGroups", "DescribeSecurityGroupRules", "DescribeNetworkAcls",
                 "DescribeFlowLogs"):  # fmt: skip
        assert clients.calls[f"ec2:{name}"] == 1
    # moto implements no DescribeStaleSecurityGroups, and nothing here needed it
    assert clients.calls["ec2:DescribeStaleSecurityGroups"] == 0


def test_every_rule_a_page_further_is_read(world: World, clients: Clients, ec2: Any) -> None:
    everything = ec2.describe_security_group_rules()["SecurityGroupRules"]
    half = len(everything) // 2

    asked: list[str | None] = []

    def pages(params: dict[str, Any]) -> dict[str, Any]:
        asked.append(params.get("NextToken"))
        if params.get("NextToken") == "page-2":
            return {"SecurityGroupRules": everything[half:]}
        return {"SecurityGroupRules": everything[:half], "NextToken": "page-2"}

    answer(clients, "DescribeSecurityGroupRules", pages)
    result = run_audit(clients)

    assert asked == [None, "page-2"]
    assert found(result.findings) == world.expected


# -- scoped reads --------------------------------------------------------------------------------


def test_a_security_group_change_reads_its_vpc_groups_and_peers_only(
    world: World, clients: Clients
) -> None:
    result = run_audit(clients, Scope(security_group_ids=frozenset({world.sg["web"]})))

    snap = result.snapshot
    app_groups = {g for g, v in (snap.known_groups or {}).items() if v == world.vpc["app"].vpc_id}
    assert set(snap.security_groups or {}) == app_groups  # the peers' groups are not read
    assert world.sg["redis"] not in (snap.security_groups or {})
    assert {world.vpc[n].vpc_id for n in ("app", "db", "cache")} <= set(snap.vpcs)
    # the groups of the VPC judged; ACLs and flow logs of every VPC read
    assert found(result.findings) == world.expected


def test_scoped_security_group_reads_cost_the_same_however_big_the_account(
    ec2: Any, clients: Clients
) -> None:
    w = securenet.build(ec2)
    scope = Scope(security_group_ids=frozenset({w.sg["web"]}))
    clients.account_id()
    small = run_audit(clients, scope)
    for i in range(15):  # unrelated peered pairs, each with groups of its own
        a, _, _ = awsnet.peered_pair(ec2, f"10.{20 + 2 * i}.0.0/16", f"10.{21 + 2 * i}.0.0/16")
        ec2.create_security_group(GroupName=f"g{i}", Description="x", VpcId=a.vpc_id)

    large = run_audit(clients, scope)

    assert large.api_calls == small.api_calls
    assert found(large.findings) == found(small.findings)


def test_an_acl_change_reads_the_acls_vpc_and_its_peers(world: World, clients: Clients) -> None:
    result = run_audit(clients, Scope(network_acl_ids=frozenset({world.acl["cache"]})))

    assert world.vpc["cache"].vpc_id in result.snapshot.vpcs
    nacl = {f for f in found(result.findings) if f[0] == "nacl.blocks_peer"}
    assert nacl == {e for e in world.expected if e[0] == "nacl.blocks_peer"}


def test_an_acl_id_that_is_gone_is_an_empty_scope_not_an_error(clients: Clients) -> None:
    result = run_audit(clients, Scope(network_acl_ids=frozenset({"acl-0123456789abcdef0"})))
    assert result.findings == [] and result.snapshot.vpcs == {}


def test_a_deleted_flow_log_is_judged_on_the_peered_vpcs_it_may_have_left_unlogged(
    world: World, clients: Clients, ec2: Any
) -> None:
    ec2.delete_flow_logs(FlowLogIds=[world.flow_log["app"]])  # DeleteFlowLogs names only this

    result = run_audit(clients, Scope(flow_log_ids=frozenset({world.flow_log["app"]})))

    flow = {f.resource_id for f in result.findings if f.check_id == "flowlogs.disabled"}
    assert flow == {world.vpc["app"].vpc_id, world.vpc["db"].vpc_id}


def test_a_created_flow_log_is_judged_on_its_vpc(world: World, clients: Clients, ec2: Any) -> None:
    logs = boto3.client("logs", region_name=EAST)
    logs.create_log_group(logGroupName="/db/all")
    fl = ec2.create_flow_logs(
        ResourceIds=[world.vpc["db"].vpc_id],
        ResourceType="VPC",
        TrafficType="ALL",  # db now records everything
        LogGroupName="/db/all",
        DeliverLogsPermissionArn=awsnet.FLOW_LOG_ROLE,
    )["FlowLogIds"][0]

    result = run_audit(clients, Scope(flow_log_ids=frozenset({fl})))

    assert world.vpc["db"].vpc_id in result.snapshot.vpcs
    assert not [f for f in result.findings if f.check_id == "flowlogs.disabled"]


# -- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "kind", "silenced"),
    [
        ("DescribeSecurityGroups", "security_groups", "sg."),
        ("DescribeNetworkAcls", "network_acls", "nacl."),
        ("DescribeFlowLogs", "flow_logs", "flowlogs."),
    ],
)
def test_a_denied_read_is_a_warning_and_its_checks_do_not_see_nothing_there(
    world: World, clients: Clients, operation: str, kind: str, silenced: str
) -> None:
    deny(clients, operation)

    result = run_audit(clients)

    assert result.warnings == (
        f"missing permission ec2:{operation} in us-east-1 (UnauthorizedOperation): "
        f"{kind} not checked there",
    )
    assert (EAST, kind) in result.snapshot.partial
    assert not [f for f in result.findings if f.check_id.startswith(silenced)]
    assert {e for e in world.expected if not e[0].startswith(silenced)} <= found(result.findings)
    assert result.coverage().regions == frozenset()  # nothing there may be resolved


def test_denied_rule_ids_fall_back_to_the_groups_permissions_reported_not_revoked(
    world: World, clients: Clients
) -> None:
    deny(clients, "DescribeSecurityGroupRules", code="AccessDenied")

    result = run_audit(clients)

    assert result.warnings == (
        "missing permission ec2:DescribeSecurityGroupRules in us-east-1 (AccessDenied): "
        "security group rules read without their ids, so none is revoked there",
    )
    sg = [f for f in result.findings if f.check_id.startswith("sg.")]
    assert {(f.check_id, f.resource_id) for f in sg} == {
        (c, r) for c, r, _ in world.expected if c.startswith("sg.")
    }
    assert all(f.extra["rule_id"] is None for f in sg)
    assert all(f.remediation is not None and not f.remediation.automatic for f in sg)


# -- another account's group, and EC2's stale list ------------------------------------------------


def foreign_reference(clients: Clients, group_id: str, rule_id: str) -> None:
    """DescribeSecurityGroupRules also lists a rule of `group_id` referencing a group of the
    peer account (moto refuses to create one)."""

    def add(parsed: dict[str, Any], **_: Any) -> None:
        if any(r["GroupId"] == group_id for r in parsed.get("SecurityGroupRules", [])):
            parsed["SecurityGroupRules"].append(
                {
                    "SecurityGroupRuleId": rule_id,
                    "GroupId": group_id,
                    "GroupOwnerId": "123456789012",
                    "IsEgress": False,
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "ReferencedGroupInfo": {"GroupId": "sg-279ab042", "UserId": PEER_ACCOUNT},
                }
            )

    clients.client("ec2", EAST).meta.events.register(
        "after-call.ec2.DescribeSecurityGroupRules", add
    )


# AWS's example answer (awscli__describe-stale-security-groups.rst), the second group's,
# with this test's ids: sg-5fa68d3a -> the app group, vpc-11223344 -> app's VPC.
STALE_EXAMPLE = {
    "StaleSecurityGroupSet": [
        {
            "VpcId": "vpc-11223344",
            "StaleIpPermissionsEgress": [],
            "GroupName": "MySG2",
            "StaleIpPermissions": [
                {
                    "ToPort": 22,
                    "FromPort": 22,
                    "UserIdGroupPairs": [
                        {
                            "VpcId": "vpc-7a20e51f",
                            "GroupId": "sg-279ab042",
                            "Description": "Access from pcx-b04deed9",
                            "VpcPeeringConnectionId": "pcx-b04deed9",
                            "PeeringStatus": "active",
                        }
                    ],
                    "IpProtocol": "tcp",
                }
            ],
            "GroupId": "sg-5fa68d3a",
            "Description": "MySG2",
        }
    ]
}


def test_ec2s_stale_list_is_asked_for_the_vpc_with_a_foreign_reference_only(
    world: World, clients: Clients
) -> None:
    foreign_reference(clients, world.sg["legacy"], "sgr-0foreign")
    asked: list[str] = []

    def stale(params: dict[str, Any]) -> dict[str, Any]:
        asked.append(params["VpcId"])
        body = copy.deepcopy(STALE_EXAMPLE)
        item = body["StaleSecurityGroupSet"][0]
        item["VpcId"], item["GroupId"] = world.vpc["app"].vpc_id, world.sg["legacy"]
        return body

    answer(clients, "DescribeStaleSecurityGroups", stale)

    result = run_audit(clients)

    assert asked == [world.vpc["app"].vpc_id]
    (f,) = [f for f in result.findings if f.extra.get("rule_id") == "sgr-0foreign"]
    assert (f.check_id, f.resource_id, f.peering_connection_id) == (
        "sg.stale_peer_reference",
        world.sg["legacy"],
        "pcx-b04deed9",
    )
    assert found(result.findings) - world.expected == {
        ("sg.stale_peer_reference", world.sg["legacy"], "sgr-0foreign")
    }


def test_an_endpoint_without_the_stale_call_leaves_the_foreign_reference_unjudged(
    world: World, clients: Clients
) -> None:
    foreign_reference(clients, world.sg["legacy"], "sgr-0foreign")

    result = run_audit(clients)  # moto: NotImplementedError for DescribeStaleSecurityGroups

    assert clients.calls["ec2:DescribeStaleSecurityGroups"] == 1
    assert result.warnings == ()
    assert found(result.findings) == world.expected  # the foreign rule: neither stale nor fine


# -- fixes ---------------------------------------------------------------------------------------


def fix(clients: Clients, result: AuditResult, ctx: CheckContext | None = None) -> Any:
    executor = Executor(clients, max_changes=10, regions=[EAST], recorder=MemoryRecorder())
    outcomes = executor.run_each(
        plan_all(result.findings, result.snapshot, FIX, ctx or CheckContext())
    )
    return executor.report(outcomes, Mode.FIX), executor.recorder


def all_rules(ec2: Any, w: World) -> dict[str, dict[str, Any]]:
    return {rid: r for g in w.sg.values() for rid, r in rule_ids(ec2, g).items()}


def test_fix_mode_revokes_exactly_the_offending_rules_with_their_undo(
    world: World, clients: Clients, ec2: Any
) -> None:
    before = all_rules(ec2, world)

    report, recorder = fix(clients, run_audit(clients))

    after = all_rules(ec2, world)
    assert set(before) - set(after) == world.revocable  # nothing else went
    assert all(after[r] == before[r] for r in after)  # siblings untouched
    assert {o.action.call.action for o in report.applied} == {"RevokeSecurityGroupIngress"}
    (ssh,) = [
        r
        for r in recorder.records
        if r.call["parameters"]["SecurityGroupRuleIds"] == [world.rule["ssh_world"]]
    ]  # type: ignore[attr-defined]
    assert ssh.result == "applied" and ssh.check_id == "sg.open_to_world"
    assert ssh.before is not None and ssh.before["rule"]["rule_id"] == world.rule["ssh_world"]
    assert ssh.after == {"rule": None}
    assert ssh.undo == {
        "action": "AuthorizeSecurityGroupIngress",
        "parameters": {
            "GroupId": world.sg["web"],
            "IpPermissions": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "ops, temporary"}],
                }
            ],
        },
    }
    # The rest is reported, not changed; and the re-audit has no fixable finding left
    left = found(run_audit(clients).findings)
    assert left == world.expected - {
        ("sg.open_to_world", world.sg["web"], world.rule["ssh_world"]),
        ("sg.stale_peer_reference", world.sg["legacy"], world.rule["stale_pg"]),
    }
    # The recorded undo restores the rule as it was (a new id, the same description)
    getattr(ec2, Call(**ssh.undo).method)(**ssh.undo["parameters"])
    restored = set(all_rules(ec2, world)) - set(after)
    ((rid, rule),) = [(r, all_rules(ec2, world)[r]) for r in restored]
    assert (rule["CidrIpv4"], rule["FromPort"], rule["Description"]) == (
        "0.0.0.0/0",
        22,
        "ops, temporary",
    )
    assert ("sg.open_to_world", world.sg["web"], rid) in found(run_audit(clients).findings)


def test_a_rule_modified_after_the_audit_is_left_alone(
    world: World, clients: Clients, ec2: Any
) -> None:
    audited = run_audit(clients)
    ec2.modify_security_group_rules(
        GroupId=world.sg["web"],
        SecurityGroupRules=[
            {
                "SecurityGroupRuleId": world.rule["ssh_world"],
                "SecurityGroupRule": {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 3389,  # still open to the world: the same finding, another rule
                    "CidrIpv4": "0.0.0.0/0",
                },
            }
        ],
    )

    report, _ = fix(clients, audited)

    (skipped,) = [
        o for o in report.skipped if o.finding.extra.get("rule_id") == world.rule["ssh_world"]
    ]
    assert "no longer as audited" in skipped.message
    assert world.rule["ssh_world"] in rule_ids(ec2, world.sg["web"])


def test_a_group_or_vpc_tagged_to_be_ignored_is_never_touched(
    world: World, clients: Clients, ec2: Any
) -> None:
    ec2.create_tags(Resources=[world.sg["web"]], Tags=[{"Key": IGNORE_TAG, "Value": "true"}])
    ec2.create_tags(
        Resources=[world.vpc["app"].vpc_id], Tags=[{"Key": IGNORE_TAG, "Value": "true"}]
    )
    before = all_rules(ec2, world)

    report, _ = fix(clients, run_audit(clients))

    assert all_rules(ec2, world) == before
    assert report.applied == []
    ignored = {o.finding.extra.get("rule_id") for o in report.skipped if "ignored" in o.message}
    assert world.revocable <= ignored


def test_a_rule_already_gone_when_revoked_counts_as_done(
    world: World, clients: Clients, ec2: Any
) -> None:
    audited = run_audit(clients)
    other = boto3.client("ec2", region_name=EAST)  # someone else, at the same moment

    def gone_meanwhile(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        query = params["body"]  # {"GroupId": ..., "SecurityGroupRuleId.1": ...}
        ids = [v for k, v in query.items() if k.startswith("SecurityGroupRuleId.")]
        other.revoke_security_group_ingress(GroupId=query["GroupId"], SecurityGroupRuleIds=ids)
        http = AWSResponse("https://ec2.us-east-1.amazonaws.com/", 400, {}, _Raw(b""))
        err = {"Code": "InvalidPermission.NotFound", "Message": "The rule does not exist"}
        return http, {"Error": err, "ResponseMetadata": {"HTTPStatusCode": 400}}

    clients.client("ec2", EAST).meta.events.register_first(
        "before-call.ec2.RevokeSecurityGroupIngress", gone_meanwhile
    )

    report, recorder = fix(clients, audited)

    fixed = [o for o in report.outcomes if o.action.automatic]
    assert [o.status for o in fixed] == [Status.APPLIED, Status.APPLIED]
    assert {r.result for r in recorder.records} == {"already done: InvalidPermission.NotFound"}
    assert not world.revocable & set(all_rules(ec2, world))


def test_a_missing_flow_log_is_created_to_the_stacks_group_with_its_real_undo(
    world: World, clients: Clients, ec2: Any
) -> None:
    logs = boto3.client("logs", region_name=EAST)
    logs.create_log_group(logGroupName="/peerguard/stack/vpc-flow-logs")
    ctx = CheckContext(
        flow_log_group="/peerguard/stack/vpc-flow-logs",
        flow_log_role_arn="arn:aws:iam::123456789012:role/peerguard-flow-logs",
    )
    audited = audit(clients, [EAST], ctx, resolve(["flowlogs.disabled"]))

    report, recorder = fix(clients, audited, ctx)

    (made,) = report.applied
    (record,) = recorder.records
    db = world.vpc["db"].vpc_id
    new = [
        fl
        for fl in ec2.describe_flow_logs(Filter=[{"Name": "resource-id", "Values": [db]}])[
            "FlowLogs"
        ]
        if fl["TrafficType"] == "ALL"
    ]
    assert [fl["LogGroupName"] for fl in new] == ["/peerguard/stack/vpc-flow-logs"]
    assert record.undo == {
        "action": "DeleteFlowLogs",
        "parameters": {"FlowLogIds": [new[0]["FlowLogId"]]},
    }
    assert made.action.call.parameters["ResourceIds"] == [db]
    assert audit(clients, [EAST], ctx, resolve(["flowlogs.disabled"])).findings == []


def test_without_a_destination_flow_logs_are_proposed_not_created(
    world: World, clients: Clients, ec2: Any
) -> None:
    before = len(ec2.describe_flow_logs()["FlowLogs"])
    report, _ = fix(clients, run_audit(clients))
    (proposed,) = [o for o in report.proposed if o.finding.check_id == "flowlogs.disabled"]
    assert "FixFlowLogs" in proposed.message
    assert len(ec2.describe_flow_logs()["FlowLogs"]) == before


def test_the_calls_a_full_audit_makes_do_not_grow_with_the_groups(
    ec2: Any, clients: Clients
) -> None:
    securenet.build(ec2)
    clients.account_id()
    small = run_audit(clients)
    vpc = awsnet.vpc(ec2, "10.50.0.0/16")
    for i in range(40):
        g = ec2.create_security_group(GroupName=f"x{i}", Description="x", VpcId=vpc.vpc_id)
        ec2.authorize_security_group_ingress(
            GroupId=g["GroupId"], IpPermissions=[securenet.tcp(443, "10.1.0.0/16")]
        )
    large = run_audit(clients)
    assert large.api_calls == small.api_calls
    assert Counter(clients.calls)["ec2:DescribeSecurityGroupRules"] == 2
