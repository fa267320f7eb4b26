"""Configuration from the environment (set by template.yaml), validated once, read lazily.

A bad value fails with one line naming the variable, e.g.
`bad setting PEERGUARD_MODE='fixx': expected one of notify, dry-run, fix`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, TypeVar, cast

from peerguard.aws.clients import check_region
from peerguard.checks.registry import Allowed
from peerguard.model import net

Mode = Literal["notify", "dry-run", "fix"]
MODES: tuple[Mode, ...] = ("notify", "dry-run", "fix")
_ACCOUNT = re.compile(r"^\d{12}$")

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    mode: Mode = "notify"
    mode_overrides: tuple[tuple[str, str], ...] = ()  # (check id, mode)
    fix_dns: bool = False
    max_changes: int = 10
    allowlist: tuple[Allowed, ...] | None = None
    allowlist_parameter: str = ""
    auto_accept: bool = False
    accept_routes: bool = True  # after accepting: return routes in tables tagged for it
    accept_dns: bool = False  # after accepting: allow DNS resolution from the requester
    reject_unlisted_after_hours: int = 0  # 0 = never reject, only alert
    peer_regions: tuple[str, ...] = ()
    table_name: str = ""
    topic_arn: str = ""
    slack_secret_arn: str = ""
    security_hub: bool = False
    notify_dlq_url: str = ""
    grace_queue_url: str = ""
    grace_minutes: int = 10
    dedup_hours: int = 24

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def get(name: str, parse: Callable[[str], T], default: T) -> T:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                return parse(raw)
            except (ValueError, TypeError) as e:
                raise SettingsError(f"bad setting {name}={raw!r}: {e}") from None

        return cls(
            mode=get("PEERGUARD_MODE", parse_mode, "notify"),
            mode_overrides=get("PEERGUARD_MODE_OVERRIDES", parse_overrides, ()),
            fix_dns=get("PEERGUARD_FIX_DNS", parse_bool, False),
            max_changes=get("PEERGUARD_MAX_CHANGES", _bounded(1, 100), 10),
            allowlist=get("PEERGUARD_ALLOWLIST", parse_allowlist, None),
            allowlist_parameter=env.get("PEERGUARD_ALLOWLIST_PARAMETER", "").strip(),
            auto_accept=get("PEERGUARD_AUTO_ACCEPT", parse_bool, False),
            accept_routes=get("PEERGUARD_ACCEPT_ROUTES", parse_bool, True),
            accept_dns=get("PEERGUARD_ACCEPT_DNS", parse_bool, False),
            reject_unlisted_after_hours=get("PEERGUARD_REJECT_AFTER_HOURS", _bounded(0, 168), 0),
            peer_regions=get("PEERGUARD_PEER_REGIONS", _regions, ()),
            table_name=env.get("PEERGUARD_TABLE", "").strip(),
            topic_arn=env.get("PEERGUARD_TOPIC_ARN", "").strip(),
            slack_secret_arn=env.get("PEERGUARD_SLACK_SECRET_ARN", "").strip(),
            security_hub=get("PEERGUARD_SECURITY_HUB", parse_bool, False),
            notify_dlq_url=env.get("PEERGUARD_NOTIFY_DLQ_URL", "").strip(),
            grace_queue_url=env.get("PEERGUARD_GRACE_QUEUE_URL", "").strip(),
            grace_minutes=get("PEERGUARD_GRACE_MINUTES", _bounded(0, 15), 10),
            dedup_hours=get("PEERGUARD_DEDUP_HOURS", _bounded(1, 720), 24),
        )


@cache
def settings() -> Settings:
    """The process-wide settings, parsed on first use (not at import)."""
    return Settings.from_env()


def parse_mode(raw: str) -> Mode:
    if raw not in MODES:
        raise ValueError(f"expected one of {', '.join(MODES)}")
    return cast(Mode, raw)


def parse_overrides(raw: str) -> tuple[tuple[str, str], ...]:
    """`route.blackhole=fix,route.missing_reciprocal=dry-run`: a mode per check id."""
    out = []
    for item in raw.split(","):
        check_id, sep, mode = item.strip().partition("=")
        if not sep or not check_id:
            raise ValueError(f"expected check.id=mode, got {item.strip()!r}")
        out.append((check_id.strip(), parse_mode(mode.strip())))
    return tuple(out)


def parse_bool(raw: str) -> bool:
    low = raw.lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise ValueError("expected true or false")


def _bounded(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not lo <= value <= hi:
            raise ValueError(f"expected a whole number from {lo} to {hi}")
        return value

    return parse


def _regions(raw: str) -> tuple[str, ...]:
    return tuple(check_region(r.strip()) for r in raw.split(",") if r.strip())


def _account(value: Any) -> str:
    text = str(value).strip()
    if not _ACCOUNT.match(text):
        raise ValueError(f"bad account id {text!r} (expected 12 digits)")
    return text


def parse_allowlist(raw: str) -> tuple[Allowed, ...]:
    """Comma-separated account ids, or a JSON list of entries narrowed by region/VPC/CIDR:
    `[{"account_id": "111122223333", "regions": ["eu-west-1"], "vpc_ids": ["vpc-1"],
    "cidrs": ["10.8.0.0/16"]}]`.
    """
    raw = raw.strip()
    if not raw.startswith("["):
        return tuple(Allowed(_account(a)) for a in raw.split(",") if a.strip())
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"allowlist is not valid JSON ({e.msg} at char {e.pos})") from None
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "account_id" not in entry:
            raise ValueError(f"allowlist entry {i} must be an object with an account_id")
        unknown = set(entry) - {"account_id", "regions", "vpc_ids", "cidrs"}
        if unknown:
            raise ValueError(f"allowlist entry {i} has unknown keys: {', '.join(sorted(unknown))}")
        try:
            cidrs = tuple(str(net(c)) for c in entry.get("cidrs", []))
            regions = frozenset(check_region(r) for r in entry.get("regions", []))
        except ValueError as e:
            raise ValueError(f"allowlist entry {i}: {e}") from None
        out.append(
            Allowed(
                account_id=_account(entry["account_id"]),
                regions=regions,
                vpc_ids=frozenset(entry.get("vpc_ids", [])),
                cidrs=cidrs,
            )
        )
    return tuple(out)
