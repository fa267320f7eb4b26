"""The check registry: every check is a plain function with its metadata beside it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from peerguard.findings import Finding, Severity
from peerguard.model import Snapshot


@dataclass(frozen=True)
class Allowed:
    """One allowlist entry: a peer account, optionally narrowed."""

    account_id: str
    regions: frozenset[str] = frozenset()
    vpc_ids: frozenset[str] = frozenset()
    cidrs: tuple[str, ...] = ()

    def matches(self, owner_id: str, region: str, vpc_id: str) -> bool:
        return (
            self.account_id == owner_id
            and (not self.regions or region in self.regions)
            and (not self.vpc_ids or vpc_id in self.vpc_ids)
        )


@dataclass(frozen=True)
class CheckContext:
    """What checks need besides the network: configuration, never I/O."""

    allowlist: tuple[Allowed, ...] | None = None  # None = no allowlist configured
    peering_quota: int = 125  # active peerings per VPC (default AWS quota)
    route_quota: int = 50  # routes per route table (default AWS quota)
    quota_ratio: float = 0.8
    expiry_warning: timedelta = timedelta(hours=24)

    def allowed_accounts(self) -> frozenset[str]:
        return frozenset(a.account_id for a in self.allowlist or ())


CheckFn = Callable[[Snapshot, CheckContext], Iterable[Finding]]


@dataclass(frozen=True)
class Check:
    id: str
    severity: Severity  # the usual severity; a finding may raise it (e.g. near expiry)
    title: str
    risk: str
    fix: str
    iam_actions: tuple[str, ...]  # what the snapshot reader calls so this check can run
    fn: CheckFn = field(repr=False)

    def run(self, snapshot: Snapshot, ctx: CheckContext) -> list[Finding]:
        return list(self.fn(snapshot, ctx))


REGISTRY: dict[str, Check] = {}


def check(
    id: str,
    severity: Severity,
    title: str,
    risk: str,
    fix: str,
    iam_actions: tuple[str, ...],
) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        if id in REGISTRY:
            raise ValueError(f"check {id} registered twice")
        REGISTRY[id] = Check(id, severity, title, risk, fix, iam_actions, fn)
        return fn

    return register
