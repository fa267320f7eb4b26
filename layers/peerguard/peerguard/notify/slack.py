"""Slack: Block Kit messages per peering connection (pure), posted to an incoming webhook.

The webhook URL is a secret: read from Secrets Manager at first use, cached per container,
never logged, never put in an error message.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from peerguard.domain.findings import Severity
from peerguard.notify import core
from peerguard.notify.core import (
    Failure,
    Notification,
    Sleep,
    Status,
    backoff_delays,
    console_url,
    finding_url,
    fix_text,
)

log = logging.getLogger(__name__)

MAX_BLOCKS = 50  # per message
MAX_TEXT = 3000  # per section text
MAX_HEADER = 150  # header blocks are plain text, 150 chars
DETAIL_BUDGET = 1400
FIX_BUDGET = 1000

EMOJI = {
    Severity.CRITICAL: ":rotating_light:",
    Severity.HIGH: ":red_circle:",
    Severity.MEDIUM: ":large_orange_circle:",
    Severity.LOW: ":large_yellow_circle:",
    Severity.INFO: ":information_source:",
}
LABEL = {
    Status.NEW: "New",
    Status.CHANGED: "Changed",
    Status.REPEAT: "Still open",
    Status.RESOLVED: "Resolved",
}


# -- rendering (pure) ------------------------------------------------------------------------


@dataclass(frozen=True)
class SlackMessage:
    payload: dict[str, Any]
    notifications: tuple[Notification, ...]


def escape(text: str) -> str:
    """Slack mrkdwn control characters (the only three it asks to escape)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def link(url: str | None, label: str) -> str:
    return f"<{url}|{escape(label)}>" if url else f"`{escape(label)}`"


def finding_text(n: Notification) -> str:
    """One finding as a section's mrkdwn: severity, resource, what is wrong, the fix."""
    f = n.finding
    sev = f.severity.value.upper()
    where = f"{f.account_id}, {f.region}" if f.region else f.account_id
    vpc = f" in {link(console_url(f.vpc_id, f.region), f.vpc_id)}" if f.vpc_id else ""
    resource = f"*Resource:* {link(finding_url(f), f.resource_id)}{vpc} ({escape(where)})"
    if n.resolved:
        lines = [
            f":white_check_mark: *RESOLVED* ~{sev}~ `{f.check_id}`",
            f"~{escape(f.title)}~",
            resource,
            f"No longer found at {n.observed_at:%Y-%m-%d %H:%M} UTC.",
        ]
        return clip("\n".join(lines), MAX_TEXT)
    lines = [
        f"{EMOJI[f.severity]} *{sev}* · {LABEL[n.status]} · `{f.check_id}`",
        f"*{escape(f.title)}*",
        resource,
        f"*What is wrong:* {escape(clip(f.detail, DETAIL_BUDGET))}",
    ]
    fix = fix_text(f)
    if f.remediation is not None:
        how = "PeerGuard applies it in fix mode" if f.remediation.automatic else "apply by hand"
        if f.remediation.reason:
            how += f": {f.remediation.reason}"
        lines.append(f"*Fix* ({escape(how)}):\n```{escape(clip(fix, FIX_BUDGET))}```")
    elif fix:
        lines.append(f"*Fix:* {escape(clip(fix, FIX_BUDGET))}")
    return clip("\n".join(lines), MAX_TEXT)


def group_key(n: Notification) -> tuple[str, str, str]:
    f = n.finding
    return (f.peering_connection_id or "", f.account_id, f.region)


def render(notifications: Sequence[Notification]) -> list[SlackMessage]:
    """Messages for Slack: one group per peering connection (findings without one are grouped
    per account and region), split so no message passes 50 blocks."""
    ordered = sorted(notifications, key=_order)
    groups: dict[tuple[str, str, str], list[Notification]] = {}
    for n in ordered:
        groups.setdefault(group_key(n), []).append(n)
    messages: list[SlackMessage] = []
    for key, members in groups.items():
        per_message = (MAX_BLOCKS - 2 + 1) // 2  # header + context, then section + divider each
        parts = [members[i : i + per_message] for i in range(0, len(members), per_message)]
        for i, part in enumerate(parts, 1):
            suffix = f" (part {i}/{len(parts)})" if len(parts) > 1 else ""
            messages.append(_message(key, part, len(members), suffix))
    return messages


