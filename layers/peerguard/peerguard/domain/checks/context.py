"""What checks need besides the network: configuration, never I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from peerguard.domain.allowlist import NO_ALLOWLIST, Allowlist

# Ports that must never be open to the internet: administration, and the usual databases
# (SQL Server, MySQL/MariaDB, PostgreSQL, Redis, MongoDB). The database list is a setting.
ADMIN_PORTS = (22, 3389)
DATABASE_PORTS = (1433, 3306, 5432, 6379, 27017)


@dataclass(frozen=True)
class CheckContext:
    allowlist: Allowlist = field(default=NO_ALLOWLIST)
    peering_quota: int = 125  # active peerings per VPC (default AWS quota)
    route_quota: int = 50  # routes per route table (default AWS quota)
    quota_ratio: float = 0.8
    expiry_warning: timedelta = timedelta(hours=24)
    database_ports: tuple[int, ...] = DATABASE_PORTS
    # Where a missing flow log may be created (a log group the stack owns, and the role
    # that delivers to it); empty = nowhere: flowlogs.disabled is then notify-only.
    flow_log_group: str = ""
    flow_log_role_arn: str = ""

    @property
    def creates_flow_logs(self) -> bool:
        return bool(self.flow_log_group and self.flow_log_role_arn)
