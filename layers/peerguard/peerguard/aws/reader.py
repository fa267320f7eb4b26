"""Read the live network into a Snapshot: a full region, or just what a change touched.

Every describe call is paginated, and every server-side filter is applied again in code
(moto, and some EC2 filters, return more than asked). A call that is denied becomes a
warning naming the missing permission and marks that part of the snapshot partial; the
rest of the audit still runs.

Besides VPCs, subnets, route tables and peerings: network ACLs and flow logs of every VPC
read; security groups with their rules (by rule id) of the VPCs a change touched (of every
VPC in a full read), every group of this account those rules reference, and
DescribeStaleSecurityGroups for the VPCs whose rules reference another account's groups
(the one case the snapshot cannot judge by itself; endpoints that do not implement the
call are simply not asked again). DescribeNetworkInterfaces is not called by the audits:
no check needs to know which instances use a group, and its cost grows with the instances
of the account. Only `peerguard path` reads interfaces, and only those of the two ends it
is asked about (`Reader.interfaces`).

With a member role (`MemberAccess`), the far side of each active cross-account peering is
read too, in its own account and region: the peer VPCs only (their subnets, route tables,
ACLs, flow logs and security groups), the same calls for every far account whatever its
size. A far side that cannot be assumed, or not read in full, is left out whole (its
checks judge nothing rather than half of it), and the Snapshot says why in `unread`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from peerguard import clock
from peerguard.aws import parse
from peerguard.aws.clients import Clients
from peerguard.aws.members import OFF, MemberAccess
from peerguard.domain.model import (
    ACTIVE,
    PENDING_ACCEPTANCE,
    FlowLog,
    NetworkAcl,
    NetworkInterface,
    PeeringConnection,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    Snapshot,
    StaleReference,
    Subnet,
    Vpc,
    span,
)
from peerguard.domain.scope import Scope

DENIED = frozenset(
    {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure"}
)
# What an endpoint answers for a call it does not implement (LocalStack, older emulators).
NOT_IMPLEMENTED = frozenset({"InvalidAction", "NotImplemented", "UnsupportedOperation"})
MAX_FILTER_VALUES = 200  # EC2 limit on values per filter
_PEERING_SIDES = ("RequesterVpcInfo", "AccepterVpcInfo")

# Every EC2 call the readers make, for the IAM policy test.
READ_ACTIONS = (
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeVpcAttribute",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeStaleSecurityGroups",
    "ec2:DescribeNetworkAcls",
    "ec2:DescribeFlowLogs",
)

# What `peerguard path` reads besides a full snapshot (the CLI only: no function calls it,
# so the template grants it to none). Instances are found by their interfaces
# (attachment.instance-id), so ec2:DescribeInstances is not needed.
PATH_READ_ACTIONS = ("ec2:DescribeNetworkInterfaces",)


@dataclass
class _Region:
    """What one region's reads produced (of another account: `account` and its `clients`)."""

    region: str
    account: str = ""
    clients: Clients | None = None
    vpcs: dict[str, Vpc] = field(default_factory=dict)
    subnets: dict[str, Subnet] = field(default_factory=dict)
    tables: dict[str, RouteTable] = field(default_factory=dict)
    peerings: dict[str, PeeringConnection] = field(default_factory=dict)
    groups: dict[str, SecurityGroup] = field(default_factory=dict)
    known_groups: dict[str, str] = field(default_factory=dict)
    stale: list[StaleReference] = field(default_factory=list)
    acls: dict[str, NetworkAcl] = field(default_factory=dict)
    flow_logs: dict[str, FlowLog] = field(default_factory=dict)
    partial: set[tuple[str, str]] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)