def _order(n: Notification) -> tuple[Any, ...]:
    """Open before resolved, most severe first, then stable by peering and resource."""
    f = n.finding
    return (
        n.resolved,
        -f.severity.rank,
        f.peering_connection_id or "~",
        f.check_id,
        f.resource_id,
        f.fingerprint,
    )


def _message(
    key: tuple[str, str, str], part: list[Notification], total: int, suffix: str
) -> SlackMessage:
    pcx, account, region = key
    subject = pcx or f"{account} {region}".strip()
    open_count = sum(1 for n in part if not n.resolved)
    worst = max(
        (n.finding.severity for n in part if not n.resolved), key=lambda s: s.rank, default=None
    )
    summary = f"{total} finding{'s' if total != 1 else ''}"
    if worst is not None:
        summary += f", worst {worst.value}"
    if open_count < len(part):
        summary += f", {len(part) - open_count} resolved"
    header = clip(f"PeerGuard: {subject}{suffix}", MAX_HEADER)
    context = f"{summary} · account {account} · {region}"
    if pcx:
        context += f" · {link(console_url(pcx, region), 'open peering')}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(context, MAX_TEXT)}]},
    ]
    for i, n in enumerate(part):
        if i:
            blocks.append({"type": "divider"})
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": finding_text(n)}})
    payload = {"text": f"PeerGuard: {summary} on {subject}", "blocks": blocks}
    return SlackMessage(payload, tuple(part))


# -- delivery -------------------------------------------------------------------------------


class SlackError(RuntimeError):
    """Slack did not take a message. Never carries the webhook URL."""


_WEBHOOKS: dict[str, str] = {}  # per container: secret id -> URL

# slack-sdk logs the webhook URL: "Going to retry the same request: POST <url>" at INFO,
# the URL and body at DEBUG, the connection error at ERROR. Its client gets a logger of
# its own that drops everything; this module logs each failure, without the URL.
_SDK_LOG = logging.getLogger("peerguard.notify.slack_sdk")
_SDK_LOG.setLevel(logging.CRITICAL + 1)
_SDK_LOG.propagate = False


def webhook_from_secret(secret: str) -> str:
    """The secret holds the URL itself, or JSON with a `url` / `webhook_url` key."""
    value = secret.strip()
    if value.startswith("{"):
        try:
            data = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError("Slack secret is neither a URL nor valid JSON") from None
        value = str(data.get("url") or data.get("webhook_url") or "").strip()
    parts = urllib.parse.urlsplit(value)
    loopback = False
    with contextlib.suppress(ValueError):
        loopback = ipaddress.ip_address(parts.hostname or "").is_loopback
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise ValueError("Slack secret does not hold an https webhook URL")
    return value


