"""Change auditor: EventBridge (CloudTrail EC2 calls) and the grace queue (SQS)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peerguard.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Each path imports what it needs on its first call, not at import time
    # (tests/bench/coldstart.py); later calls find the modules in sys.modules.
    from peerguard.settings import ChangeAuditorSettings
    from peerguard.usecases.pipeline import runtime

    rt = runtime(ChangeAuditorSettings)
    if isinstance(event, dict) and "Records" in event:  # grace periods of earlier changes
        from peerguard.usecases.grace import on_batch  # Powertools' batch utilities

        return on_batch(rt, event, context)
    from peerguard.usecases.change import on_change

    return on_change(rt, event, context)
