"""Once per event: Powertools idempotency on the shared table (a duplicate delivery of an
EventBridge event gets the first invocation's result instead of a second run)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

IDEMPOTENCY_TTL = timedelta(hours=24)


def once(
    dynamodb: Any,
    table_name: str,
    event: dict[str, Any],
    work: Callable[[], Any],
    context: Any = None,
    on_duplicate: Callable[[], None] = lambda: None,
) -> Any:
    """Run `work` once per EventBridge event id (the caller checked the id is well-formed)."""
    if not table_name:
        return work()
    # Imported by the first event that needs it: the schedules never do, and Powertools'
    # idempotency package is among the slowest imports of a cold start.
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    # One persistence layer per client and table for the container's life: each new one
    # registers another user-agent hook on the client, and a warm container would run one
    # more hook per event on every DynamoDB call (found by the soak benchmark).
    layers = dynamodb.__dict__.setdefault("_peerguard_idempotency", {})
    if table_name not in layers:
        layers[table_name] = DynamoDBPersistenceLayer(
            table_name=table_name, key_attr="pk", expiry_attr="ttl", boto3_client=dynamodb
        )
    persistence = layers[table_name]
    config = IdempotencyConfig(
        event_key_jmespath="id",
        expires_after_seconds=int(IDEMPOTENCY_TTL.total_seconds()),
        raise_on_no_idempotency_key=True,
    )
    if context is not None:
        config.register_lambda_context(context)  # an in-progress record expires with the call

    ran = False

    @idempotent_function(
        data_keyword_argument="event", persistence_store=persistence, config=config
    )
    def run(event: dict[str, Any]) -> Any:
        nonlocal ran
        ran = True
        return work()

    result = run(event={"id": event["id"]})
    if not ran:
        on_duplicate()
    return result
