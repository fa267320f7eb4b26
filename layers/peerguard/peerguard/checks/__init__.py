"""The check catalogue. Importing this package registers every check."""

from __future__ import annotations

from collections.abc import Iterable

from peerguard.checks import peering, routes  # noqa: F401  (registration side effect)
from peerguard.checks.registry import REGISTRY, Allowed, Check, CheckContext
from peerguard.findings import Finding, sort_findings
from peerguard.model import Snapshot

__all__ = ["REGISTRY", "Allowed", "Check", "CheckContext", "resolve", "run_checks"]


def resolve(ids: Iterable[str] | None) -> list[Check]:
    """The checks to run; unknown ids are an error that names them."""
    if ids is None:
        return list(REGISTRY.values())
    wanted = [i.strip() for i in ids if i.strip()]
    unknown = [i for i in wanted if i not in REGISTRY]
    if unknown:
        raise ValueError(
            f"unknown check id(s): {', '.join(unknown)} (see `peerguard checks` for the list)"
        )
    return [REGISTRY[i] for i in wanted]


def run_checks(
    snapshot: Snapshot, ctx: CheckContext | None = None, checks: Iterable[Check] | None = None
) -> list[Finding]:
    ctx = ctx or CheckContext()
    found: list[Finding] = []
    for c in checks if checks is not None else REGISTRY.values():
        found.extend(c.run(snapshot, ctx))
    return sort_findings(found)
