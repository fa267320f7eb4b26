"""`peerguard peerings`: the audit, then every peering summarised with its findings."""

from __future__ import annotations

from collections.abc import Iterable

from peerguard.aws.clients import Clients
from peerguard.domain.checks import CheckContext
from peerguard.domain.overview import PeeringView, summarise
from peerguard.usecases.pipeline import AuditResult, audit


def peerings_overview(
    clients: Clients, regions: Iterable[str], ctx: CheckContext
) -> tuple[AuditResult, list[PeeringView]]:
    result = audit(clients, list(regions), ctx)
    return result, summarise(result.snapshot, result.findings)
