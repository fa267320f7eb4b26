"""Change auditor: EventBridge (CloudTrail EC2 calls) and the grace queue (SQS)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from peerguard.observability import logger, metrics
from peerguard.settings import ChangeAuditorSettings
from peerguard.usecases.change import on_change
from peerguard.usecases.grace import on_grace_message
from peerguard.usecases.pipeline import runtime

processor = BatchProcessor(event_type=EventType.SQS)


def _confirm(record: SQSRecord) -> dict[str, Any]:
    return on_grace_message(runtime(ChangeAuditorSettings), record.body)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if isinstance(event, dict) and "Records" in event:  # grace periods of earlier changes
        return dict(process_partial_response(event, _confirm, processor, context))
    return on_change(runtime(ChangeAuditorSettings), event, context)