class Reader:
    def __init__(
        self,
        clients: Clients,
        account_id: str | None = None,
        members: MemberAccess | None = None,
    ) -> None:
        self.clients = clients
        self.account_id = account_id or clients.account_id()
        self.members = members

    # -- public -------------------------------------------------------------

    def full(self, regions: Iterable[str]) -> Snapshot:
        """Everything of the given regions: VPCs, subnets, route tables, peerings, security
        groups and their rules, network ACLs and flow logs."""
        parts = []
        for region in regions:
            r = _Region(region)
            r.vpcs = self._vpcs(r, None)
            r.subnets = self._subnets(r, None)
            r.tables = self._tables(r, None)
            r.peerings = self._peerings(r, None, None)
            r.acls = self._acls(r, None)
            r.flow_logs = self._flow_logs(r, None)
            self._groups(r, None)
            parts.append(r)
        peerings = {k: v for p in parts for k, v in p.peerings.items()}
        far, unread = self._far_sides(parts, peerings)
        return self._snapshot(parts + far, unread)

    def scoped(self, region: str, scope: Scope, regions: Iterable[str] = ()) -> Snapshot:
        """Only the VPCs a change touched, their peerings and the VPCs on the other side.

        The number of calls depends on the scope, not on the size of the account.
        `regions` are other regions of this account that may be read for cross-region peers.
        """
        r = _Region(region)
        vpc_ids = set(scope.vpc_ids)
        subnet_ids = set(scope.subnet_ids)
        if scope.route_table_ids:
            found = self._tables(r, {"route-table-id": scope.route_table_ids})
            vpc_ids |= {t.vpc_id for t in found.values()}
        if scope.security_group_ids:
            vpc_ids |= set(self._lookup_groups(r, scope.security_group_ids).values())
        if scope.network_acl_ids:
            vpc_ids |= {a.vpc_id for a in self._acls_by_id(r, scope.network_acl_ids).values()}
        unlogged: set[str] = set()
        if scope.flow_log_ids:
            logs = self._flow_logs(r, {"flow-log-id": scope.flow_log_ids})
            for fl in logs.values():
                if fl.resource_id.startswith("vpc-"):
                    vpc_ids.add(fl.resource_id)
                elif fl.resource_id.startswith("subnet-"):
                    subnet_ids.add(fl.resource_id)
            if set(scope.flow_log_ids) - set(logs):
                unlogged = self._unlogged_peered_vpcs(r)  # deleted: whose was it?
        if subnet_ids:
            subs = self._subnets(r, {"subnet-id": subnet_ids})
            vpc_ids |= {s.vpc_id for s in subs.values()}
        peerings: dict[str, PeeringConnection] = {}
        if scope.peering_ids:
            peerings |= self._peerings(r, scope.peering_ids, None)
        for p in peerings.values():
            vpc_ids |= {p.requester.vpc_id, p.accepter.vpc_id}
        if vpc_ids | unlogged:
            peerings |= self._peerings(r, None, vpc_ids | unlogged)
        parts = [r]
        touched = set(vpc_ids)  # their security groups are read too
        by_region = self._own_vpcs_by_region(peerings.values(), vpc_ids | unlogged, region)
        other_regions = set(regions) - {region}
        for reg, ids in sorted(by_region.items()):
            if reg == region:
                self._read_vpcs(r, ids, touched)
            elif reg in other_regions:
                other = _Region(reg)
                self._read_vpcs(other, ids, touched)
                parts.append(other)
        # Routes may point at peerings outside the scope: read those to judge them.
        referenced = {
            route.target
            for part in parts
            for t in part.tables.values()
            for route in t.routes
            if route.peering_id
        } - set(peerings)
        if referenced:
            peerings |= self._peerings(r, frozenset(referenced), None)
        r.peerings = peerings
        far, unread = self._far_sides(parts, peerings)
        return self._snapshot(parts + far, unread)

    def interfaces(
        self,
        regions: Iterable[str],
        *,
        eni_ids: Iterable[str] = (),
        instance_ids: Iterable[str] = (),
        addresses: Iterable[str] = (),
    ) -> tuple[dict[str, NetworkInterface], list[str]]:
        """The interfaces with these ids, attached to these instances, or holding these
        private addresses, in each region; and warnings for regions where they could not
        be read. Three filtered requests at most per region: the cost is the ends', not the
        account's."""
        flt = {
            name: set(values)
            for name, values in (
                ("network-interface-id", eni_ids),
                ("attachment.instance-id", instance_ids),
                ("addresses.private-ip-address", addresses),
            )
            if values
        }
        out: dict[str, NetworkInterface] = {}
        warnings: list[str] = []
        if not flt:
            return out, warnings
        for region in regions:
            r = _Region(region)
            items = self._paginate(
                r,
                "network_interfaces",
                "describe_network_interfaces",
                "NetworkInterfaces",
                flt,
                consequence="interfaces (and their security groups) not known there",
            )
            for eni in (parse.network_interface(i, region) for i in items):
                if (
                    eni.eni_id in flt.get("network-interface-id", ())
                    or eni.instance_id in flt.get("attachment.instance-id", ())
                    or set(eni.private_ips) & flt.get("addresses.private-ip-address", set())
                ):
                    out[eni.eni_id] = eni
            warnings += r.warnings
        return out, warnings

    def locate(
        self, regions: Iterable[str], subnet_ids: Iterable[str], addresses: Iterable[str]
    ) -> tuple[dict[str, set[str]], list[str]]:
        """region -> the subnets among `subnet_ids`, or holding one of `addresses`; and
        warnings. One DescribeSubnets per region (filtered by id when no address is asked
        for: EC2 has no filter for "contains this address")."""
        wanted, spans = set(subnet_ids), [span(f"{a}/{32 if '.' in a else 128}") for a in addresses]
        out: dict[str, set[str]] = {}
        warnings: list[str] = []
        if not wanted and not spans:
            return out, warnings
        for region in regions:
            r = _Region(region)
            flt = None if spans else {"subnet-id": wanted}
            for s in self._subnets(r, flt).values():
                if s.subnet_id in wanted or any(
                    a.within(span(c)) for a in spans for c in s.all_cidrs
                ):
                    out.setdefault(region, set()).add(s.subnet_id)
            warnings += r.warnings
        return out, warnings

    def pending_requests(
        self, regions: Iterable[str], pcx_ids: frozenset[str] | None = None
    ) -> tuple[list[PeeringConnection], list[str], list[str]]:
        """Requests pending acceptance by this account, each seen from its accepter's region.

        Returns (requests, regions listed in full, warnings). Filters are applied again in code.
        """
        found: dict[str, PeeringConnection] = {}
        listed, warnings = [], []
        flt: dict[str, Iterable[str]] = {
            "status-code": [PENDING_ACCEPTANCE],
            "accepter-vpc-info.owner-id": [self.account_id],
        }
        if pcx_ids:
            flt["vpc-peering-connection-id"] = pcx_ids
        for region in regions:
            r = _Region(region)
            items = list(
                self._paginate(
                    r,
                    "peerings",
                    "describe_vpc_peering_connections",
                    "VpcPeeringConnections",
                    flt,
                    combine=True,
                )
            )
            if r.partial:
                warnings += [
                    w.replace("not checked there", "requests there not checked") for w in r.warnings
                ]
                continue
            listed.append(region)
            for item in items:
                p = parse.peering(item, region)
                if (
                    p.status == PENDING_ACCEPTANCE
                    and p.accepter.owner_id == self.account_id
                    and p.accepter.region == region
                    and (pcx_ids is None or p.pcx_id in pcx_ids)
                ):
                    found[p.pcx_id] = p
        return sorted(found.values(), key=lambda p: p.pcx_id), listed, warnings

    # -- the far sides ----------------------------------------------------------

    def _far_sides(
        self, parts: list[_Region], peerings: Mapping[str, PeeringConnection]
    ) -> tuple[list[_Region], dict[str, str]]:
        """The other sides of this account's active peerings that were not read: read each
        (account, region) once through the member role; say why where that cannot be."""
        read = {(p.account or self.account_id, p.region) for p in parts}
        wanted: dict[tuple[str, str], set[str]] = {}
        for pcx in peerings.values():
            if pcx.status != ACTIVE or not any(
                (s.owner_id, s.region) in read and s.owner_id == self.account_id for s in pcx.sides
            ):
                continue
            for side in pcx.sides:
                if (side.owner_id, side.region) not in read:
                    wanted.setdefault((side.owner_id, side.region), set()).add(side.vpc_id)
        far: list[_Region] = []
        unread: dict[str, str] = {}
        for (owner, region), ids in sorted(wanted.items()):
            where = f"{owner}/{region}"
            if owner == self.account_id:
                unread[where] = f"region {region} is not among the regions read (PeerRegions)"
                continue
            if self.members is None:
                unread[owner] = OFF
                continue
            clients, why = self.members.clients_for(owner)
            if clients is None:
                unread[owner] = why
                continue
            r = _Region(region, account=owner, clients=clients)
            try:
                self._read_vpcs(r, ids, ids)
            except (ClientError, BotoCoreError) as e:
                code = (
                    e.response.get("Error", {}).get("Code", "")
                    if isinstance(e, ClientError)
                    else ""
                )
                unread[where] = f"reading it through the member role failed ({code or e})"
                continue
            if r.partial:  # the member role lacks a call: judge none of it rather than half
                unread[where] = "the member role could not read it all: " + "; ".join(r.warnings)
                continue
            if not ids <= set(r.vpcs):
                missing = ", ".join(sorted(ids - set(r.vpcs)))
                unread[where] = f"{missing} not found in account {owner}, region {region}"
                continue
            far.append(r)
        return far, unread

    # -- reads ----------------------------------------------------------------

    def _own_vpcs_by_region(
        self, peerings: Iterable[PeeringConnection], vpc_ids: set[str], home: str
    ) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {home: set(vpc_ids)}
        for p in peerings:
            for side in p.sides:
                if side.owner_id == self.account_id:
                    out.setdefault(side.region, set()).add(side.vpc_id)
        return out

    def _read_vpcs(self, r: _Region, ids: set[str], touched: set[str]) -> None:
        """The VPCs `ids` in full (their security groups only for those in `touched`)."""
        if not ids:
            return
        r.vpcs |= self._vpcs(r, ids)
        subs = self._subnets(r, {"vpc-id": ids})
        r.subnets |= subs
        r.tables |= self._tables(r, {"vpc-id": ids})
        r.acls |= self._acls(r, {"vpc-id": ids})
        r.flow_logs |= self._flow_logs(r, {"resource-id": ids | set(subs)})
        self._groups(r, ids & touched)

    def _paginate(
        self,
        r: _Region,
        kind: str,
        op: str,
        key: str,
        filters: Mapping[str, Iterable[str]] | None,
        combine: bool = False,
        params: Mapping[str, Any] | None = None,
        filter_arg: str = "Filters",
        consequence: str = "",
    ) -> Iterator[dict[str, Any]]:
        """Every item of a describe call. Filters of different names are separate requests
        (their union), unless `combine` asks for one request matching all of them.
        `filter_arg`: DescribeFlowLogs calls its filters `Filter`."""
        ec2 = (r.clients or self.clients).client("ec2", r.region)
        batches: list[list[dict[str, Any]]] = [[]]
        if filters and combine:
            batches = [[{"Name": n, "Values": sorted(v)} for n, v in filters.items()]]
        elif filters:
            batches = []
            for name, values in filters.items():
                vals = sorted(values)
                for i in range(0, len(vals), MAX_FILTER_VALUES):
                    batches.append([{"Name": name, "Values": vals[i : i + MAX_FILTER_VALUES]}])
        try:
            for flt in batches:
                kwargs: dict[str, Any] = {**(params or {}), **({filter_arg: flt} if flt else {})}
                for page in ec2.get_paginator(op).paginate(**kwargs):
                    yield from page.get(key, [])
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code not in DENIED:
                raise
            action = "ec2:" + "".join(w.capitalize() for w in op.split("_"))
            r.partial.add((r.region, kind))
            r.warnings.append(
                f"missing permission {action} in {r.region} ({code}): "
                f"{consequence or kind + ' not checked there'}"
            )

    def _vpcs(self, r: _Region, ids: set[str] | None) -> dict[str, Vpc]:
        flt = {"vpc-id": ids} if ids else None
        items = self._paginate(r, "vpcs", "describe_vpcs", "Vpcs", flt)
        return {
            v.vpc_id: v for v in (parse.vpc(i, r.region) for i in items) if _keep(v.vpc_id, ids)
        }

    def _subnets(self, r: _Region, flt: Mapping[str, Iterable[str]] | None) -> dict[str, Subnet]:
        items = self._paginate(r, "subnets", "describe_subnets", "Subnets", flt)
        match = _matcher(flt)
        subs = (
            parse.subnet(i)
            for i in items
            if match({"subnet-id": i["SubnetId"], "vpc-id": i["VpcId"]})
        )
        return {s.subnet_id: s for s in subs}

    def _tables(self, r: _Region, flt: Mapping[str, Iterable[str]] | None) -> dict[str, RouteTable]:
        items = self._paginate(r, "route_tables", "describe_route_tables", "RouteTables", flt)
        match = _matcher(flt)
        tables = (
            parse.route_table(i)
            for i in items
            if match({"route-table-id": i["RouteTableId"], "vpc-id": i["VpcId"]})
        )
        return {t.route_table_id: t for t in tables}

    def _peerings(
        self, r: _Region, ids: frozenset[str] | None, vpc_ids: set[str] | None
    ) -> dict[str, PeeringConnection]:
        flt: Mapping[str, Iterable[str]] | None = None
        if ids:
            flt = {"vpc-peering-connection-id": ids}
        elif vpc_ids:
            flt = {"requester-vpc-info.vpc-id": vpc_ids, "accepter-vpc-info.vpc-id": vpc_ids}
        items = self._paginate(
            r, "peerings", "describe_vpc_peering_connections", "VpcPeeringConnections", flt
        )
        out = {}
        for item in items:  # filtered before parsing: what is dropped costs nothing
            pcx_id = item["VpcPeeringConnectionId"]
            if ids and pcx_id not in ids:
                continue
            sides = {(item.get(k) or {}).get("VpcId", "") for k in _PEERING_SIDES}
            if vpc_ids and not sides & vpc_ids:
                continue
            out[pcx_id] = parse.peering(item, r.region)
        return out

    # -- security groups, network ACLs, flow logs --------------------------------------

    def _lookup_groups(self, r: _Region, ids: Iterable[str]) -> dict[str, str]:
        """group id -> VPC id of the groups that exist among `ids` (remembered as known)."""
        wanted = set(ids)
        items = self._paginate(
            r, "security_groups", "describe_security_groups", "SecurityGroups", {"group-id": wanted}
        )
        found = {i["GroupId"]: i.get("VpcId", "") for i in items if i["GroupId"] in wanted}
        r.known_groups |= found
        return found

    def _groups(self, r: _Region, vpc_ids: set[str] | None) -> None:
        """The security groups of `vpc_ids` (None: of the region) with their rules; then what
        judging their references needs: every group of this account they reference, and
        EC2's list of stale references where another account's group is referenced."""
        if vpc_ids is not None and not vpc_ids:
            return
        flt = None if vpc_ids is None else {"vpc-id": vpc_ids}
        denied_before = (r.region, "security_groups") in r.partial
        items = [
            i
            for i in self._paginate(
                r, "security_groups", "describe_security_groups", "SecurityGroups", flt
            )
            if vpc_ids is None or i.get("VpcId") in vpc_ids
        ]
        if not denied_before and (r.region, "security_groups") in r.partial:
            return
        rules = self._rules(r, None if vpc_ids is None else {i["GroupId"] for i in items})
        new = [
            parse.security_group(
                i, r.region, None if rules is None else rules.get(i["GroupId"], [])
            )
            for i in items
        ]
        for g in new:
            r.groups[g.group_id] = g
            r.known_groups[g.group_id] = g.vpc_id
        account = r.account or self.account_id
        if vpc_ids is not None:
            ours = {
                rule.referenced_group_id
                for g in new
                for rule in g.rules
                if rule.referenced_group_id
                and rule.referenced_owner_id in (None, account, g.owner_id)
            }
            missing = ours - set(r.known_groups)
            if missing:
                self._lookup_groups(r, missing)
        foreign = sorted(
            {
                g.vpc_id
                for g in new
                for rule in g.rules
                if rule.referenced_group_id
                and rule.referenced_owner_id not in (None, account, g.owner_id)
                and rule.referenced_group_id not in r.known_groups
            }
        )
        for vpc_id in foreign:
            if not self._stale(r, vpc_id):
                break  # the endpoint does not implement it: do not ask for every VPC

    def _rules(
        self, r: _Region, group_ids: set[str] | None
    ) -> dict[str, list[SecurityGroupRule]] | None:
        """Rules (with their ids) by group; None when they could not be read (the groups'
        own IpPermissions stand in, without rule ids)."""
        if group_ids is not None and not group_ids:
            return {}
        flt = None if group_ids is None else {"group-id": group_ids}
        denied_before = (r.region, "security_group_rules") in r.partial
        items = list(
            self._paginate(
                r,
                "security_group_rules",
                "describe_security_group_rules",
                "SecurityGroupRules",
                flt,
                consequence="security group rules read without their ids, so none is revoked there",
            )
        )
        if not denied_before and (r.region, "security_group_rules") in r.partial:
            return None
        out: dict[str, list[SecurityGroupRule]] = {}
        for item in items:
            if group_ids is None or item["GroupId"] in group_ids:
                rule = parse.security_group_rule(item)
                out.setdefault(rule.group_id, []).append(rule)
        return out

    def _stale(self, r: _Region, vpc_id: str) -> bool:
        """EC2's stale references of one VPC; False when the endpoint does not implement
        DescribeStaleSecurityGroups (moto: NotImplementedError in process, an HTML 500 from
        its server), so the snapshot's own verdict stands alone."""
        try:
            items = list(
                self._paginate(
                    r,
                    "stale_security_groups",
                    "describe_stale_security_groups",
                    "StaleSecurityGroupSet",
                    None,
                    params={"VpcId": vpc_id},
                    consequence="stale references to other accounts' groups not checked there",
                )
            )
        except (NotImplementedError, ResponseParserError):
            return False
        except ClientError as e:
            if e.response.get("Error", {}).get("Code", "") in NOT_IMPLEMENTED:
                return False
            raise
        for item in items:
            if item.get("VpcId", vpc_id) == vpc_id:
                r.stale += parse.stale_references(item)
        return True

    def _acls(self, r: _Region, flt: Mapping[str, Iterable[str]] | None) -> dict[str, NetworkAcl]:
        items = self._paginate(r, "network_acls", "describe_network_acls", "NetworkAcls", flt)
        match = _matcher(flt)
        acls = (
            parse.network_acl(i)
            for i in items
            if match({"vpc-id": i.get("VpcId", ""), "network-acl-id": i["NetworkAclId"]})
        )
        return {a.acl_id: a for a in acls}

    def _acls_by_id(self, r: _Region, ids: Iterable[str]) -> dict[str, NetworkAcl]:
        """ACLs by id (NetworkAclIds: not every endpoint filters on network-acl-id); an id
        that no longer exists is skipped, not an error."""
        wanted = sorted(set(ids))
        out: dict[str, NetworkAcl] = {}
        batches = [wanted] if len(wanted) == 1 else [[i] for i in wanted]
        for batch in batches:
            try:
                items = list(
                    self._paginate(
                        r,
                        "network_acls",
                        "describe_network_acls",
                        "NetworkAcls",
                        None,
                        params={"NetworkAclIds": batch},
                    )
                )
            except ClientError as e:
                # EC2 says InvalidNetworkAclID.NotFound (moto 5.2.5: InvalidRouteTableID...)
                if not e.response.get("Error", {}).get("Code", "").endswith(".NotFound"):
                    raise
                continue
            out |= {a.acl_id: a for a in map(parse.network_acl, items) if a.acl_id in batch}
        r.acls |= out
        return out

    def _flow_logs(self, r: _Region, flt: Mapping[str, Iterable[str]] | None) -> dict[str, FlowLog]:
        items = self._paginate(
            r, "flow_logs", "describe_flow_logs", "FlowLogs", flt, filter_arg="Filter"
        )
        match = _matcher(flt)
        logs = (
            parse.flow_log(i)
            for i in items
            if match({"resource-id": i.get("ResourceId", ""), "flow-log-id": i["FlowLogId"]})
        )
        return {fl.flow_log_id: fl for fl in logs}

    def _unlogged_peered_vpcs(self, r: _Region) -> set[str]:
        """This account's VPCs in the region with an active peering and no VPC-wide flow log
        recording ALL traffic: the VPCs a deleted flow log may have left unrecorded
        (DeleteFlowLogs names only the flow log, which can no longer be looked up).

        Two region-wide listings (flow logs, active peerings): their cost grows with the
        account only by pagination."""
        logged = {fl.resource_id for fl in self._flow_logs(r, None).values() if fl.captures_all}
        items = self._paginate(
            r,
            "peerings",
            "describe_vpc_peering_connections",
            "VpcPeeringConnections",
            {"status-code": [ACTIVE]},
        )
        out: set[str] = set()
        for item in items:
            p = parse.peering(item, r.region)
            if p.status != ACTIVE:
                continue
            for side in p.sides:
                if (side.owner_id, side.region) == (self.account_id, r.region):
                    out.add(side.vpc_id)
        return out - logged

    def _dns_hostnames(self, vpc: Vpc) -> bool | None:
        ec2 = self.clients.client("ec2", vpc.region)
        try:
            resp = ec2.describe_vpc_attribute(VpcId=vpc.vpc_id, Attribute="enableDnsHostnames")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code", "") in DENIED:
                return None
            raise
        return bool(resp.get("EnableDnsHostnames", {}).get("Value"))

    # -- assembly -------------------------------------------------------------

    def _snapshot(self, parts: list[_Region], unread: dict[str, str] | None = None) -> Snapshot:
        vpcs: dict[str, Vpc] = {}
        peerings: dict[str, PeeringConnection] = {}
        for p in parts:
            vpcs |= p.vpcs
            peerings |= p.peerings
        # DNS hostnames change the verdict only where our side's DNS option is off.
        for pcx in peerings.values():
            if pcx.status != ACTIVE:
                continue
            for side in pcx.sides:
                vpc = vpcs.get(side.vpc_id)
                if vpc is None or vpc.owner_id != self.account_id:
                    continue  # a far side: only this account's DNS option is judged
                if side.allow_dns_from_remote is False and vpc.dns_hostnames is None:
                    vpcs[vpc.vpc_id] = vpc.model_copy(
                        update={"dns_hostnames": self._dns_hostnames(vpc)}
                    )
        return Snapshot(
            account_id=self.account_id,
            taken_at=clock.now(),
            readable=frozenset(
                (p.account or self.account_id, p.region)
                for p in parts
                if (p.region, "vpcs") not in p.partial
            ),
            vpcs=vpcs,
            subnets={k: v for p in parts for k, v in p.subnets.items()},
            route_tables={k: v for p in parts for k, v in p.tables.items()},
            peerings=peerings,
            security_groups={k: v for p in parts for k, v in p.groups.items()},
            known_groups={k: v for p in parts for k, v in p.known_groups.items()},
            stale_references=tuple(s for p in parts for s in p.stale),
            network_acls={k: v for p in parts for k, v in p.acls.items()},
            flow_logs={k: v for p in parts for k, v in p.flow_logs.items()},
            partial=frozenset(x for p in parts for x in p.partial),
            warnings=tuple(w for p in parts for w in p.warnings),
            unread=unread or {},
        )


def _keep(value: str, wanted: set[str] | None) -> bool:
    return wanted is None or value in wanted


def _matcher(flt: Mapping[str, Iterable[str]] | None) -> Callable[[dict[str, str]], bool]:
    """Apply the filters again in code (before parsing: what is dropped costs nothing):
    keep items matching any of the filters given."""
    wanted = {name: frozenset(vals) for name, vals in (flt or {}).items()}

    def match(values: dict[str, str]) -> bool:
        return not wanted or any(values.get(name) in vals for name, vals in wanted.items())

    return match
