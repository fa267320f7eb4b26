"""The never-widen rail: every EC2 change PeerGuard can make, and why a given one must not be
made. Pure. Planners check it when they plan, the executor again on the live state.

The operations here are the only ones PeerGuard ever calls to change anything;
template.yaml grants exactly these (a test keeps the two equal).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from peerguard.domain.checks.routes import route_conflicts, table_owner
from peerguard.domain.checks.security_groups import ip_permission
from peerguard.domain.findings import Call
from peerguard.domain.model import (
    ACTIVE,
    DEAD_STATES,
    PEER_ROUTES_TAG,
    PENDING_ACCEPTANCE,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    Snapshot,
    is_world,
    overlaps,
    within,
)
from peerguard.domain.plans.actions import DNS_OPTION, destination

Rail = Callable[[Call, Snapshot], "str | None"]


def refusal(call: Call, snap: Snapshot) -> str | None:
    """Why `call` must not be made automatically, or None when it only restores or narrows."""
    rail = RAILS.get(call.action)
    if rail is None:
        return f"{call.action} is not a change PeerGuard makes automatically"
    return rail(call, snap)


def foreign(resource_id: str, owner: str) -> str:
    """Why a change in another account is refused (the far side of a peering, read through
    the member role: PeerGuard reads there, never writes)."""
    return f"{resource_id} belongs to account {owner}: PeerGuard never changes another account"


def _create_route(call: Call, snap: Snapshot) -> str | None:
    p = call.parameters
    dest = destination(call)
    if dest is None or set(p) != {"RouteTableId", "VpcPeeringConnectionId", dest[0]}:
        return "CreateRoute must name exactly a table, one CIDR destination and a peering"
    rt = snap.route_tables.get(str(p["RouteTableId"]))
    if rt is None:
        return f"route table {p['RouteTableId']} was not read"
    if table_owner(snap, rt) != snap.account_id:
        return foreign(rt.route_table_id, table_owner(snap, rt))
    pcx = snap.peerings.get(str(p["VpcPeeringConnectionId"]))
    if pcx is None or pcx.status != ACTIVE:
        return f"{p['VpcPeeringConnectionId']} is not an active peering"
    if pcx.side_of(rt.vpc_id) is None:
        return f"{pcx.pcx_id} does not connect {rt.vpc_id}"
    peer_blocks = snap.peer_cidrs(pcx, rt.vpc_id)
    if not any(within(dest[1], c) for c in peer_blocks):
        return (
            f"{dest[1]} is not inside the peer VPC's CIDR blocks "
            f"({', '.join(peer_blocks) or 'unknown'})"
        )
    # A return route restores symmetry only if the other side already routes here; a table
    # the operator tagged for peer routes consents to routes for accepted peerings.
    tagged = rt.tags.get(PEER_ROUTES_TAG, "").lower() == "true"
    if not tagged and not _forward_route_exists(
        snap, pcx.other(rt.vpc_id).vpc_id, rt.vpc_id, pcx.pcx_id
    ):
        return f"no route of the peer VPC uses {pcx.pcx_id} towards {rt.vpc_id}"
    clash = conflicts(rt, dest[1], pcx.pcx_id)
    if clash:
        return f"the table already routes overlapping destinations elsewhere ({clash})"
    return None


def conflicts(rt: RouteTable, dest: str, pcx_id: str) -> str:
    """Routes of `rt` whose traffic a new route would take, as text ('' if none)."""
    return ", ".join(
        f"{r.destination} -> {r.target}" for r in rt.routes if route_conflicts(r, dest, pcx_id)
    )


def _forward_route_exists(snap: Snapshot, peer_vpc_id: str, vpc_id: str, pcx_id: str) -> bool:
    """Some table of the peer VPC already sends traffic for `vpc_id` through `pcx_id`."""
    ours = snap.vpcs.get(vpc_id)
    blocks = ours.all_cidrs if ours else ()
    return any(
        r.target == pcx_id and r.is_cidr and any(overlaps(r.destination, b) for b in blocks)
        for rt in snap.tables_in(peer_vpc_id)
        for r in rt.routes
    )


def _delete_route(call: Call, snap: Snapshot) -> str | None:
    p = call.parameters
    dest = destination(call)
    if dest is None or set(p) != {"RouteTableId", dest[0]}:
        return "DeleteRoute must name exactly a table and one CIDR destination"
    rt = snap.route_tables.get(str(p["RouteTableId"]))
    if rt is None:
        return f"route table {p['RouteTableId']} was not read"
    if table_owner(snap, rt) != snap.account_id:
        return foreign(rt.route_table_id, table_owner(snap, rt))
    route = next((r for r in rt.routes if r.destination == dest[1]), None)
    if route is None or route.peering_id is None:
        return f"{rt.route_table_id} has no peering route to {dest[1]}"
    pcx = snap.peerings.get(route.target)
    region = snap.region_of(rt.vpc_id)
    if pcx is None and (region, "peerings") in snap.partial:
        return f"{route.target} could not be looked up"
    if pcx is not None and pcx.status not in DEAD_STATES and route.state != "blackhole":
        return f"{route.target} is {pcx.status}: the route still carries traffic"
    return None


def _dns_option(call: Call, snap: Snapshot) -> str | None:
    p = dict(call.parameters)
    pcx = snap.peerings.get(str(p.pop("VpcPeeringConnectionId", "")))
    if pcx is None or pcx.status != ACTIVE:
        return "the peering is not active"
    if len(p) != 1:
        return "exactly one side's options may be changed"
    ((key, options),) = p.items()
    side = {
        "RequesterPeeringConnectionOptions": pcx.requester,
        "AccepterPeeringConnectionOptions": pcx.accepter,
    }.get(key)
    if side is None or options != {DNS_OPTION: True}:
        return f"only {DNS_OPTION}=true may be set"
    if side.owner_id != snap.account_id:
        return f"that side of {pcx.pcx_id} belongs to account {side.owner_id}"
    return None


def _pending_request(call: Call, snap: Snapshot) -> str | None:
    """Accept and reject: only a request waiting for this account. (Whether to accept is the
    allowlist's verdict, re-made by the acceptance planner on the same live state.)"""
    p = call.parameters
    if set(p) != {"VpcPeeringConnectionId"}:
        return f"{call.action} must name exactly one peering connection"
    pcx = snap.peerings.get(str(p["VpcPeeringConnectionId"]))
    if pcx is None:
        return f"{p['VpcPeeringConnectionId']} was not found"
    if pcx.status != PENDING_ACCEPTANCE:
        return f"{pcx.pcx_id} is {pcx.status}, not pending acceptance"
    if pcx.accepter.owner_id != snap.account_id:
        return f"{pcx.pcx_id} waits for account {pcx.accepter.owner_id}, not this one"
    return None


def _revoke_ingress(call: Call, snap: Snapshot) -> str | None:
    """Exactly one ingress rule of one of this account's groups, named by its rule id, and
    only a rule open to the internet or referencing another VPC's group. (Revoking only ever
    narrows: security groups have no deny rules for a revoke to unmask.)"""
    p = call.parameters
    ids = p.get("SecurityGroupRuleIds")
    if set(p) != {"GroupId", "SecurityGroupRuleIds"} or not isinstance(ids, list) or len(ids) != 1:
        return "RevokeSecurityGroupIngress must name exactly one group and one rule id"
    group = (snap.security_groups or {}).get(str(p["GroupId"]))
    if group is None:
        return f"security group {p['GroupId']} was not read"
    if group.owner_id != snap.account_id:
        return f"{group.group_id} belongs to account {group.owner_id}"
    rule = group.rule(str(ids[0]))
    if rule is None:
        return f"{group.group_id} has no rule {ids[0]}"
    if rule.egress:
        return f"{rule.rule_id} is an egress rule"
    if is_world(rule.cidr) or _references_another_vpc(snap, group, rule):
        return None
    return (
        f"{rule.rule_id} is neither open to the internet nor a reference to another VPC's "
        "group: PeerGuard does not revoke it"
    )


def _references_another_vpc(snap: Snapshot, group: SecurityGroup, rule: SecurityGroupRule) -> bool:
    if rule.referenced_group_id is None:
        return False
    return (rule.referenced_vpc_id or snap.group_vpc(rule.referenced_group_id)) != group.vpc_id


FLOW_LOG_PARAMETERS = frozenset(
    {
        "ResourceIds",
        "ResourceType",
        "TrafficType",
        "LogDestinationType",
        "LogGroupName",
        "DeliverLogsPermissionArn",
    }
)


def _create_flow_log(call: Call, snap: Snapshot) -> str | None:
    """One ALL-traffic flow log on one peered VPC of this account that records none, to a
    CloudWatch Logs group. (A flow log opens no path: it only records.)"""
    p = call.parameters
    ids = p.get("ResourceIds")
    if (
        set(p) != FLOW_LOG_PARAMETERS
        or (p["ResourceType"], p["TrafficType"], p["LogDestinationType"])
        != ("VPC", "ALL", "cloud-watch-logs")
        or not isinstance(ids, list)
        or len(ids) != 1
    ):
        return "CreateFlowLogs must create one ALL-traffic VPC flow log to a CloudWatch Logs group"
    vpc = snap.vpcs.get(str(ids[0]))
    if vpc is None:
        return f"{ids[0]} was not read"
    if vpc.owner_id != snap.account_id:
        return f"{vpc.vpc_id} belongs to account {vpc.owner_id}"
    if not snap.active_peers(vpc.vpc_id):
        return f"{vpc.vpc_id} has no active peering"
    if any(fl.captures_all for fl in snap.flow_logs_on(vpc.vpc_id)):
        return f"{vpc.vpc_id} already has a flow log recording ALL traffic"
    return None


RAILS: dict[str, Rail] = {
    "CreateRoute": _create_route,
    "DeleteRoute": _delete_route,
    "ModifyVpcPeeringConnectionOptions": _dns_option,
    "AcceptVpcPeeringConnection": _pending_request,
    "RejectVpcPeeringConnection": _pending_request,
    "RevokeSecurityGroupIngress": _revoke_ingress,
    "CreateFlowLogs": _create_flow_log,
}
# The id a flow log gets is known only once it is created: the undo planned before the call
# says so, and the executor replaces it with the real one (`undo_from_response`).
NEW_FLOW_LOG_ID = "<the id CreateFlowLogs returns>"
# Every change PeerGuard can make (template.yaml grants exactly these, per feature).
IAM_ACTIONS = tuple(f"ec2:{op}" for op in RAILS)


def undo_call(call: Call, snap: Snapshot) -> Call | None:
    """The call that reverts `call` (DeleteRoute's undo re-creates the old target)."""
    p = call.parameters
    dest = destination(call)
    if call.action == "CreateRoute" and dest:
        return Call(
            action="DeleteRoute", parameters={"RouteTableId": p["RouteTableId"], dest[0]: dest[1]}
        )
    if call.action == "DeleteRoute" and dest:
        rt = snap.route_tables.get(str(p["RouteTableId"]))
        route = next((r for r in rt.routes if r.destination == dest[1]), None) if rt else None
        if route is None:
            return None
        return Call(
            action="CreateRoute",
            parameters={
                "RouteTableId": p["RouteTableId"],
                dest[0]: dest[1],
                "VpcPeeringConnectionId": route.target,
            },
        )
    if call.action == "ModifyVpcPeeringConnectionOptions":
        key = next((k for k in p if k != "VpcPeeringConnectionId"), None)
        if key is None:
            return None
        return Call(
            action=call.action,
            parameters={
                "VpcPeeringConnectionId": p["VpcPeeringConnectionId"],
                key: {DNS_OPTION: False},
            },
        )
    if call.action == "AcceptVpcPeeringConnection":
        # An accepted peering is undone by deleting it (either side may).
        return Call(action="DeleteVpcPeeringConnection", parameters=dict(p))
    if call.action == "RevokeSecurityGroupIngress":
        # The exact rule again (description included); it gets a new rule id.
        group = (snap.security_groups or {}).get(str(p.get("GroupId", "")))
        ids = p.get("SecurityGroupRuleIds") or []
        rule = group.rule(str(ids[0])) if group is not None and len(ids) == 1 else None
        if group is None or rule is None:
            return None
        return Call(
            action="AuthorizeSecurityGroupIngress",
            parameters={"GroupId": group.group_id, "IpPermissions": [ip_permission(group, rule)]},
        )
    if call.action == "CreateFlowLogs":
        return Call(action="DeleteFlowLogs", parameters={"FlowLogIds": [NEW_FLOW_LOG_ID]})
    return None  # a rejected request cannot be un-rejected: the requester asks again


def undo_from_response(call: Call, response: dict[str, Any]) -> Call | None:
    """The undo, once the call's answer names what it created (None: the planned one)."""
    if call.action == "CreateFlowLogs" and response.get("FlowLogIds"):
        return Call(
            action="DeleteFlowLogs", parameters={"FlowLogIds": list(response["FlowLogIds"])}
        )
    return None


def failure_in_response(call: Call, response: dict[str, Any]) -> tuple[str, str] | None:
    """(code, message) when a call answered 200 but did not do it: CreateFlowLogs reports
    per-resource failures in `Unsuccessful`."""
    for item in response.get("Unsuccessful") or []:
        err = item.get("Error") or {}
        code = str(err.get("Code") or "Unsuccessful")
        return code, f"{item.get('ResourceId', '')}: {err.get('Message', '')}".strip(": ")
    return None
