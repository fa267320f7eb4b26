"""Sweep: a full audit of the account and region on a schedule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peerguard.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Imported by the first call, not at import time (tests/bench/coldstart.py); later
    # calls find them in sys.modules.
    from peerguard.settings import SweepSettings
    from peerguard.usecases.pipeline import runtime
    from peerguard.usecases.sweep import on_schedule

    return on_schedule(runtime(SweepSettings), event, context)
