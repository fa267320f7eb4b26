"""Is PeerGuard set up to see changes? Pure verdicts over what the adapters read.

The change auditor runs on "AWS API Call via CloudTrail" events, and EventBridge gets those
only in regions where a trail is logging management events (write events at least). Without
one, only the hourly sweep sees changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from peerguard.domain.catalogue import Entry, Kind, define
from peerguard.domain.findings import Finding, Severity

TRAIL_READS = (
    "cloudtrail:DescribeTrails",
    "cloudtrail:GetTrailStatus",
    "cloudtrail:GetEventSelectors",
)

NO_TRAIL = define(
    Entry(
        "setup.no_trail",
        Kind.SETUP,
        Severity.MEDIUM,
        "No CloudTrail trail records management events in this region",
        risk="EventBridge receives no 'AWS API Call via CloudTrail' events here, so the change "
        "auditor never runs: a broken route or an open security group waits for the next "
        "sweep instead of being reported within minutes.",
        fix="Create a trail (or a multi-region or organization trail) that logs management "
        "write events, and start logging it.",
        resource_type="AWS::CloudTrail::Trail",
        iam_actions=TRAIL_READS,
    )
)


@dataclass(frozen=True)
class Trail:
    """One trail as it applies to a region."""

    arn: str
    home_region: str
    multi_region: bool
    logging: bool
    management_writes: bool  # its selectors record management write events

    def covers(self, region: str) -> bool:
        return (
            self.logging
            and self.management_writes
            and (self.multi_region or self.home_region == region)
        )


def management_writes(basic: Sequence[dict], advanced: Sequence[dict]) -> bool:
    """Whether event selectors (as GetEventSelectors returns them) record management writes.

    No selectors at all is the default: all management events."""
    if not basic and not advanced:
        return True
    for s in basic:
        if s.get("IncludeManagementEvents", True) and s.get("ReadWriteType", "All") in (
            "All",
            "WriteOnly",
        ):
            return True
    for s in advanced:
        fields = {f.get("Field"): f for f in s.get("FieldSelectors", [])}
        category = fields.get("eventCategory", {}).get("Equals", [])
        read_only = fields.get("readOnly", {}).get("Equals", [])
        if "Management" in category and "true" not in read_only:
            return True
    return False


def no_trail(trails: Sequence[Trail], account_id: str, region: str) -> Finding | None:
    if any(t.covers(region) for t in trails):
        return None
    seen = (
        "; ".join(
            f"{t.arn} ({'logging' if t.logging else 'not logging'}, "
            f"{'records' if t.management_writes else 'does not record'} management writes, "
            f"{'multi-region' if t.multi_region else 'home ' + t.home_region})"
            for t in trails
        )
        or "no trail at all"
    )
    return NO_TRAIL.finding(
        resource_id=f"cloudtrail:{region}",
        account_id=account_id,
        region=region,
        detail=f"No trail logs management write events in {region} of account {account_id} "
        f"({seen}). EventBridge gets no CloudTrail events here, so PeerGuard's change auditor "
        "is silent and only the sweep finds changes.",
    )
