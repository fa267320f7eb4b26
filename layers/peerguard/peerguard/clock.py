"""The one clock. Domain code never reads it: the edges pass the time in."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)
