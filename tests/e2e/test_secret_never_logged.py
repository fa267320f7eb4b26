"""The Slack webhook URL is a secret: a Slack failure leaves it in no log line, metric,
error message, handler result or dead letter.

Slack fails for real here (a loopback webhook answering 500, a listener that drops the
connection, one that never answers); every byte the handler writes is captured: stdout and
stderr (Powertools JSON logs and EMF metrics), every log record of every logger at DEBUG,
the handler's result, and the bodies and attributes of every dead letter.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from peerguard.notify import SlackNotifier
from peerguard_lab.slack import WEBHOOK_PATH, FakeSlack, store_webhook
from peerguard_lab.stack import Stack
from tests.e2e.conftest import Pair, emf_metrics
from tests.e2e.test_change_auditor import AUDITOR, create_route_event
from tests.integration.test_notify_delivery import note

STDOUT: list[str] = []  # what the handler printed: its JSON logs and EMF metrics
# A webhook path as Slack issues them (/services/T.../B.../token), with parts no other
# text would contain; the loopback servers answer on any path.
TOKEN = "Zq7xWebhookToken4Kp"
PATH = f"/services/TLEAKTEAM/BLEAKHOOK/{TOKEN}"


def leaks(text: str, url: str) -> list[str]:
    """What of the webhook appears in `text`: the URL, its path, or any part of the path."""
    return [s for s in (url, PATH, TOKEN, "TLEAKTEAM", "BLEAKHOOK") if s in text]


def deploy_with_webhook(clients: Any, url: str, **parameters: str) -> Stack:
    """The stack with the webhook URL in Secrets Manager, as deployed."""
    secret = store_webhook(clients, url, name=f"peerguard/slack-{len(url)}-{time.time_ns()}")
    return Stack(
        {"SlackWebhookSecretArn": secret, "GracePeriodMinutes": "0", **parameters}, clients
    )


@pytest.fixture
def everything(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> Callable[[], str]:
    """All the output since the last call, as one text: stdout and stderr (where the
    handler's JSON logs and EMF metrics go), and every log record of every logger from
    DEBUG up (message, arguments, exception text). STDOUT keeps the last stdout."""
    caplog.set_level(logging.DEBUG)  # the root logger: slack_sdk, urllib3 and the rest too

    def take() -> str:
        captured = capsys.readouterr()
        STDOUT[:] = [captured.out]
        out = [captured.out, captured.err]
        for r in caplog.records:
            if r.name.startswith("botocore"):
                # botocore's DEBUG wire log prints every response body, GetSecretValue's
                # too: any secret of any program. Lambda runs the root logger at INFO
                # (its ApplicationLogLevel); never run it at DEBUG with real secrets.
                continue
            out.append(r.getMessage())
            out.append(repr(r.args))
            if r.exc_info:
                out.append(logging.Formatter().formatException(r.exc_info))
        caplog.clear()
        return "\n".join(out)

    return take


def dropping_listener() -> tuple[socket.socket, str]:
    """A webhook URL on a port that accepts and closes at once (connection reset)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.getsockname()[1]}{PATH}"


def silent_listener() -> tuple[socket.socket, str, list[socket.socket]]:
    """A webhook URL whose server reads the request and never answers (a timeout)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            held.append(conn)  # kept open, never answered

    threading.Thread(target=serve, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.getsockname()[1]}{PATH}", held


def assert_nowhere(url: str, world_stack: Stack, result: Any, text: str) -> None:
    dead = world_stack.messages("NotificationDeadLetterQueue")
    assert dead, "the failure must be dead-lettered (else this test proves nothing)"
    for d in dead:
        assert not leaks(json.dumps(d["body"]) + json.dumps(d["attributes"]), url), d
    assert not leaks(json.dumps(result, default=str), url), result
    assert not leaks(text, url), [line for line in text.splitlines() if leaks(line, url)][:5]


@pytest.mark.parametrize("log_level", ["INFO", "DEBUG"])
def test_slack_answering_500_leaves_the_webhook_nowhere(
    clients: Any,
    slack: tuple[FakeSlack, str],
    sleeps: list[float],
    one_sided: Pair,
    everything: Callable[[], str],
    log_level: str,
) -> None:
    # Given Slack answering 500 to every post, with the stack logging at LOG_LEVEL
    fake, base = slack
    url = base.replace(WEBHOOK_PATH, PATH)
    stack = deploy_with_webhook(clients, url, LogLevel=log_level)
    fake.always = 500
    everything()  # the set-up's own output (the test wrote the secret) is not the handler's

    # When a finding is announced
    result = stack.deliver(create_route_event(one_sided))[AUDITOR]

    # Then it was tried, failed and dead-lettered: logged, counted, carried
    assert [p["path"] for p in fake.posts] == [PATH] * 3
    assert result["notify"]["channels"]["slack"]["dead_lettered"] == 1
    text = everything()
    assert "Slack HTTP 500" in text  # the failure is reported...
    assert emf_metrics(STDOUT[-1])["slackFailed"] == 1  # ...counted in the metrics...
    # ...and the webhook appears in none of it
    assert_nowhere(url, stack, result, text)


def test_slack_dropping_the_connection_leaves_the_webhook_nowhere(
    clients: Any,
    sleeps: list[float],
    one_sided: Pair,
    everything: Callable[[], str],
) -> None:
    # Given a webhook whose server resets every connection (library exceptions carry URLs)
    srv, url = dropping_listener()
    try:
        stack = deploy_with_webhook(clients, url, LogLevel="DEBUG")
        everything()  # the set-up's output
        result = stack.deliver(create_route_event(one_sided))[AUDITOR]
    finally:
        srv.close()
    assert result["notify"]["channels"]["slack"]["dead_lettered"] == 1
    text = everything()
    assert "Slack unreachable" in text
    assert_nowhere(url, stack, result, text)


def test_slack_timing_out_leaves_the_webhook_nowhere(
    clients: Any, everything: Callable[[], str]
) -> None:
    # Given a webhook that never answers (the handlers' notifier, with a short timeout)
    srv, url, held = silent_listener()
    try:
        notifier = SlackNotifier(
            "never-answers",
            clients.client("secretsmanager"),
            timeout=1,
            attempts=2,
            sleep=lambda _: None,
            cache={},
        )
        notifier.cache["never-answers"] = url
        started = time.monotonic()
        (failure,) = notifier.deliver([note()])
        assert time.monotonic() - started < 10
    finally:
        srv.close()
        for conn in held:
            conn.close()
    # Then the failure says what happened, and nothing of the URL
    assert failure.error.startswith("Slack unreachable")
    text = everything()
    assert not leaks(failure.error + json.dumps(failure.payload) + text, url)
