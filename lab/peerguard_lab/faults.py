"""Faults moto cannot produce, answered the way AWS answers them.

A `Faults` is installed on a boto3 session (the stack's, which the handlers' clients are
built on): each rule answers matching requests, on the wire (`before-send`), with the HTTP
error AWS sends in that service's protocol, or raises the connection error a timeout is.
Answered on the wire, the faults go through botocore's own retries like real ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

THROTTLING = {
    "dynamodb": "ThrottlingException",
    "ec2": "RequestLimitExceeded",
    "sqs": "ThrottlingException",
    "sns": "Throttling",
    "ssm": "ThrottlingException",
    "sts": "Throttling",
    "secretsmanager": "ThrottlingException",
    "securityhub": "TooManyRequestsException",
    "cloudtrail": "ThrottlingException",
    "logs": "ThrottlingException",
    "s3": "SlowDown",
}
DENIED = {"ec2": "UnauthorizedOperation"}


class _Raw:
    """The urllib3-like body botocore reads an AWSResponse from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _protocol(service: str) -> str:
    return str(botocore.session.get_session().get_service_model(service).protocol)


def error_response(service: str, code: str, status: int, url: str = "") -> AWSResponse:
    """The HTTP error AWS answers with, in `service`'s protocol."""
    message = f"simulated {code}"
    protocol = _protocol(service)
    headers: dict[str, str] = {}
    if protocol == "ec2":
        body = (
            f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message>"
            "</Error></Errors><RequestID>simulated</RequestID></Response>"
        )
    elif protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>simulated</RequestId>"
            "</ErrorResponse>"
        )
        headers["Content-Type"] = "text/xml"
    elif protocol == "rest-xml":
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    else:  # json, rest-json, smithy-rpc-v2-cbor clients accept the JSON form too
        body = json.dumps({"__type": code, "message": message})
        headers = {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.0"}
    return AWSResponse(url, status, headers, _Raw(body.encode()))


@dataclass
class Rule:
    service: str
    operation: str | None  # None: every operation of the service
    answer: Callable[[Any], AWSResponse | None]
    times: int | None = None  # None: forever
    when: Callable[[Any], bool] = field(default=lambda _request: True)
    hits: int = 0

    def matches(self, service: str, operation: str, request: Any) -> bool:
        return (
            service == self.service
            and self.operation in (None, operation)
            and (self.times is None or self.hits < self.times)
            and self.when(request)
        )


class Faults:
    """Fault rules on one boto3 session: `faults.throttle("dynamodb", "UpdateItem", 2)`."""

    def __init__(self, session: boto3.Session) -> None:
        self.rules: list[Rule] = []
        self.seen: list[tuple[str, str]] = []
        # First: moto answers every request at before-send too, and the first answer wins.
        session._session.get_component("event_emitter").register_first(
            "before-send", self._before_send
        )

    def _before_send(self, request: Any, **kwargs: Any) -> AWSResponse | None:
        # botocore retries by sending the same request again: give it back its real URL.
        request.url = getattr(request, "_peerguard_url", request.url)
        event = kwargs.get("event_name", "")  # before-send.<service-id>.<Operation>
        _, service, operation = [*event.split("."), "", ""][:3]
        service = service.replace("-", "")  # secrets-manager -> secretsmanager
        self.seen.append((service, operation))
        for rule in self.rules:
            if rule.matches(service, operation, request):
                rule.hits += 1
                answer = rule.answer(request)
                # botocore calls every before-send handler and takes the first answer: moto
                # would still carry the request out. A URL it does not serve, it leaves alone.
                request._peerguard_url = request.url
                request.url = "https://fault.peerguard.invalid/"
                return answer
        return None

    def add(self, rule: Rule) -> Rule:
        self.rules.append(rule)
        return rule

    def error(
        self, service: str, operation: str | None, code: str, status: int, times: int | None = None
    ) -> Rule:
        return self.add(
            Rule(
                service,
                operation,
                lambda request: error_response(service, code, status, request.url),
                times,
            )
        )

    def throttle(self, service: str, operation: str | None, times: int | None = None) -> Rule:
        return self.error(service, operation, THROTTLING.get(service, "Throttling"), 400, times)

    def deny(self, service: str, operation: str | None, times: int | None = None) -> Rule:
        code = DENIED.get(service, "AccessDeniedException")
        return self.error(service, operation, code, 403, times)

    def server_error(self, service: str, operation: str | None, times: int | None = None) -> Rule:
        code = "InternalError" if _protocol(service) in ("ec2", "query") else "InternalFailure"
        return self.error(service, operation, code, 500, times)

    def timeout(self, service: str, operation: str | None, times: int | None = None) -> Rule:
        def time_out(request: Any) -> AWSResponse | None:
            raise ReadTimeoutError(endpoint_url=request.url)  # stops the other handlers too

        return self.add(Rule(service, operation, time_out, times))

    def clear(self) -> None:
        self.rules.clear()


@contextmanager
def instant_retries() -> Iterator[None]:
    """botocore's retries without their waits (backoff and the adaptive token bucket), so a
    test of 'throttled, retried, then served' takes no time. The retries still happen."""
    from botocore.retries import adaptive, bucket, standard

    saved = (
        standard.ExponentialBackoff.delay_amount,
        bucket.TokenBucket.acquire,
        adaptive.ClientRateLimiter.on_sending_request,
    )
    standard.ExponentialBackoff.delay_amount = lambda self, context: 0
    bucket.TokenBucket.acquire = lambda self, amount=1, block=True: True
    adaptive.ClientRateLimiter.on_sending_request = lambda self, request, **kw: None
    try:
        yield
    finally:
        (
            standard.ExponentialBackoff.delay_amount,
            bucket.TokenBucket.acquire,
            adaptive.ClientRateLimiter.on_sending_request,
        ) = saved
