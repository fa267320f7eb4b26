"""Audit many accounts at once: a bounded pool of workers, each account's failure kept to
itself, one merged report (`peerguard audit --accounts ... | --organization`).

Every account is read through the member role (org/member-role.yaml), assumed from the
caller's own credentials; the far sides of its cross-account peerings are read through the
same roles (each account is assumed once per run, whichever worker needs it first). A
peering seen from both sides is one peering and each finding is reported once
(`peerguard.domain.accounts.merge`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from peerguard.aws.clients import Clients
from peerguard.aws.members import MemberAccess
from peerguard.domain.accounts import merge, merged_peerings
from peerguard.domain.catalogue import Entry
from peerguard.domain.checks import CheckContext
from peerguard.domain.findings import Finding, Severity
from peerguard.domain.model import Snapshot
from peerguard.usecases.pipeline import AuditResult, audit

DEFAULT_WORKERS = 8
ACTIVE = "ACTIVE"

Progress = Callable[[int, int, str, str], None]  # (done, total, account, outcome)


def organization_accounts(clients: Clients) -> list[str]:
    """The active accounts of the caller's organization (Organizations ListAccounts, every
    page; callable from the management account or a delegated administrator)."""
    org = clients.client("organizations")
    out: list[str] = []
    # 20: the most ListAccounts returns per page
    for page in org.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": 20}):
        for acct in page.get("Accounts", []):
            # `State` replaces the deprecated `Status`; either says ACTIVE.
            if (acct.get("State") or acct.get("Status")) == ACTIVE:
                out.append(str(acct["Id"]))
    return sorted(set(out))


@dataclass(frozen=True)
class AccountFailure:
    account_id: str
    reason: str

    def line(self) -> str:
        return f"account {self.account_id}: {self.reason}"


@dataclass
class AccountsAudit:
    """The merged report of many accounts' audits."""

    accounts: list[str]
    results: dict[str, AuditResult]
    failures: list[AccountFailure]
    findings: list[Finding]
    workers: int
    seconds: float
    calls_per_account: dict[str, int] = field(default_factory=dict)

    @property
    def snapshot(self) -> Snapshot | None:
        snaps = [r.snapshot for r in self.results.values()]
        return reduce(Snapshot.merged, snaps) if snaps else None

    def merged(self) -> AuditResult:
        """One AuditResult of everything (for the table renderer)."""
        snap = self.snapshot
        assert snap is not None, "no account was audited"
        checks = sorted({c for r in self.results.values() for c in r.checks})
        snap = snap.model_copy(update={"peerings": merged_peerings(self.snapshots())})
        return AuditResult(
            snap,
            self.findings,
            checks,
            api_calls=sum(self.calls_per_account.values()),
            extra=self._extra(),
        )

    def snapshots(self) -> Iterable[Snapshot]:
        return (r.snapshot for r in self.results.values())

    def at_or_above(self, level: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity.rank >= level.rank]

    def _extra(self) -> dict[str, Any]:
        return {
            "accounts": len(self.accounts),
            "accounts_audited": sorted(self.results),
            "accounts_failed": [
                {"account_id": f.account_id, "reason": f.reason} for f in self.failures
            ],
            "api_calls_by_account": dict(sorted(self.calls_per_account.items())),
            "workers": self.workers,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> dict[str, Any]:
        sev = Counter(f.severity.value for f in self.findings)
        warnings = [
            f"account {acct}: {w}" for acct, r in sorted(self.results.items()) for w in r.warnings
        ]
        return {
            "total": len(self.findings),
            "by_severity": {s.value: sev.get(s.value, 0) for s in reversed(Severity)},
            "by_check": dict(sorted(Counter(f.check_id for f in self.findings).items())),
            "peerings": len(merged_peerings(self.snapshots())),
            "vpcs": len({v for s in self.snapshots() for v in s.vpcs}),
            "regions": sorted({r for s in self.snapshots() for _, r in s.readable}),
            "api_calls": sum(self.calls_per_account.values()),
            "warnings": warnings,
            **self._extra(),
        }

    def to_json(self) -> dict[str, Any]:
        return {"findings": [f.to_json() for f in self.findings], "summary": self.summary()}


def _reason(e: BaseException) -> str:
    """One line: what went wrong for one account."""
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        return f"AWS error {err.get('Code')}: {err.get('Message')}"
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def audit_accounts(
    base: Clients,
    accounts: Sequence[str],
    role_name: str,
    regions: Sequence[str],
    ctx: CheckContext,
    checks: Sequence[Entry] | None = None,
    *,
    max_workers: int = DEFAULT_WORKERS,
    organization: frozenset[str] | None = None,
    progress: Progress | None = None,
) -> AccountsAudit:
    """Audit `accounts` (each through the member role `role_name`, the caller's own account
    with its own credentials) with at most `max_workers` at a time; merge the reports."""
    if max_workers < 1:
        raise ValueError(f"max_workers must be 1 or more, not {max_workers}")
    accounts = list(dict.fromkeys(accounts))
    started = time.perf_counter()
    base.client("sts")  # made once here: the workers share it (a client is thread-safe)
    members = MemberAccess(base, role_name, organization, shared_tally=False)
    results: dict[str, AuditResult] = {}
    failures: list[AccountFailure] = []

    def one(account: str) -> AuditResult:
        clients, why = members.clients_for(account)
        if clients is None:
            raise _Unreadable(why)
        return audit(clients, regions, ctx, checks, members=members)

    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="peerguard") as pool:
        futures = {pool.submit(one, a): a for a in accounts}
        for done, future in enumerate(as_completed(futures), 1):
            account = futures[future]
            try:
                result = future.result()
            except _Unreadable as e:
                failures.append(AccountFailure(account, str(e)))
                outcome = "failed"
            except (ClientError, BotoCoreError, ValueError, OSError) as e:
                failures.append(AccountFailure(account, _reason(e)))
                outcome = "failed"
            except Exception as e:  # a bug in one account's audit must not stop the others
                failures.append(AccountFailure(account, f"internal error {_reason(e)}"))
                outcome = "failed"
            else:
                results[account] = result
                n = len(result.findings)
                outcome = f"{n} finding{'' if n == 1 else 's'}"
            if progress is not None:
                progress(done, len(accounts), account, outcome)
    findings = merge([(results[a].snapshot, results[a].findings) for a in sorted(results)])
    return AccountsAudit(
        accounts=accounts,
        results=results,
        failures=sorted(failures, key=lambda f: f.account_id),
        findings=findings,
        workers=max_workers,
        seconds=time.perf_counter() - started,
        calls_per_account=members.calls_by_account(),
    )


class _Unreadable(Exception):
    """The account's member role could not be assumed (the message says why)."""
