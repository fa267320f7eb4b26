"""Planning the security-group and flow-log fixes (pure): the exact revoke and its undo, the
rails, the re-check on live state; and the never-widen property over random rule sets."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerguard.aws import parse
from peerguard.domain.catalogue import entry
from peerguard.domain.checks import CheckContext
from peerguard.domain.findings import Call, Finding
from peerguard.domain.model import IGNORE_TAG, SecurityGroupRule, Snapshot
from peerguard.domain.paths import ingress_allows
from peerguard.domain.plans.actions import Action, Mode, achieved, ignored_resources, state_touched
from peerguard.domain.plans.rails import NEW_FLOW_LOG_ID, refusal, undo_call
from peerguard.domain.plans.remediation import RemediationConfig, plan, plan_all
from tests.unit.netbuilder import OTHER_ACCOUNT, Net, run

FIX = RemediationConfig(default_mode=Mode.FIX)
CTX = CheckContext()
GROUP = "sg-app"


def world_open() -> tuple[Net, str]:
    """web (peered with db) has sg-app: ssh from the world (with a description) and https
    from the world (fine)."""
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    db = net.vpc("db", "10.1.0.0/16")
    net.peer_routed(web, db)
    net.group(web, "app")
    ssh = net.ingress(GROUP, "0.0.0.0/0", "tcp", (22, 22), description="temporary, ops")
    net.ingress(GROUP, "0.0.0.0/0", "tcp", (443, 443))
    return net, ssh


def the_finding(check_id: str, snap: Snapshot, ctx: CheckContext = CTX) -> Finding:
    (f,) = run(check_id, snap, ctx)
    return f


def planned(check_id: str, snap: Snapshot, ctx: CheckContext = CTX) -> Action:
    action = plan(the_finding(check_id, snap, ctx), snap, FIX, ctx)
    assert action is not None
    return action


# -- the revoke ---------------------------------------------------------------------------------


def test_open_to_world_plans_the_revoke_of_that_rule_with_its_exact_undo() -> None:
    net, ssh = world_open()
    snap = net.snapshot()

    a = planned("sg.open_to_world", snap)

    assert a.automatic and not a.refused and a.reason == ""
    assert a.call == Call(
        "RevokeSecurityGroupIngress", {"GroupId": GROUP, "SecurityGroupRuleIds": [ssh]}
    )
    assert a.undo == Call(
        "AuthorizeSecurityGroupIngress",
        {
            "GroupId": GROUP,
            "IpPermissions": [
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "temporary, ops"}],
                }
            ],
        },
    )
    assert a.before == {"rule": snap.security_groups[GROUP].rule(ssh).model_dump()}  # type: ignore[index,union-attr]
    assert a.reread.security_group_ids == {GROUP}
    assert a.recheck(snap).go


def test_the_undo_of_a_reference_names_the_other_account() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    net.group(web, "app")
    rule = net.ingress(GROUP, "sg-theirs", "tcp", (443, 443), owner=OTHER_ACCOUNT, vpc="vpc-x")
    undo = undo_call(
        Call("RevokeSecurityGroupIngress", {"GroupId": GROUP, "SecurityGroupRuleIds": [rule]}),
        net.snapshot(),
    )
    assert undo is not None
    assert undo.parameters["IpPermissions"][0]["UserIdGroupPairs"] == [
        {"GroupId": "sg-theirs", "UserId": OTHER_ACCOUNT}
    ]


def test_a_rule_modified_in_place_since_the_audit_is_left_alone() -> None:
    net, ssh = world_open()
    a = planned("sg.open_to_world", net.snapshot())
    # Someone widens the same rule (same id) to 3389 as well: still world-open, still the
    # same finding and call, but not the rule that was audited.
    g = net.groups[GROUP]  # type: ignore[index]
    changed = tuple(
        r.model_copy(update={"to_port": 3389}) if r.rule_id == ssh else r for r in g.rules
    )
    net.groups[GROUP] = g.model_copy(update={"rules": changed})  # type: ignore[index]

    verdict = a.recheck(net.snapshot())

    assert not verdict.go and "no longer as audited" in verdict.reason


def test_a_rule_gone_since_the_audit_is_already_resolved() -> None:
    net, ssh = world_open()
    a = planned("sg.open_to_world", net.snapshot())
    g = net.groups[GROUP]  # type: ignore[index]
    net.groups[GROUP] = g.model_copy(  # type: ignore[index]
        update={"rules": tuple(r for r in g.rules if r.rule_id != ssh)}
    )
    verdict = a.recheck(net.snapshot())
    assert not verdict.go and "already resolved" in verdict.reason


def test_a_stale_reference_plans_the_revoke_of_that_rule() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    db = net.vpc("db", "10.1.0.0/16")
    net.peer_routed(web, db, status="deleted")
    net.group(web, "app")
    stale = net.ingress(GROUP, net.group(db, "db"), "tcp", (5432, 5432), vpc=db)
    a = planned("sg.stale_peer_reference", net.snapshot())
    assert a.automatic and a.call.parameters == {"GroupId": GROUP, "SecurityGroupRuleIds": [stale]}


def test_peer_rules_are_never_revoked_automatically() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    db = net.vpc("db", "10.1.0.0/16")
    net.peer_routed(web, db)
    net.group(web, "app")
    net.ingress(GROUP, "10.1.0.0/16")
    snap = net.snapshot()
    a = planned("sg.peer_all_traffic", snap)
    assert not a.automatic and "left to a person" in a.reason
    # ... and the rail would refuse that revoke even if a plan asked for it
    assert "neither open to the internet nor a reference" in (refusal(a.call, snap) or "")


def test_the_revoke_rail_names_exactly_one_ingress_rule_of_one_of_this_accounts_groups() -> None:
    net, ssh = world_open()
    https = net.groups[GROUP].rules[1].rule_id  # type: ignore[index]
    out = net.egress(GROUP, "0.0.0.0/0")
    net.group("vpc-web", "theirs", owner=OTHER_ACCOUNT)
    theirs = net.ingress("sg-theirs", "0.0.0.0/0", "tcp", (22, 22))
    snap = net.snapshot()

    def refused(**params: object) -> str:
        return refusal(Call("RevokeSecurityGroupIngress", params), snap) or ""

    assert refused(GroupId=GROUP, SecurityGroupRuleIds=[ssh]) == ""
    assert "exactly one" in refused(GroupId=GROUP, SecurityGroupRuleIds=[ssh, https])
    assert "exactly one" in refused(GroupId=GROUP)  # the whole group: never
    assert "exactly one" in refused(GroupId=GROUP, IpPermissions=[{"IpProtocol": "-1"}])
    assert "egress" in refused(GroupId=GROUP, SecurityGroupRuleIds=[out])
    assert "belongs to account" in refused(GroupId="sg-theirs", SecurityGroupRuleIds=[theirs])
    assert "has no rule" in refused(GroupId=GROUP, SecurityGroupRuleIds=["sgr-nope"])
    assert "was not read" in refused(GroupId="sg-nope", SecurityGroupRuleIds=[ssh])


def test_the_ignore_tag_on_the_group_or_its_vpc_means_hands_off() -> None:
    net, ssh = world_open()
    net.groups[GROUP] = net.groups[GROUP].model_copy(update={"tags": {IGNORE_TAG: "true"}})  # type: ignore[index]
    a = planned("sg.open_to_world", net.snapshot())
    assert a.ignored and not a.automatic and GROUP in a.reason

    net, _ = world_open()
    snap = net.snapshot()
    vpc = snap.vpcs["vpc-web"].model_copy(update={"tags": {IGNORE_TAG: "True"}})
    snap = snap.model_copy(update={"vpcs": {**snap.vpcs, "vpc-web": vpc}})
    call = Call("RevokeSecurityGroupIngress", {"GroupId": GROUP, "SecurityGroupRuleIds": [ssh]})
    assert ignored_resources(call, snap) == ["vpc-web"]


def test_state_and_achieved_follow_the_rule() -> None:
    net, ssh = world_open()
    call = Call("RevokeSecurityGroupIngress", {"GroupId": GROUP, "SecurityGroupRuleIds": [ssh]})
    before = net.snapshot()
    assert state_touched(before, call)["rule"]["rule_id"] == ssh
    assert not achieved(call, before)
    g = net.groups[GROUP]  # type: ignore[index]
    net.groups[GROUP] = g.model_copy(update={"rules": g.rules[1:]})  # type: ignore[index]
    assert state_touched(net.snapshot(), call) == {"rule": None}
    assert achieved(call, net.snapshot())


# -- the flow log -------------------------------------------------------------------------------


def unlogged() -> Net:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    db = net.vpc("db", "10.1.0.0/16")
    net.peer_routed(web, db)
    net.flow_log(db)
    return net


STACK = CheckContext(flow_log_group="/peerguard/s/vpc-flow-logs", flow_log_role_arn="arn:r")


def test_a_missing_flow_log_is_created_only_to_the_stacks_log_group() -> None:
    net = unlogged()
    snap = net.snapshot()

    without = planned("flowlogs.disabled", snap)
    assert not without.automatic and "FixFlowLogs" in without.reason

    a = planned("flowlogs.disabled", snap, STACK)
    assert a.automatic and a.call.action == "CreateFlowLogs"
    assert a.call.parameters["LogGroupName"] == STACK.flow_log_group
    assert a.undo == Call("DeleteFlowLogs", {"FlowLogIds": [NEW_FLOW_LOG_ID]})
    assert not achieved(a.call, snap)
    net.flow_log("vpc-web")
    assert achieved(a.call, net.snapshot())


def test_the_flow_log_rail_allows_one_all_traffic_vpc_log_of_a_peered_unlogged_vpc() -> None:
    snap = unlogged().snapshot()
    ok = planned("flowlogs.disabled", snap, STACK).call
    assert refusal(ok, snap) is None

    def with_(**changes: object) -> str:
        return refusal(Call("CreateFlowLogs", {**ok.parameters, **changes}), snap) or ""

    assert "one ALL-traffic VPC flow log" in with_(TrafficType="REJECT")
    assert "one ALL-traffic VPC flow log" in with_(ResourceIds=["vpc-web", "vpc-db"])
    assert "one ALL-traffic VPC flow log" in with_(LogFormat="${srcaddr}")
    assert "already has a flow log" in with_(ResourceIds=["vpc-db"])
    assert "was not read" in with_(ResourceIds=["vpc-nope"])


# -- never widen ----------------------------------------------------------------------------

SOURCES = [
    "0.0.0.0/0",
    "::/0",
    "10.1.0.0/16",  # the live peer
    "10.1.7.0/24",
    "10.0.0.0/8",
    "203.0.113.0/24",
    "sg-local",  # a group of web
    "sg-peer",  # a group of db (live peering)
    "sg-dead",  # a group of old (its peering is deleted)
    "sg-gone",  # no longer exists
]
PROBE_SOURCES = [
    "203.0.113.9",
    "10.1.7.7",
    "10.1.200.1",
    "10.99.0.1",
    "2600::1",
    "sg-local",
    "sg-peer",
    "sg-dead",
    "sg-gone",
]
PROBE_PORTS = [(6, 22), (6, 443), (6, 3389), (6, 5432), (6, 40000), (17, 53), (17, 3389), (1, None)]


@st.composite
def rule_sets(draw: st.DrawFn) -> list[tuple[str, str, tuple[int, int] | None]]:
    rules = []
    for _ in range(draw(st.integers(1, 12))):
        source = draw(st.sampled_from(SOURCES))
        proto = draw(st.sampled_from(["-1", "tcp", "udp", "icmp"]))
        ports = None
        if proto in ("tcp", "udp"):
            lo = draw(st.integers(0, 65535))
            ports = (
                lo,
                draw(st.integers(lo, min(65535, lo + draw(st.sampled_from([0, 10, 5000, 65535]))))),
            )
        elif proto == "icmp":
            ports = (-1, -1)
        rules.append((source, proto, ports))
    return rules


def reachable(rules: tuple[SecurityGroupRule, ...]) -> set[tuple[str, int, int | None]]:
    return {
        (src, proto, port)
        for src in PROBE_SOURCES
        for proto, port in PROBE_PORTS
        if ingress_allows(
            rules,
            src if src.startswith("sg-") else f"{src}/{128 if ':' in src else 32}",
            proto,
            port,
        )
    }


def apply(snap: Snapshot, calls: list[Call]) -> Snapshot:
    """What EC2 would do with these calls to the groups (the test's own tiny EC2)."""
    groups = dict(snap.security_groups or {})
    for call in calls:
        g = groups[call.parameters["GroupId"]]
        if call.action == "RevokeSecurityGroupIngress":
            gone = set(call.parameters["SecurityGroupRuleIds"])
            rules = tuple(r for r in g.rules if r.rule_id not in gone)
        else:
            assert call.action == "AuthorizeSecurityGroupIngress", call
            added = [
                r.model_copy(update={"rule_id": f"sgr-new-{i}"})
                for i, perm in enumerate(call.parameters["IpPermissions"])
                for r in parse.permission_rules(g.group_id, perm, egress=False)
            ]
            rules = (*g.rules, *added)
        groups[g.group_id] = g.model_copy(update={"rules": rules})
    return snap.model_copy(update={"security_groups": groups})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule_sets())
