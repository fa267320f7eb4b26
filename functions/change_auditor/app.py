"""Change auditor: EventBridge (CloudTrail EC2 calls) and the grace queue (SQS)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from peerguard.observability import logger, metrics
from peerguard.settings import ChangeAuditorSettings
from peerguard.usecases.change import on_change
from peerguard.usecases.pipeline import runtime


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    rt = runtime(ChangeAuditorSettings)
    if isinstance(event, dict) and "Records" in event:  # grace periods of earlier changes
        # Imported on this path only: Powertools' batch utilities are a fifth of the import.
        from peerguard.usecases.grace import on_batch

        return on_batch(rt, event, context)
    return on_change(rt, event, context)
