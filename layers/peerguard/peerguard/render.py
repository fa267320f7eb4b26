"""Text for people: audit findings grouped by peering, and what the executor did. Pure."""

from __future__ import annotations

import textwrap

from peerguard.domain.findings import Finding
from peerguard.domain.plans.actions import Report, Status
from peerguard.usecases.pipeline import AuditResult

WIDTH = 100
_ORDER = (
    Status.APPLIED,
    Status.VERIFIED,
    Status.FAILED,
    Status.PENDING,
    Status.SKIPPED,
    Status.PROPOSED,
)


def _group_key(f: Finding) -> str:
    return f.peering_connection_id or f.vpc_id or f.resource_id


def finding_lines(f: Finding, width: int = WIDTH) -> list[str]:
    """One finding: severity, check and resource, the wrapped detail, and the fix call."""
    lines = [f"  {f.severity.value.upper():<8} {f.check_id:<34} {f.resource_id}"]
    # Never break on hyphens: ids such as pcx-0a1b2c3d must stay whole to be copied.
    body = textwrap.wrap(f.detail, width - 11, break_on_hyphens=False)
    lines.extend(f"           {b}" for b in body)
    if f.remediation:
        mode = "auto-fixable" if f.remediation.automatic else "manual"
        lines.append(f"           fix ({mode}): {f.remediation.cli()}")
    return lines


def audit_table(result: AuditResult) -> str:
    s = result.summary()
    lines = [
        f"PeerGuard audit of account {s['account_id']} in {', '.join(s['regions']) or '-'}: "
        f"{s['vpcs']} VPCs, {s['peerings']} peerings, {s['route_tables']} route tables, "
        f"{s['api_calls']} API calls",
    ]
    for w in result.warnings:
        lines.append(f"WARNING: {w}")
    if not result.findings:
        lines.append("No findings.")
        return "\n".join(lines) + "\n"
    groups: dict[str, list[Finding]] = {}
    for f in result.findings:  # already most severe first
        groups.setdefault(_group_key(f), []).append(f)
    for name, items in groups.items():
        lines.append("")
        lines.append(name)
        for f in items:
            lines.extend(finding_lines(f))
    counts = ", ".join(f"{n} {k}" for k, n in s["by_severity"].items() if n)
    lines.append("")
    lines.append(f"{s['total']} findings: {counts}")
    return "\n".join(lines) + "\n"


def changes_table(report: Report) -> str:
    """What the executor did with each planned call, grouped by outcome."""
    by = {s: report.with_status(s) for s in _ORDER}
    counts = ", ".join(f"{len(v)} {s.value}" for s, v in by.items() if v)
    lines = [
        f"Remediation (mode {report.mode.value}, at most {report.max_changes} changes): "
        f"{counts or 'nothing to do'}"
    ]
    for status, items in by.items():
        for o in items:
            f = o.finding
            lines.append(f"  {status.value.upper():<9} {f.check_id:<34} {f.resource_id}")
            lines.append(f"            call: {o.action.call.cli()}")
            if status is Status.APPLIED and o.action.undo is not None:
                lines.append(f"            undo: {o.action.undo.cli()}")
            lines.extend(
                f"            {w}"
                for w in textwrap.wrap(o.message, WIDTH - 12, break_on_hyphens=False)
            )
    return "\n".join(lines) + "\n"
