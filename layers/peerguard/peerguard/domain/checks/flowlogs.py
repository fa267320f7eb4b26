"""Flow-log coverage of peered VPCs: without one, nobody can tell what crossed a peering."""

from __future__ import annotations

from collections.abc import Iterator

from peerguard.domain.catalogue import check, entry
from peerguard.domain.checks.context import CheckContext
from peerguard.domain.findings import Finding, Remediation, Severity
from peerguard.domain.model import FlowLog, Snapshot, Subnet, Vpc

READ_FLOW_LOGS = (
    "ec2:DescribeVpcPeeringConnections",
    "ec2:DescribeVpcs",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeFlowLogs",
)
NO_DESTINATION = (
    "no flow-log destination is configured (the stack's FixFlowLogs parameter, or "
    "--flow-log-group and --flow-log-role): add LogGroupName and DeliverLogsPermissionArn, "
    "or an S3 LogDestination"
)


def create_flow_log(vpc_id: str, ctx: CheckContext) -> Remediation:
    """The call that records everything crossing the VPC: to the configured log group when
    there is one (then automatic), else the same call for a person to complete."""
    params: dict[str, object] = {
        "ResourceIds": [vpc_id],
        "ResourceType": "VPC",
        "TrafficType": "ALL",
    }
    if not ctx.creates_flow_logs:
        return Remediation(
            action="CreateFlowLogs", parameters=params, automatic=False, reason=NO_DESTINATION
        )
    params |= {
        "LogDestinationType": "cloud-watch-logs",
        "LogGroupName": ctx.flow_log_group,
        "DeliverLogsPermissionArn": ctx.flow_log_role_arn,
    }
    return Remediation(action="CreateFlowLogs", parameters=params, automatic=True)


def routed_subnets(snap: Snapshot, vpc_id: str, pcx_ids: set[str]) -> list[Subnet]:
    """The subnets whose table routes something through one of `pcx_ids`."""
    out = []
    for rt, subnets in snap.subnets_by_table(vpc_id):
        if any(r.target in pcx_ids for r in rt.routes):
            out.extend(subnets)
    return sorted(out, key=lambda s: s.subnet_id)


def coverage_gap(snap: Snapshot, vpc: Vpc, pcx_ids: set[str]) -> str:
    """Why the VPC's peering traffic is not fully recorded ('' when it is)."""
    on_vpc = snap.flow_logs_on(vpc.vpc_id)
    if any(fl.captures_all for fl in on_vpc):
        return ""
    subnets = routed_subnets(snap, vpc.vpc_id, pcx_ids)
    bare = [s for s in subnets if not any(fl.captures_all for fl in snap.flow_logs_on(s.subnet_id))]
    if subnets and not bare:
        return ""  # every subnet that routes to a peer records ALL traffic
    seen: list[FlowLog] = on_vpc + [fl for s in subnets for fl in snap.flow_logs_on(s.subnet_id)]
    why = [fl.shortfall for fl in seen if fl.shortfall]
    if not seen:
        text = "it has no flow log at all"
    elif why:
        text = "; ".join(why)
    else:
        text = "its flow logs cover only some of its subnets"
    if bare and any(snap.flow_logs_on(s.subnet_id) for s in subnets):
        names = ", ".join(s.subnet_id for s in bare)
        text += f"; subnets routing to a peer without an ALL log: {names}"
    return text


@check(
    "flowlogs.disabled",
    Severity.MEDIUM,
    "Peered VPC has no flow log recording all traffic",
    risk="Nothing records what crosses the peering: an intrusion from a peer, or traffic "
    "the ACLs drop, leaves no trace, and flow-log analysis has nothing to read.",
    fix="Create a VPC flow log with TrafficType ALL (to CloudWatch Logs or S3); a REJECT- "
    "or ACCEPT-only log is not enough.",
    resource_type="AWS::EC2::VPC",
    iam_actions=READ_FLOW_LOGS,
    automatic_fix="creates an ALL flow log to the stack's own log group, in fix mode with "
    "FixFlowLogs",
)
def disabled(snap: Snapshot, ctx: CheckContext) -> Iterator[Finding]:
    if snap.flow_logs is None:
        return
    for vpc_id in sorted(snap.vpcs):
        vpc = snap.vpcs[vpc_id]
        # This account's VPCs, and the far sides the member role read.
        if not snap.can_read(vpc.owner_id, vpc.region) or (vpc.region, "flow_logs") in snap.partial:
            continue
        if (vpc.region, "route_tables") in snap.partial:
            continue  # subnet-level logs are judged by the routes
        peers = snap.active_peers(vpc_id)
        if not peers:
            continue
        pcx_ids = {p.pcx_id for p in peers}
        gap = coverage_gap(snap, vpc, pcx_ids)
        if not gap:
            continue
        names = ", ".join(sorted(pcx_ids)[:3]) + (
            f" and {len(pcx_ids) - 3} more" if len(pcx_ids) > 3 else ""
        )
        yield entry("flowlogs.disabled").finding(
            resource_id=vpc_id,
            account_id=vpc.owner_id,
            region=vpc.region,
            vpc_id=vpc_id,
            peering_connection_id=min(pcx_ids),
            detail=f"{vpc_id} has active peerings ({names}) but no active flow log records "
            f"ALL its traffic: {gap}.",
            remediation=create_flow_log(vpc_id, ctx),
            extra={"peering_connection_ids": sorted(pcx_ids)},
        )
