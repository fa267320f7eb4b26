"""What checks need besides the network: configuration, never I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from peerguard.domain.allowlist import NO_ALLOWLIST, Allowlist


@dataclass(frozen=True)
class CheckContext:
    allowlist: Allowlist = field(default=NO_ALLOWLIST)
    peering_quota: int = 125  # active peerings per VPC (default AWS quota)
    route_quota: int = 50  # routes per route table (default AWS quota)
    quota_ratio: float = 0.8
    expiry_warning: timedelta = timedelta(hours=24)
