"""Change auditor: EventBridge (CloudTrail EC2 calls) and the grace queue (SQS)."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from peerguard.observability import logger, metrics
from peerguard.runtime import runtime
from peerguard.service import confirm, on_change

processor = BatchProcessor(event_type=EventType.SQS)


def _confirm(record: SQSRecord) -> dict[str, Any]:
    return confirm(runtime(), json.loads(record.body))


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:  # the grace period of earlier changes is over
        return dict(process_partial_response(event, _confirm, processor, context))
    return on_change(runtime(), event, context)
