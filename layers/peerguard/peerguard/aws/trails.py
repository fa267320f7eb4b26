"""The trails that apply to a region (CloudTrail): do EC2 API calls reach EventBridge?"""

from __future__ import annotations

from botocore.exceptions import ClientError

from peerguard.aws.clients import Clients
from peerguard.aws.reader import DENIED
from peerguard.domain.setup import Trail, management_writes


def trails_of(clients: Clients, region: str) -> tuple[list[Trail] | None, str]:
    """The trails of `region` (None when CloudTrail could not be read), and a warning."""
    ct = clients.client("cloudtrail", region)
    try:
        listed = ct.describe_trails(includeShadowTrails=True).get("trailList", [])
        out = []
        for t in listed:
            arn = t["TrailARN"]
            status = ct.get_trail_status(Name=arn)
            writes = True
            if t.get("HasCustomEventSelectors"):
                sel = ct.get_event_selectors(TrailName=arn)
                writes = management_writes(
                    sel.get("EventSelectors") or [], sel.get("AdvancedEventSelectors") or []
                )
            out.append(
                Trail(
                    arn=arn,
                    home_region=t.get("HomeRegion", region),
                    multi_region=bool(t.get("IsMultiRegionTrail")),
                    logging=bool(status.get("IsLogging")),
                    management_writes=writes,
                )
            )
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code not in DENIED and code != "TrailNotFoundException":
            raise
        return None, f"cannot read CloudTrail in {region} ({code}): trail coverage not checked"
    return out, ""