def test_applying_the_plan_never_makes_anything_reachable_that_was_not(
    drawn: list[tuple[str, str, tuple[int, int] | None]],
) -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    db = net.vpc("db", "10.1.0.0/16")
    old = net.vpc("old", "10.2.0.0/16")
    net.peer_routed(web, db)
    net.peer_routed(web, old, status="deleted")
    net.group(web, "app")
    net.group(web, "local")
    net.group(db, "peer")
    net.group(old, "dead")
    for source, proto, ports in drawn:
        vpc = {"sg-peer": db, "sg-dead": old}.get(source)
        net.ingress(GROUP, source, proto, ports, vpc=vpc)
    snap = net.snapshot()
    before = snap.security_groups[GROUP].rules  # type: ignore[index]

    findings = [f for c in ("sg.open_to_world", "sg.stale_peer_reference") for f in run(c, snap)]
    actions = [a for a in plan_all(findings, snap, FIX, CTX) if a.automatic]
    assert all(refusal(a.call, snap) is None for a in actions)
    after_snap = apply(snap, [a.call for a in actions])
    after = after_snap.security_groups[GROUP].rules  # type: ignore[index]

    # Never widens: what can get in after is a subset of what could before
    assert reachable(after) <= reachable(before)
    # Exactly the offending rules went: each named by a finding; every sibling is intact
    revoked = {r.rule_id for r in before} - {r.rule_id for r in after}
    assert revoked == {f.extra["rule_id"] for f in findings}
    assert all(r in before for r in after)
    assert set(after_snap.security_groups) == set(snap.security_groups)  # type: ignore[arg-type]
    # No world-open admin/database rule and no stale reference is left
    assert [
        f for c in ("sg.open_to_world", "sg.stale_peer_reference") for f in run(c, after_snap)
    ] == []
    # And the undo calls give back exactly what was reachable
    undone = apply(after_snap, [a.undo for a in actions if a.undo is not None])
    assert reachable(undone.security_groups[GROUP].rules) == reachable(before)  # type: ignore[index]


def test_a_finding_of_every_fixable_check_has_an_undo() -> None:
    # The planner refuses a fix without an undo; these are the three new fixable checks.
    for check_id in ("sg.open_to_world", "sg.stale_peer_reference", "flowlogs.disabled"):
        assert entry(check_id).automatic_fix
