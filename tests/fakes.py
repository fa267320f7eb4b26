"""Test doubles shared by integration and e2e tests: a loopback stand-in for Slack."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

WEBHOOK_PATH = "/services/T0/B0/secret"


class FakeSlack:
    """Records posts; answers from `replies` (status, headers) in turn, then 200 ok.
    `always` set to a status answers that status to every post (Slack down)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.replies: list[tuple[int, dict[str, str]]] = []
        self.always: int | None = None

    def reply(self) -> tuple[int, dict[str, str]]:
        if self.always is not None:
            return self.always, {}
        return self.replies.pop(0) if self.replies else (200, {})

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [p["body"] for p in self.posts]


@contextmanager
def fake_slack_server() -> Iterator[tuple[FakeSlack, str]]:
    """A FakeSlack on 127.0.0.1 (any free port) and its webhook URL, for the duration."""
    state = FakeSlack()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.posts.append({"path": self.path, "body": json.loads(body)})
            status, headers = state.reply()
            text = b"ok" if status == 200 else b"error"
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_port}{WEBHOOK_PATH}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
