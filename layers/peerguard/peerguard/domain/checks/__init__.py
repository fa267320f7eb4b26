"""The checks: pure functions Snapshot -> findings, registered in the catalogue.

Importing this package registers every check.
"""

from __future__ import annotations

from collections.abc import Iterable

from peerguard.domain import catalogue
from peerguard.domain.catalogue import Entry

# Registration side effect, in catalogue order (DESIGN section 4): peerings, routes,
# security groups, network ACLs, flow logs.
# isort: off
from peerguard.domain.checks import peering, routes  # noqa: F401
from peerguard.domain.checks import security_groups, nacl, flowlogs  # noqa: F401

# isort: on
from peerguard.domain.checks.context import CheckContext
from peerguard.domain.findings import Finding, sort_findings
from peerguard.domain.model import Snapshot

__all__ = ["CheckContext", "resolve", "run_checks"]


def resolve(ids: Iterable[str] | None) -> list[Entry]:
    """The checks to run (all when `ids` is None); unknown or no ids are an error."""
    known = catalogue.checks()
    if ids is None:
        return list(known.values())
    wanted = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
    if not wanted:
        raise ValueError("no check id given (see `peerguard checks` for the list)")
    unknown = [i for i in wanted if i not in known]
    if unknown:
        raise ValueError(
            f"unknown check id(s): {', '.join(unknown)} (see `peerguard checks` for the list)"
        )
    return [known[i] for i in wanted]


def runnable(checks: Iterable[Entry], ctx: CheckContext) -> list[Entry]:
    """The checks that can be judged: those needing an allowlist only when one is usable.

    An unusable allowlist is not "no allowlist": its checks do not run, so their earlier
    findings are neither confirmed nor resolved.
    """
    broken = bool(ctx.allowlist.error)
    return [c for c in checks if not (broken and c.needs_allowlist)]


def run_checks(
    snapshot: Snapshot, ctx: CheckContext | None = None, checks: Iterable[Entry] | None = None
) -> list[Finding]:
    ctx = ctx or CheckContext()
    found: list[Finding] = []
    for c in checks if checks is not None else catalogue.checks().values():
        found.extend(c.run(snapshot, ctx))
    return sort_findings(found)
