"""Slack: Block Kit messages per peering connection (pure), posted to an incoming webhook.

The webhook URL is a secret: read from Secrets Manager at first use, cached per container,
never logged, never put in an error message.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
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
        opener: Callable[..., Any] = urllib.request.urlopen,
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
        self.open = opener

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
                log.warning("slack message not delivered: %s", e)
                failures.append(Failure(message.notifications, str(e), message.payload))
        return failures

    def post(self, payload: dict[str, Any]) -> None:
        """POST one message; retry 429 (after Retry-After, bounded), 5xx and timeouts."""
        body = json.dumps(payload).encode()
        delays = backoff_delays(self.attempts, self.backoff)
        for attempt in range(self.attempts):
            request = urllib.request.Request(
                self.webhook(),
                data=body,
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            try:
                with self.open(request, timeout=self.timeout) as resp:
                    resp.read()
                return
            except urllib.error.HTTPError as e:
                if e.code == 429:
                    wait = _retry_after(e.headers.get("Retry-After"), delays, attempt)
                    if wait > self.max_retry_after:
                        raise SlackError(f"Slack rate limited for {wait:.0f}s") from None
                    error = SlackError("Slack rate limited (429)")
                elif e.code >= 500:
                    wait, error = _next(delays, attempt), SlackError(f"Slack HTTP {e.code}")
                else:  # 4xx: the payload or the webhook is wrong; retrying will not help
                    raise SlackError(f"Slack HTTP {e.code}: {_reason(e)}") from None
            except (urllib.error.URLError, TimeoutError, OSError) as e:
                reason = getattr(e, "reason", e)
                wait, error = _next(delays, attempt), SlackError(f"Slack unreachable: {reason}")
            if attempt + 1 < self.attempts:
                self.sleep(wait)
        raise error


def _next(delays: list[float], attempt: int) -> float:
    return delays[attempt] if attempt < len(delays) else 0.0


def _retry_after(header: str | None, delays: list[float], attempt: int) -> float:
    try:
        return max(0.0, float(header)) if header else _next(delays, attempt)
    except ValueError:
        return _next(delays, attempt)


def _reason(e: urllib.error.HTTPError) -> str:
    try:
        return e.read(200).decode(errors="replace").strip() or str(e.reason)
    except Exception:
        return str(e.reason)
