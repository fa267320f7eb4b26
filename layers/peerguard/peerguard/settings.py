"""Each function's configuration: one validated pydantic model, read from the environment
(template.yaml sets it) once per cold start.

A bad value fails with one line naming the variable, e.g.
`bad setting PEERGUARD_MODE='fixx': expected one of notify, dry-run, fix`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from peerguard.aws.regions import check_region
from peerguard.domain import catalogue
from peerguard.domain.allowlist import AllowlistError, parse_allowlist
from peerguard.domain.checks.context import DATABASE_PORTS
from peerguard.domain.flows.rules import Thresholds
from peerguard.domain.names import check_role_name
from peerguard.domain.plans.actions import Mode


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


def _bool(raw: Any) -> Any:
    if isinstance(raw, str):
        low = raw.strip().lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError("expected true or false")
    return raw


def _mode(raw: Any) -> Mode:
    if isinstance(raw, Mode):
        return raw
    if raw not in {m.value for m in Mode}:
        raise ValueError(f"expected one of {', '.join(m.value for m in Mode)}")
    return Mode(raw)


def _regions(raw: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        return tuple(check_region(r.strip()) for r in raw.split(",") if r.strip())
    return tuple(raw)


def _overrides(raw: Any) -> dict[str, Mode]:
    """`route.blackhole=fix,route.missing_reciprocal=dry-run`: a mode per check id."""
    if not isinstance(raw, str):
        return dict(raw)
    out: dict[str, Mode] = {}
    for item in raw.split(","):
        check_id, sep, mode = item.strip().partition("=")
        if not sep or not check_id.strip():
            raise ValueError(f"expected check.id=mode, got {item.strip()!r}")
        out[check_id.strip()] = _mode(mode.strip())
    return out


def _ports(raw: Any) -> tuple[int, ...]:
    """`1433,3306,5432`: TCP ports, 1-65535."""
    if not isinstance(raw, str):
        return tuple(raw)
    out = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise ValueError(f"expected comma-separated ports 1-65535, got {item!r}")
        out.append(int(item))
    return tuple(dict.fromkeys(out))


Flag = Annotated[bool, BeforeValidator(_bool)]
ModeSetting = Annotated[Mode, BeforeValidator(_mode)]


def env(name: str, **kw: Any) -> Any:
    """A field read from the environment variable `name`."""
    return Field(validation_alias=AliasChoices(name), **kw)


class FunctionSettings(BaseModel):
    """What every PeerGuard function reads: where state and notifications go, the allowlist."""

    # defer_build: a function builds the validator of its own settings only, when it reads them.
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, defer_build=True)

    table_name: str = env("PEERGUARD_TABLE", default="")
    topic_arn: str = env("PEERGUARD_TOPIC_ARN", default="")
    slack_secret_arn: str = env("PEERGUARD_SLACK_SECRET_ARN", default="")
    security_hub: Flag = env("PEERGUARD_SECURITY_HUB", default=False)
    notify_dlq_url: str = env("PEERGUARD_NOTIFY_DLQ_URL", default="")
    dedup_hours: int = env("PEERGUARD_DEDUP_HOURS", default=24, ge=1, le=720)
    peer_regions: Annotated[tuple[str, ...], BeforeValidator(_regions)] = env(
        "PEERGUARD_PEER_REGIONS", default=()
    )
    allowlist: str = env("PEERGUARD_ALLOWLIST", default="")
    allowlist_parameter: str = env("PEERGUARD_ALLOWLIST_PARAMETER", default="")
    mode: ModeSetting = env("PEERGUARD_MODE", default=Mode.NOTIFY)
    max_changes: int = env("PEERGUARD_MAX_CHANGES", default=10, ge=1, le=100)
    # The read-only role (org/member-role.yaml, under /peerguard/) assumed in the far account
    # of a cross-account peering to judge that side too; empty = off.
    member_role_name: str = env("PEERGUARD_MEMBER_ROLE_NAME", default="")
    # The organization's one topic / event bus (org/central.yaml): findings go there too.
    central_topic_arn: str = env("PEERGUARD_CENTRAL_TOPIC_ARN", default="")
    central_bus_arn: str = env("PEERGUARD_CENTRAL_BUS_ARN", default="")
    # Ports sg.open_to_world reports open to the internet, besides SSH and RDP.
    database_ports: Annotated[tuple[int, ...], BeforeValidator(_ports)] = env(
        "PEERGUARD_DATABASE_PORTS", default=DATABASE_PORTS
    )

    @field_validator("member_role_name")
    @classmethod
    def _role_name(cls, raw: str) -> str:
        return check_role_name(raw) if raw.strip() else ""

    @field_validator("central_topic_arn", "central_bus_arn")
    @classmethod
    def _arn(cls, raw: str, info: ValidationInfo) -> str:
        kind = "sns" if info.field_name == "central_topic_arn" else "events"
        parts = raw.strip().split(":")
        if raw.strip() and (len(parts) < 6 or parts[0] != "arn" or parts[2] != kind):
            raise ValueError(f"expected an {kind} ARN")
        return raw.strip()

    @field_validator("allowlist")
    @classmethod
    def _allowlist(cls, raw: str) -> str:
        # Checked here so a bad stack parameter fails the cold start with its name;
        # the SSM parameter, read at run time, is checked by the provider.
        if raw.strip():
            try:
                parse_allowlist(raw)
            except AllowlistError as e:
                raise ValueError(str(e)) from None
        return raw.strip()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        environ = os.environ if environ is None else environ
        raw: dict[str, str] = {}
        for f in cls.model_fields.values():
            alias = f.validation_alias
            assert isinstance(alias, AliasChoices)
            var = str(alias.choices[0])
            value = environ.get(var, "").strip()
            if value:
                raw[var] = value
        try:
            return cls.model_validate(raw)
        except ValidationError as e:
            first = e.errors()[0]
            var = str(first["loc"][0]) if first["loc"] else "settings"
            msg = first["msg"].removeprefix("Value error, ")
            raise SettingsError(f"bad setting {var}={raw.get(var)!r}: {msg}") from None


class RemediatingSettings(FunctionSettings):
    """Functions that may fix what they find."""

    mode_overrides: Annotated[dict[str, Mode], BeforeValidator(_overrides)] = env(
        "PEERGUARD_MODE_OVERRIDES", default_factory=dict
    )
    fix_dns: Flag = env("PEERGUARD_FIX_DNS", default=False)
    # The stack's own log group and delivery role (FixFlowLogs): where a missing flow log is
    # created. Empty: flowlogs.disabled proposes the call, never makes it.
    flow_log_group: str = env("PEERGUARD_FLOW_LOG_GROUP", default="")
    flow_log_role_arn: str = env("PEERGUARD_FLOW_LOG_ROLE_ARN", default="")

    @field_validator("mode_overrides")
    @classmethod
    def _known_checks(cls, overrides: dict[str, Mode]) -> dict[str, Mode]:
        known = catalogue.checks()
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"unknown check id(s) {', '.join(unknown)}")
        return overrides


class SweepSettings(RemediatingSettings):
    pass


class ChangeAuditorSettings(RemediatingSettings):
    grace_queue_url: str = env("PEERGUARD_GRACE_QUEUE_URL", default="")
    grace_minutes: int = env("PEERGUARD_GRACE_MINUTES", default=10, ge=0, le=15)


class AcceptanceSettings(FunctionSettings):
    auto_accept: Flag = env("PEERGUARD_AUTO_ACCEPT", default=False)
    accept_routes: Flag = env("PEERGUARD_ACCEPT_ROUTES", default=True)
    accept_dns: Flag = env("PEERGUARD_ACCEPT_DNS", default=False)
    reject_unlisted_after_hours: int = env("PEERGUARD_REJECT_AFTER_HOURS", default=0, ge=0, le=168)


class FlowSettings(FunctionSettings):
    """The flow-log analyzer: window, when to push the aggregation down, rule thresholds."""

    window_minutes: int = env("PEERGUARD_FLOW_WINDOW_MINUTES", default=15, ge=1, le=60)
    ephemeral_from: int = env("PEERGUARD_FLOW_EPHEMERAL_FROM", default=32768, ge=1024, le=65535)
    # Above these volumes the aggregation runs in Athena (S3 bytes listed for the window)
    # or Logs Insights (log events read), not in the function.
    pushdown_s3_bytes: int = env("PEERGUARD_FLOW_PUSHDOWN_S3_BYTES", default=1 << 30, ge=0)
    pushdown_log_events: int = env("PEERGUARD_FLOW_PUSHDOWN_LOG_EVENTS", default=2_000_000, ge=0)
    athena_workgroup: str = env("PEERGUARD_FLOW_ATHENA_WORKGROUP", default="primary")
    athena_database: str = env("PEERGUARD_FLOW_ATHENA_DATABASE", default="peerguard")
    athena_table: str = env("PEERGUARD_FLOW_ATHENA_TABLE", default="vpc_flow_lines")
    athena_output: str = env("PEERGUARD_FLOW_ATHENA_OUTPUT", default="")
    scan_ports: int = env("PEERGUARD_FLOW_SCAN_PORTS", default=20, ge=1)
    scan_destinations: int = env("PEERGUARD_FLOW_SCAN_DESTINATIONS", default=20, ge=1)
    reject_spike_factor: float = env("PEERGUARD_FLOW_REJECT_SPIKE_FACTOR", default=10.0, gt=1)
    reject_spike_floor: int = env("PEERGUARD_FLOW_REJECT_SPIKE_FLOOR", default=500, ge=0)
    volume_spike_factor: float = env("PEERGUARD_FLOW_VOLUME_SPIKE_FACTOR", default=10.0, gt=1)
    volume_spike_floor: int = env("PEERGUARD_FLOW_VOLUME_SPIKE_FLOOR", default=100_000_000, ge=0)
    learning_windows: int = env("PEERGUARD_FLOW_LEARNING_WINDOWS", default=12, ge=1)
    # The analyzer (a schedule): a window is analysed once its end is this far in the past,
    # so records delivered late (up to the delay) are in it, and it is analysed only once.
    delivery_delay_minutes: int = env(
        "PEERGUARD_FLOW_DELIVERY_DELAY_MINUTES", default=15, ge=0, le=120
    )
    # The first run (no watermark yet) starts this far back: 12 windows warm the baseline.
    backfill_minutes: int = env("PEERGUARD_FLOW_BACKFILL_MINUTES", default=180, ge=0, le=10080)
    # Per run at most this many windows; the rest are carried to the next run.
    max_windows: int = env("PEERGUARD_FLOW_MAX_WINDOWS", default=16, ge=1, le=672)
    # A new window starts only with this many seconds left before Lambda's deadline, plus
    # the longest window so far in the run.
    reserve_seconds: float = env("PEERGUARD_FLOW_RESERVE_SECONDS", default=60.0, ge=0, le=600)
    # Above the volume thresholds: push the aggregation down to Athena / Logs Insights
    # (off: the embedded engine reads up to the threshold and says the window was cut).
    pushdown: Flag = env("PEERGUARD_FLOW_PUSHDOWN", default=False)

    @field_validator("athena_database", "athena_table")
    @classmethod
    def _athena_name(cls, raw: str) -> str:
        if not raw or not raw.replace("_", "").isalnum() or raw != raw.lower():
            raise ValueError("expected lowercase letters, digits and underscores")
        return raw

    def thresholds(self) -> Thresholds:
        return Thresholds(
            scan_ports=self.scan_ports,
            scan_destinations=self.scan_destinations,
            reject_spike_factor=self.reject_spike_factor,
            reject_spike_floor=self.reject_spike_floor,
            volume_spike_factor=self.volume_spike_factor,
            volume_spike_floor=self.volume_spike_floor,
            learning_windows=self.learning_windows,
        )
