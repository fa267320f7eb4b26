"""Sweep: a full audit of the account and region on a schedule."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from peerguard.observability import logger, metrics
from peerguard.settings import SweepSettings
from peerguard.usecases.pipeline import runtime
from peerguard.usecases.sweep import on_schedule


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return on_schedule(runtime(SweepSettings), event, context)
