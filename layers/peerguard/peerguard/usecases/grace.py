"""The grace period of a change is over: re-read the live state, and announce (and fix, in
fix mode) the findings that waited (`peerguard.usecases.change.grace_checks`) and are still
there."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser.models import SqsModel
from pydantic import ValidationError

from peerguard.domain import catalogue
from peerguard.events import MalformedEvent, check_sane, one_line
from peerguard.events.grace import GraceBody, parse_grace
from peerguard.usecases import pipeline
from peerguard.usecases.change import grace_checks
from peerguard.usecases.pipeline import Runtime

_processor = BatchProcessor(event_type=EventType.SQS)


def parse_batch(event: Any) -> dict[str, Any]:
    """An SQS event as the event source mapping sends it, or MalformedEvent in one line."""
    check_sane(event, "SQS event")
    try:
        SqsModel.model_validate(event)
    except ValidationError as e:
        raise MalformedEvent("SQS event " + one_line(e, ())) from None
    if not event["Records"]:
        raise MalformedEvent("SQS event has no records (SQS never sends an empty batch)")
    return dict(event)


def on_batch(rt: Runtime, event: Any, context: Any) -> dict[str, Any]:
    """Grace-queue messages, each confirmed on its own: a message that fails for a passing
    reason (AWS throttling) is reported back to SQS to be retried, then dead-lettered."""
    rt.invoked(context)
    try:
        batch = parse_batch(event)
    except MalformedEvent as e:
        pipeline.malformed(str(e))
        return {"batchItemFailures": []}  # not from the queue: nothing to retry

    def confirm_one(record: SQSRecord) -> dict[str, Any]:
        return on_grace_message(rt, record.body)

    return dict(process_partial_response(batch, confirm_one, _processor, context))


def on_grace_message(rt: Runtime, body: Any) -> dict[str, Any]:
    """One grace-queue message body. A malformed one is logged and counted, not retried."""
    parsed = pipeline.parse_or_report(parse_grace, body)
    if isinstance(parsed, dict):
        return parsed
    return confirm(rt, parsed)


def confirm(rt: Runtime, body: GraceBody) -> dict[str, Any]:
    scope = body.to_scope()
    checks = [catalogue.entry(c) for c in sorted(grace_checks())]
    ctx = rt.check_context()
    regions = list(body.regions)
    members = rt.members()
    result = pipeline.audit(rt.clients, regions, ctx, checks, scope=scope, members=members)
    pipeline.observe(result)
    findings = pipeline.remediate(rt, result, result.findings, ctx, body.event_id, regions, members)
    return {
        "event_id": body.event_id,
        "confirmed": len(result.findings),
        "notify": pipeline.announce(rt, findings, result.coverage(scope)),
    }