class SlackNotifier:
    """Posts through slack-sdk's WebhookClient, whose retry handlers retry a rate limit
    (after Retry-After, up to `max_retry_after`), connection errors and 5xx with backoff.
    The URL stays inside: it is read from the secret and never put in a log or an error."""

    name = "slack"

    def __init__(
        self,
        secret_id: str,
        secrets: Any,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 1.0,
        max_retry_after: float = 30.0,
        sleep: Sleep | None = None,
        cache: dict[str, str] | None = None,
    ) -> None:
        if not secret_id:
            raise ValueError("no Slack secret given (set PEERGUARD_SLACK_SECRET_ARN)")
        self.secret_id = secret_id
        self.secrets = secrets
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.sleep = sleep or core.default_sleep  # looked up late: tests swap it
        self.cache = _WEBHOOKS if cache is None else cache

    def webhook(self) -> str:
        if self.secret_id not in self.cache:
            value = self.secrets.get_secret_value(SecretId=self.secret_id)["SecretString"]
            self.cache[self.secret_id] = webhook_from_secret(value)
        return self.cache[self.secret_id]

    def deliver(self, notifications: Sequence[Notification]) -> list[Failure]:
        failures = []
        for message in render(notifications):
            try:
                self.post(message.payload)
            except Exception as e:  # any failure of one message must not stop the others
                error = str(e) if isinstance(e, SlackError) else f"Slack: {type(e).__name__}"
                log.warning("slack message not delivered: %s", error)
                failures.append(Failure(message.notifications, error, message.payload))
        return failures

    def post(self, payload: dict[str, Any]) -> None:
        """POST one message; SlackError (never naming the URL) when it is not delivered."""
        from slack_sdk.webhook import WebhookClient  # imported when Slack is configured

        client = WebhookClient(
            self.webhook(),
            timeout=int(max(1, self.timeout)),
            retry_handlers=self._retries(),
            logger=_SDK_LOG,
        )
        try:
            resp = client.send_dict(payload)
        except Exception as e:  # connection errors that outlived the retries
            reason = getattr(e, "reason", None) or type(e).__name__
            raise SlackError(f"Slack unreachable: {reason}") from None
        if resp.status_code == 200:
            return
        if resp.status_code == 429:
            wait = _header(resp.headers, "Retry-After")
            raise SlackError(
                f"Slack rate limited for {wait}s" if wait else "Slack rate limited (429)"
            )
        if resp.status_code >= 500:
            raise SlackError(f"Slack HTTP {resp.status_code}")
        # 4xx: the payload or the webhook is wrong; retrying does not help.
        raise SlackError(f"Slack HTTP {resp.status_code}: {str(resp.body)[:200]}")

    def _retries(self) -> list[Any]:
        from slack_sdk.http_retry.builtin_handlers import (
            ConnectionErrorRetryHandler,
            RateLimitErrorRetryHandler,
        )
        from slack_sdk.http_retry.handler import RetryHandler

        retries, delays = self.attempts - 1, backoff_delays(self.attempts, self.backoff)
        sleep, bound = self.sleep, self.max_retry_after

        def backoff_then_next(state: Any) -> None:
            state.next_attempt_requested = True
            sleep(delays[min(state.current_attempt, len(delays) - 1)] if delays else 0.0)
            state.increment_current_attempt()

        class RateLimited(RateLimitErrorRetryHandler):
            def _can_retry(
                self, *, state: Any, request: Any, response: Any = None, error: Any = None
            ) -> bool:
                wait = _retry_after(response)
                return (
                    bool(
                        super()._can_retry(
                            state=state, request=request, response=response, error=error
                        )
                    )
                    and wait <= bound
                )

            def prepare_for_next_attempt(
                self, *, state: Any, request: Any, response: Any = None, error: Any = None
            ) -> None:
                state.next_attempt_requested = True
                sleep(_retry_after(response))
                state.increment_current_attempt()

        class Unreachable(ConnectionErrorRetryHandler):
            def prepare_for_next_attempt(
                self, *, state: Any, request: Any, response: Any = None, error: Any = None
            ) -> None:
                backoff_then_next(state)

        class ServerError(RetryHandler):
            def _can_retry(
                self, *, state: Any, request: Any, response: Any = None, error: Any = None
            ) -> bool:
                return response is not None and response.status_code >= 500

            def prepare_for_next_attempt(
                self, *, state: Any, request: Any, response: Any = None, error: Any = None
            ) -> None:
                backoff_then_next(state)

        return [RateLimited(retries), Unreachable(retries), ServerError(retries)]


def _header(headers: Any, name: str) -> str | None:
    for k, v in (headers or {}).items():
        if k.lower() == name.lower():
            return str(v[0] if isinstance(v, list) else v)
    return None


def _retry_after(response: Any) -> float:
    raw = _header(getattr(response, "headers", None), "Retry-After")
    try:
        return max(0.0, float(raw)) if raw else 1.0
    except ValueError:
        return 1.0
