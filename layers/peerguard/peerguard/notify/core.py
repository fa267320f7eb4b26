"""What every channel shares: a notification, a delivery failure, console links, retries."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from peerguard.domain import catalogue
from peerguard.domain.dedup import Notification, Status, iso
from peerguard.domain.findings import Finding

__all__ = ["Failure", "Notification", "Notifier", "Status", "iso"]

T = TypeVar("T")
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Failure:
    """Notifications a channel could not deliver, with the payload it tried to send."""

    notifications: tuple[Notification, ...]
    error: str
    payload: Any = None


class Notifier(Protocol):
    name: str

    def deliver(self, notifications: Sequence[Notification]) -> list[Failure]:
        """Send everything, retrying what is worth retrying; return what still failed."""
        ...


def fix_text(finding: Finding) -> str:
    """The exact call that fixes it, or the catalogue's advice when there is no single call."""
    if finding.remediation is not None:
        return finding.remediation.cli()
    known = catalogue.entries().get(finding.check_id)
    return known.fix if known else ""


_CONSOLE = "https://console.aws.amazon.com/vpcconsole/home?region={region}#{fragment}"
_FRAGMENTS = {
    "pcx-": "PeeringConnectionDetails:VpcPeeringConnectionId={id}",
    "rtb-": "RouteTableDetails:RouteTableId={id}",
    "vpc-": "VpcDetails:VpcId={id}",
    "subnet-": "SubnetDetails:subnetId={id}",
    "sg-": "SecurityGroup:groupId={id}",
    "acl-": "NetworkAclDetails:networkAclId={id}",
    "fl-": "FlowLogs:",
}


def console_url(resource_id: str, region: str) -> str | None:
    """The VPC console page of a resource, by its id prefix; None for unknown kinds."""
    for prefix, fragment in _FRAGMENTS.items():
        if resource_id.startswith(prefix) and region:
            return _CONSOLE.format(region=region, fragment=fragment.format(id=resource_id))
    return None


def finding_url(finding: Finding) -> str | None:
    """The console page of the finding's resource, else of its peering connection."""
    return console_url(finding.resource_id, finding.region) or (
        console_url(finding.peering_connection_id, finding.region)
        if finding.peering_connection_id
        else None
    )


def backoff_delays(attempts: int, base: float, cap: float = 20.0) -> list[float]:
    """Exponential waits between `attempts` tries: base, 2*base, ... capped."""
    return [min(cap, base * 2**i) for i in range(max(0, attempts - 1))]


def default_sleep(seconds: float) -> None:
    time.sleep(seconds)
