"""Plan remediation: finding + snapshot -> the exact EC2 calls and their undo. Pure.

Only three kinds of change are ever planned, and `refusal` re-checks each one against
the snapshot so that no plan widens access:
- CreateRoute of a destination inside the peer VPC's CIDR blocks, via the active peering
  the forward route already uses, in a table with no overlapping route elsewhere;
- DeleteRoute of a route whose peering is dead or gone;
- enabling AllowDnsResolutionFromRemoteVpc on this account's side of an active peering.
Everything else is notify-only: the proposed call is reported for a person to make.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from peerguard.checks.routes import route_conflicts
from peerguard.findings import Finding, Remediation
from peerguard.model import ACTIVE, DEAD_STATES, RouteTable, Snapshot, overlaps, within

ROUTE_MISSING = "route.missing_reciprocal"
ROUTE_BLACKHOLE = "route.blackhole"
DNS_DISABLED = "peering.dns_resolution_disabled"
FIXABLE = frozenset({ROUTE_MISSING, ROUTE_BLACKHOLE, DNS_DISABLED})

DNS_OPTION = "AllowDnsResolutionFromRemoteVpc"
_DEST_KWARGS = ("DestinationCidrBlock", "DestinationIpv6CidrBlock")


class Mode(StrEnum):
    NOTIFY = "notify"
    DRY_RUN = "dry-run"
    FIX = "fix"

    @classmethod
    def parse(cls, value: str) -> Mode:
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown mode {value!r} (expected one of: {names})") from None


@dataclass(frozen=True)
class RemediationConfig:
    """How far PeerGuard may go: a default mode (the stack's Mode), per-check overrides."""

    default_mode: Mode = Mode.NOTIFY
    overrides: Mapping[str, Mode] = field(default_factory=dict)
    fix_dns: bool = False  # enabling remote DNS resolution is opt-in
    max_changes: int = 10

    def __post_init__(self) -> None:
        if self.max_changes < 0:
            raise ValueError(f"max_changes must be 0 or more, not {self.max_changes}")

    def mode_for(self, check_id: str) -> Mode:
        return self.overrides.get(check_id, self.default_mode)

    @classmethod
    def build(
        cls,
        default_mode: str = "notify",
        overrides: Mapping[str, str] | None = None,
        known_checks: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> RemediationConfig:
        """From plain strings (settings, CLI); unknown modes or check ids name themselves."""
        known = set(known_checks) if known_checks is not None else None
        parsed: dict[str, Mode] = {}
        for check_id, mode in (overrides or {}).items():
            if known is not None and check_id not in known:
                raise ValueError(f"unknown check id {check_id!r} in remediation mode overrides")
            parsed[check_id] = Mode.parse(mode)
        return cls(default_mode=Mode.parse(default_mode), overrides=parsed, **kwargs)


@dataclass(frozen=True)
class Call:
    """One EC2 API call, exactly as boto3 takes it (without DryRun)."""

    operation: str  # e.g. CreateRoute
    parameters: Mapping[str, Any]

    @property
    def method(self) -> str:
        """The boto3 client method name: CreateRoute -> create_route."""
        return "".join("_" + c.lower() if c.isupper() else c for c in self.operation).lstrip("_")

    def to_json(self) -> dict[str, Any]:
        return {"operation": self.operation, "parameters": dict(self.parameters)}

    def key(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True)

    def cli(self) -> str:
        """The same call as an AWS CLI command line, for people to copy."""
        return Remediation(action=self.operation, parameters=dict(self.parameters)).cli()

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.parameters.items())
        return f"{self.operation}({args})"


@dataclass(frozen=True)
class Action:
    """What PeerGuard intends for one finding.

    `call` is None when nothing can be proposed. `automatic` is True only when the call
    passed every planning rail; otherwise `reason` says why it is left to a person.
    """

    finding: Finding
    mode: Mode
    call: Call | None
    undo: Call | None = None
    automatic: bool = False
    reason: str = ""
    ignored: bool = False  # a resource carries peerguard:ignore=true
    refused: bool = False  # the call would widen access or is not one PeerGuard makes
    before: Mapping[str, Any] | None = None  # the route or option the call changes

    @property
    def region(self) -> str:
        return self.finding.region

    @property
    def route_table_id(self) -> str | None:
        return self.call.parameters.get("RouteTableId") if self.call else None

    @property
    def peering_id(self) -> str | None:
        if self.call and "VpcPeeringConnectionId" in self.call.parameters:
            return str(self.call.parameters["VpcPeeringConnectionId"])
        return self.finding.peering_connection_id

    def same_change(self, other: Action) -> bool:
        return self.automatic == other.automatic and (self.call.key() if self.call else None) == (
            other.call.key() if other.call else None
        )


def plan_all(
    findings: Iterable[Finding], snap: Snapshot, config: RemediationConfig
) -> list[Action]:
    out: list[Action] = []
    for f in findings:
        out.extend(plan(f, snap, config))
    return out


def plan(finding: Finding, snap: Snapshot, config: RemediationConfig) -> list[Action]:
    """The actions for one finding: none when it proposes nothing, else one."""
    mode = config.mode_for(finding.check_id)
    rem = finding.remediation
    if rem is None:
        return []
    call = Call(rem.action, dict(rem.parameters))
    if finding.check_id not in FIXABLE:
        why = rem.reason or f"{finding.check_id} is never fixed automatically"
        return [Action(finding, mode, call, reason=why)]
    ignored = _ignored_resources(finding, call, snap)
    if ignored:
        why = f"ignored: {', '.join(ignored)} tagged peerguard:ignore=true"
        return [Action(finding, mode, call, reason=why, ignored=True)]
    if not rem.automatic:  # e.g. a return route that would conflict: a person decides
        return [Action(finding, mode, call, reason=rem.reason or "not automatic")]
    if finding.check_id == DNS_DISABLED and not config.fix_dns:
        return [Action(finding, mode, call, reason="DNS option fixes are off (fix_dns)")]
    refused = refusal(call, snap)
    if refused:
        return [Action(finding, mode, call, reason=f"refused: {refused}", refused=True)]
    undo = undo_call(call, snap)
    if undo is None:
        why = "refused: no undo call can be derived"
        return [Action(finding, mode, call, reason=why, refused=True)]
    return [Action(finding, mode, call, undo, automatic=True, before=state_touched(snap, call))]


def _ignored_resources(finding: Finding, call: Call, snap: Snapshot) -> list[str]:
    out = []
    rt = snap.route_tables.get(str(call.parameters.get("RouteTableId", "")))
    vpc_id = rt.vpc_id if rt else finding.vpc_id
    vpc = snap.vpcs.get(vpc_id or "")
    if vpc is not None and vpc.ignored:
        out.append(vpc.vpc_id)
    if rt is not None and rt.ignored:
        out.append(rt.route_table_id)
    pcx_ids = {call.parameters.get("VpcPeeringConnectionId"), finding.peering_connection_id}
    for pcx_id in sorted(p for p in pcx_ids if p):
        pcx = snap.peerings.get(pcx_id)
        if pcx is not None and pcx.ignored:
            out.append(pcx_id)
    return out


# -- the never-widen rail -------------------------------------------------------------


def refusal(call: Call, snap: Snapshot) -> str | None:
    """Why `call` must not be made automatically, or None when it only restores or narrows."""
    rail = _RAILS.get(call.operation)
    if rail is None:
        return f"{call.operation} is not a change PeerGuard makes automatically"
    return rail(call, snap)


def _destination(call: Call) -> tuple[str, str] | None:
    kwargs = [k for k in _DEST_KWARGS if k in call.parameters]
    if len(kwargs) != 1:
        return None
    return kwargs[0], str(call.parameters[kwargs[0]])


def _refuse_create_route(call: Call, snap: Snapshot) -> str | None:
    p = call.parameters
    dest = _destination(call)
    if dest is None or set(p) != {"RouteTableId", "VpcPeeringConnectionId", dest[0]}:
        return "CreateRoute must name exactly a table, one CIDR destination and a peering"
    destination = dest[1]
    rt = snap.route_tables.get(str(p["RouteTableId"]))
    if rt is None:
        return f"route table {p['RouteTableId']} was not read"
    pcx = snap.peerings.get(str(p["VpcPeeringConnectionId"]))
    if pcx is None or pcx.status != ACTIVE:
        return f"{p['VpcPeeringConnectionId']} is not an active peering"
    if pcx.side_of(rt.vpc_id) is None:
        return f"{pcx.pcx_id} does not connect {rt.vpc_id}"
    peer_blocks = snap.peer_cidrs(pcx, rt.vpc_id)
    if not any(within(destination, c) for c in peer_blocks):
        return (
            f"{destination} is not inside the peer VPC's CIDR blocks "
            f"({', '.join(peer_blocks) or 'unknown'})"
        )
    if not _forward_route_exists(snap, pcx.other(rt.vpc_id).vpc_id, rt.vpc_id, pcx.pcx_id):
        return f"no route of the peer VPC uses {pcx.pcx_id} towards {rt.vpc_id}"
    clash = conflicts(rt, destination, pcx.pcx_id)
    if clash:
        return f"the table already routes overlapping destinations elsewhere ({clash})"
    return None


def conflicts(rt: RouteTable, destination: str, pcx_id: str) -> str:
    """Routes of `rt` whose traffic a new route would take, as text ('' if none).

    The same rule as the check's own proposal (a default route to the internet is not a
    conflict: the return route is meant to win over it).
    """
    return ", ".join(
        f"{r.destination} -> {r.target}"
        for r in rt.routes
        if route_conflicts(r, destination, pcx_id)
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


def _refuse_delete_route(call: Call, snap: Snapshot) -> str | None:
    p = call.parameters
    dest = _destination(call)
    if dest is None or set(p) != {"RouteTableId", dest[0]}:
        return "DeleteRoute must name exactly a table and one CIDR destination"
    rt = snap.route_tables.get(str(p["RouteTableId"]))
    if rt is None:
        return f"route table {p['RouteTableId']} was not read"
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


def _refuse_dns_option(call: Call, snap: Snapshot) -> str | None:
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


# -- undo ------------------------------------------------------------------------------


def undo_call(call: Call, snap: Snapshot) -> Call | None:
    """The call that reverts `call`: DeleteRoute's undo re-creates the old target."""
    p = call.parameters
    dest = _destination(call)
    if call.operation == "CreateRoute" and dest:
        return Call("DeleteRoute", {"RouteTableId": p["RouteTableId"], dest[0]: dest[1]})
    if call.operation == "DeleteRoute" and dest:
        rt = snap.route_tables.get(str(p["RouteTableId"]))
        route = next((r for r in rt.routes if r.destination == dest[1]), None) if rt else None
        if route is None:
            return None
        return Call(
            "CreateRoute",
            {
                "RouteTableId": p["RouteTableId"],
                dest[0]: dest[1],
                "VpcPeeringConnectionId": route.target,
            },
        )
    if call.operation == "ModifyVpcPeeringConnectionOptions":
        key = next((k for k in p if k != "VpcPeeringConnectionId"), None)
        if key is None:
            return None
        return Call(
            call.operation,
            {"VpcPeeringConnectionId": p["VpcPeeringConnectionId"], key: {DNS_OPTION: False}},
        )
    return None


def state_touched(snap: Snapshot, call: Call) -> dict[str, Any]:
    """The state a call touches, as read in `snap` (for before/after records)."""
    p = call.parameters
    if call.operation in ("CreateRoute", "DeleteRoute"):
        dest = _destination(call)
        rt = snap.route_tables.get(str(p.get("RouteTableId", "")))
        route = (
            next((r for r in rt.routes if dest and r.destination == dest[1]), None) if rt else None
        )
        return {"route": route.model_dump() if route else None}
    if call.operation == "ModifyVpcPeeringConnectionOptions":
        pcx = snap.peerings.get(str(p.get("VpcPeeringConnectionId", "")))
        key = next((k for k in p if k != "VpcPeeringConnectionId"), "")
        side = None
        if pcx is not None:
            side = pcx.requester if key.startswith("Requester") else pcx.accepter
        return {key: {DNS_OPTION: side.allow_dns_from_remote if side else None}}
    return {}


# The only operations remediation ever makes, each with its rail (and the IAM actions
# template.yaml grants in fix mode: a test keeps the two equal).
_RAILS = {
    "CreateRoute": _refuse_create_route,
    "DeleteRoute": _refuse_delete_route,
    "ModifyVpcPeeringConnectionOptions": _refuse_dns_option,
}
IAM_ACTIONS = tuple(f"ec2:{op}" for op in _RAILS)
