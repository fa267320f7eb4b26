"""A loopback stand-in for a Slack incoming webhook, and the secret that holds its URL."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from peerguard.aws.clients import Clients

HOST = "127.0.0.1"
WEBHOOK_PATH = "/services/T0/B0/secret"


class FakeSlack:
    """`with FakeSlack() as slack:` a webhook at `slack.url` on 127.0.0.1 (any free port).

    Records every post (path, JSON body, the status answered). Answers from `replies`
    (status, headers) in turn, then 200 ok; `always` set to a status answers that status to
    every post (Slack down). Tests script the replies; the demo `take()`s what each step
    posted.
    """

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.replies: list[tuple[int, dict[str, str]]] = []
        self.always: int | None = None
        self._server = ThreadingHTTPServer((HOST, 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        slack = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, headers = slack.reply()
                slack.posts.append(
                    {"path": self.path, "body": json.loads(body or b"{}"), "status": status}
                )
                text = b"ok" if status == 200 else b"error"
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def reply(self) -> tuple[int, dict[str, str]]:
        if self.always is not None:
            return self.always, {}
        return self.replies.pop(0) if self.replies else (200, {})

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_port}{WEBHOOK_PATH}"

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [p["body"] for p in self.posts]

    @property
    def delivered(self) -> list[dict[str, Any]]:
        """The bodies Slack accepted (answered 200)."""
        return [p["body"] for p in self.posts if p["status"] == 200]

    def take(self) -> list[dict[str, Any]]:
        """The bodies posted since the last take, forgotten here."""
        taken = self.bodies
        self.posts.clear()
        return taken

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def store_webhook(clients: Clients, url: str, name: str = "peerguard/slack-webhook") -> str:
    """The webhook URL in a Secrets Manager secret, as deployed (never in the environment);
    its ARN, for the stack's SlackWebhookSecretArn."""
    secret = clients.client("secretsmanager").create_secret(Name=name, SecretString=url)
    return str(secret["ARN"])
