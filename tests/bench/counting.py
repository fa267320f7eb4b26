"""Count AWS API requests on the server side, the same way for every tool measured."""

from __future__ import annotations

import io
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

WsgiApp = Callable[..., Iterable[bytes]]

# SigV4 credential scope: Credential=AKID/20250101/us-east-1/ec2/aws4_request
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


class RequestCounter:
    """WSGI middleware in front of moto: one count per API request, keyed `service:Action`,
    and the bytes of the responses (`response_bytes`, under the same keys).

    Requests to /moto-api (reset, state) are not AWS calls and are not counted.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self.response_bytes: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self.app(environ, start_response)
        op = self._operation(environ)
        with self._lock:
            self.counts[op] += 1
        return _Measured(self.app(environ, start_response), self, op)

    def _add_bytes(self, op: str, n: int) -> None:
        with self._lock:
            self.response_bytes[op] += n

    def bytes_snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.response_bytes)

    @staticmethod
    def _operation(environ: dict[str, Any]) -> str:
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = scope.group(1) if scope else "?"
        action = parse_qs(environ.get("QUERY_STRING", "")).get("Action", [""])[0]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if not action and length:
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)  # moto reads it again
            action = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        return f"{service}:{action or target.rpartition('.')[2] or '?'}"

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)

    def since(self, before: Counter[str]) -> Counter[str]:
        now = self.snapshot()
        now.subtract(before)
        return +now  # drop zeros


class _Measured:
    """A WSGI response body that adds its size to the counter as it is sent."""

    def __init__(self, body: Iterable[bytes], counter: RequestCounter, op: str) -> None:
        self.body, self.counter, self.op = body, counter, op

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.counter._add_bytes(self.op, len(chunk))
            yield chunk

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()
