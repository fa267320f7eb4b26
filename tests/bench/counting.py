"""Count AWS API requests on the server side, the same way for every tool measured."""

from __future__ import annotations

import io
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

WsgiApp = Callable[..., Iterable[bytes]]

# SigV4 credential scope: Credential=AKID/20250101/us-east-1/ec2/aws4_request
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


class RequestCounter:
    """WSGI middleware in front of moto: one count per API request, keyed `service:Action`.

    Requests to /moto-api (reset, state) are not AWS calls and are not counted.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("PATH_INFO", "").startswith("/moto-api"):
            with self._lock:
                self.counts[self._operation(environ)] += 1
        return self.app(environ, start_response)

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
