"""Flow analyzer: the flow logs of peered VPCs, window by window, on a schedule."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from peerguard.observability import logger, metrics
from peerguard.settings import FlowSettings
from peerguard.usecases.flows import on_schedule
from peerguard.usecases.pipeline import runtime


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return on_schedule(runtime(FlowSettings), event, context)
