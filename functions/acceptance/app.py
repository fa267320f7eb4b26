"""Acceptance: the 5-minute schedule and CreateVpcPeeringConnection events (EventBridge)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from peerguard.observability import logger, metrics
from peerguard.settings import AcceptanceSettings
from peerguard.usecases.acceptance import on_acceptance
from peerguard.usecases.pipeline import runtime


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return on_acceptance(runtime(AcceptanceSettings), event, context)
