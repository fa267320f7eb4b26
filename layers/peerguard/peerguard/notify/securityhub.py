"""Security Hub: one ASFF finding per PeerGuard finding, imported with BatchImportFindings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from peerguard.domain.findings import Finding, Severity
from peerguard.notify.core import Failure, Notification, finding_url, fix_text, iso

log = logging.getLogger(__name__)

SCHEMA_VERSION = "2018-10-08"
BATCH = 100  # BatchImportFindings limit
NETWORK_REACHABILITY = (
    "Software and Configuration Checks/AWS Security Best Practices/Network Reachability"
)
DATA_EXPOSURE = "Effects/Data Exposure"
NETWORK_FLOW = "Unusual Behaviors/Network Flow"
EXPOSING = {"sg.open_to_world", "sg.peer_all_traffic", "peering.not_allowlisted"}

LABEL = {
    Severity.INFO: "INFORMATIONAL",
    Severity.LOW: "LOW",
    Severity.MEDIUM: "MEDIUM",
    Severity.HIGH: "HIGH",
    Severity.CRITICAL: "CRITICAL",
}
# finding.resource_type -> (ASFF resource type, ARN resource kind)
RESOURCE_TYPES = {
    "AWS::EC2::VPCPeeringConnection": ("AwsEc2VpcPeeringConnection", "vpc-peering-connection"),
    "AWS::EC2::RouteTable": ("AwsEc2RouteTable", "route-table"),
    "AWS::EC2::VPC": ("AwsEc2Vpc", "vpc"),
    "AWS::EC2::Subnet": ("AwsEc2Subnet", "subnet"),
    "AWS::EC2::SecurityGroup": ("AwsEc2SecurityGroup", "security-group"),
    "AWS::EC2::NetworkAcl": ("AwsEc2NetworkAcl", "network-acl"),
    "AWS::EC2::NetworkACL": ("AwsEc2NetworkAcl", "network-acl"),
}


# -- rendering (pure) ------------------------------------------------------------------------


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def product_arn(region: str, account_id: str) -> str:
    """The account's own 'default' product, for custom findings."""
    return f"arn:{partition(region)}:securityhub:{region}:{account_id}:product/{account_id}/default"


def finding_id(f: Finding) -> str:
    return f"peerguard/{f.check_id}/{f.fingerprint}"


def _resource(resource_type: str, resource_id: str, f: Finding) -> dict[str, Any]:
    region = f.region or "us-east-1"
    known = RESOURCE_TYPES.get(resource_type)
    if known is None:
        return {
            "Type": "Other",
            "Id": resource_id,
            "Partition": partition(region),
            "Region": region,
        }
    asff_type, kind = known
    arn = f"arn:{partition(region)}:ec2:{region}:{f.account_id}:{kind}/{resource_id}"
    return {"Type": asff_type, "Id": arn, "Partition": partition(region), "Region": region}


def resources(f: Finding) -> list[dict[str, Any]]:
    """The finding's resource first, then its peering connection and VPC for context."""
    out = [_resource(f.resource_type, f.resource_id, f)]
    related = (
        ("AWS::EC2::VPCPeeringConnection", f.peering_connection_id),
        ("AWS::EC2::VPC", f.vpc_id),
    )
    for rtype, rid in related:
        if rid and rid != f.resource_id:
            out.append(_resource(rtype, rid, f))
    return out


def types(f: Finding) -> list[str]:
    if f.check_id.startswith("flow."):
        return [NETWORK_FLOW]
    out = [NETWORK_REACHABILITY]
    if f.check_id in EXPOSING:
        out.append(DATA_EXPOSURE)
    return out


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def render(n: Notification, hub_region: str, hub_account: str) -> dict[str, Any]:
    """An AwsSecurityFinding. Resolved findings are archived, compliance PASSED."""
    f = n.finding
    severity = {"Label": LABEL[f.severity], "Original": f.severity.value}
    kinds = types(f)
    created, observed = iso(n.first_seen), iso(n.observed_at)
    recommendation: dict[str, str] = {"Text": _clip(fix_text(f) or f.title, 512)}
    url = finding_url(f)
    if url:
        recommendation["Url"] = url
    product_fields = {
        "peerguard/check_id": f.check_id,
        "peerguard/fingerprint": f.fingerprint,
        "peerguard/status": n.status.value,
    }
    if f.peering_connection_id:
        product_fields["peerguard/peering_connection_id"] = f.peering_connection_id
    if f.account_id != hub_account:
        # A far side read through the member role: Security Hub takes findings of the default
        # product only for the importing account, so the finding is this account's, and its
        # resources (ARNs, Region) name where the problem is: the far account and region.
        product_fields["peerguard/resource_account_id"] = f.account_id
    if f.region and f.region != hub_region:
        product_fields["peerguard/resource_region"] = f.region
    if f.remediation is not None:
        product_fields["peerguard/remediation"] = _clip(f.remediation.cli(), 2048)
        product_fields["peerguard/automatic"] = str(f.remediation.automatic).lower()
    return {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(f),
        "ProductArn": product_arn(hub_region, hub_account),
        "ProductName": "PeerGuard",
        "CompanyName": "PeerGuard",
        "GeneratorId": f.check_id,
        "AwsAccountId": hub_account,
        "Types": kinds,
        "FirstObservedAt": created,
        "LastObservedAt": observed,
        "CreatedAt": created,
        "UpdatedAt": observed,
        "Severity": severity,
        "Title": _clip(f"{f.title}: {f.resource_id}", 256),
        "Description": _clip(f.detail or f.title, 1024),
        "Remediation": {"Recommendation": recommendation},
        "ProductFields": product_fields,
        "Resources": resources(f),
        "Compliance": {"Status": "PASSED" if n.resolved else "FAILED"},
        "Workflow": {"Status": "RESOLVED" if n.resolved else "NEW"},
        "RecordState": "ARCHIVED" if n.resolved else "ACTIVE",
        "FindingProviderFields": {"Severity": severity, "Types": kinds},
    }


# -- delivery -------------------------------------------------------------------------------


class SecurityHubNotifier:
    name = "securityhub"

    def __init__(self, securityhub: Any, region: str, account_id: str) -> None:
        self.securityhub = securityhub
        self.region = region
        self.account_id = account_id

    def deliver(self, notifications: Sequence[Notification]) -> list[Failure]:
        failures: list[Failure] = []
        for i in range(0, len(notifications), BATCH):
            batch = list(notifications[i : i + BATCH])
            asff = [render(n, self.region, self.account_id) for n in batch]
            try:
                resp = self.securityhub.batch_import_findings(Findings=asff)
            except Exception as e:  # botocore has already retried throttling and 5xx
                log.warning("securityhub batch_import_findings failed: %s", e)
                failures.append(Failure(tuple(batch), f"{type(e).__name__}: {e}", asff))
                continue
            by_id = {a["Id"]: (n, a) for n, a in zip(batch, asff, strict=True)}
            for failed in resp.get("FailedFindings", []):
                if failed.get("Id") not in by_id:  # not ours: cannot happen, but never crash
                    log.warning("securityhub reported an unknown finding id %s", failed.get("Id"))
                    continue
                n, a = by_id[failed["Id"]]
                error = f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage', '')}"
                failures.append(Failure((n,), error, [a]))
        return failures
