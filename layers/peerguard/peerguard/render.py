"""Text for people: audit findings grouped by peering, the plan, what the executor did. Pure.

Ids are never cut (they are what people copy), and they come with what people recognise:
the Name tag and the CIDR blocks. Every EC2 call is shown in one notation, the AWS CLI line.
"""

from __future__ import annotations

import shlex
import textwrap
from collections.abc import Sequence
from typing import Any

from peerguard.domain.findings import Call, Finding
from peerguard.domain.flows.aggregates import WindowAggregates
from peerguard.domain.model import Snapshot
from peerguard.domain.overview import PeeringView, SideView
from peerguard.domain.plans.actions import Action, Mode, Report, Status
from peerguard.domain.reachability import PathResult
from peerguard.usecases.accounts import AccountsAudit
from peerguard.usecases.pipeline import AuditResult

WIDTH = 100
INDENT = " " * 11
_ORDER = (
    Status.APPLIED,
    Status.VERIFIED,
    Status.FAILED,
    Status.PENDING,
    Status.SKIPPED,
    Status.PROPOSED,
)
_IRREGULAR = {"policy": "policies", "entry": "entries", "this": "these"}


def plural(n: int, word: str) -> str:
    """'1 finding', '2 findings', '1 VPC', '3 VPCs'."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {_IRREGULAR.get(word, word + 's')}"


def _wrap(text: str, width: int, indent: str = INDENT) -> list[str]:
    # Never break on hyphens: ids such as pcx-0a1b2c3d must stay whole to be copied.
    return textwrap.wrap(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_on_hyphens=False,
        break_long_words=False,
    )


def label(snap: Snapshot | None, resource_id: str) -> str:
    """`vpc-0a1 (web, 10.0.0.0/16)`, `rtb-0b2 (web-private)`, or just the id."""
    if snap is None:
        return resource_id
    vpc = snap.vpcs.get(resource_id)
    if vpc is not None:
        name = vpc.tags.get("Name")
        facts = [name] if name else []
        return f"{resource_id} ({', '.join([*facts, *vpc.all_cidrs]) or vpc.region})"
    for tagged in (snap.route_tables.get(resource_id), snap.peerings.get(resource_id)):
        if tagged is not None and tagged.tags.get("Name"):
            return f"{resource_id} ({tagged.tags['Name']})"
    return resource_id


def _group_title(snap: Snapshot | None, f: Finding) -> str:
    pcx = snap.peerings.get(f.peering_connection_id or "") if snap else None
    if pcx is None:
        return label(snap, f.peering_connection_id or f.vpc_id or f.resource_id)
    r, a = pcx.requester, pcx.accepter
    sides = " <-> ".join(f"{label(snap, s.vpc_id)} in {s.owner_id}/{s.region}" for s in (r, a))
    return f"{label(snap, pcx.pcx_id)} [{pcx.status}]: {sides}"


def _fix_line(f: Finding) -> str:
    rem = f.remediation
    assert rem is not None
    if rem.automatic:
        how = "automatic in fix mode"
    elif rem.reason:
        how = f"by hand: {rem.reason}"
    else:
        how = "by hand"
    return f"fix ({how}): {rem.cli()}"


def finding_lines(f: Finding, width: int = WIDTH, snap: Snapshot | None = None) -> list[str]:
    """One finding: severity, check and resource, the wrapped detail, and the fix call."""
    lines = [f"  {f.severity.value.upper():<8} {f.check_id:<34} {label(snap, f.resource_id)}"]
    lines.extend(_wrap(f.detail, width))
    if f.remediation:
        lines.extend(_wrap(_fix_line(f), width))
    return lines


def audit_table(result: AuditResult) -> str:
    s, snap = result.summary(), result.snapshot
    lines = [
        f"PeerGuard audit of account {s['account_id']} in {', '.join(s['regions']) or '-'}: "
        f"{plural(s['vpcs'], 'VPC')}, {plural(s['peerings'], 'peering')}, "
        f"{plural(s['route_tables'], 'route table')}, {plural(s['api_calls'], 'API call')}",
    ]
    lines.extend(f"WARNING: {w}" for w in result.warnings)
    if not result.findings:
        lines.append("No findings.")
        return "\n".join(lines) + "\n"
    groups: dict[str, list[Finding]] = {}
    for f in result.findings:  # already most severe first
        groups.setdefault(_group_title(snap, f), []).append(f)
    for title, items in groups.items():
        lines += ["", *_wrap(title, WIDTH, indent="")]
        for f in items:
            lines.extend(finding_lines(f, snap=snap))
    counts = ", ".join(f"{n} {k}" for k, n in s["by_severity"].items() if n)
    lines += ["", f"{plural(s['total'], 'finding')}: {counts}"]
    return "\n".join(lines) + "\n"


def plan_table(actions: Sequence[Action], mode: Mode, max_changes: int) -> str:
    """Every call PeerGuard intends, before any is made (`--mode dry-run|fix`)."""
    auto = [a for a in actions if a.automatic and not (a.ignored or a.refused)]
    verb = "verify with DryRun" if mode is Mode.DRY_RUN else "make"
    lines = [
        f"Plan (mode {mode.value}, at most {plural(max_changes, 'change')}): "
        f"{plural(len(auto), 'call')} to {verb}, "
        f"{plural(len(actions) - len(auto), 'other proposal')} left to a person"
    ]
    for i, a in enumerate(auto, 1):
        lines.append(f"  {i}. {a.call.cli()}")
        lines.extend(_wrap(f"for {a.subject.check_id} on {a.subject.resource_id}", WIDTH, "     "))
    for a in actions:
        if a not in auto:
            lines.extend(_wrap(f"- by hand ({a.reason}): {a.call.cli()}", WIDTH, "  "))
    return "\n".join(lines) + "\n"


def plan_script(actions: Sequence[Action]) -> str:
    """The plan as a shell script of `aws ec2` calls (each with the call that undoes it)."""
    lines = [
        "#!/usr/bin/env bash",
        "# PeerGuard plan: review, then run. Each call is followed by its undo, commented out.",
        "set -euo pipefail",
    ]
    for a in actions:
        if not a.automatic or a.ignored or a.refused:
            continue
        lines += ["", f"# {a.subject.check_id} on {a.subject.resource_id}", _shell(a.call)]
        if a.undo is not None:
            lines.append(f"# undo: {_shell(a.undo)}")
    return "\n".join(lines) + "\n"


def _shell(call: Call) -> str:
    return shlex.join(call.argv())


def changes_table(report: Report) -> str:
    """What the executor did with each planned call, grouped by outcome."""
    by = {s: report.with_status(s) for s in _ORDER}
    counts = ", ".join(f"{len(v)} {s.value}" for s, v in by.items() if v)
    lines = [
        f"Remediation (mode {report.mode.value}, at most "
        f"{plural(report.max_changes, 'change')}): {counts or 'nothing to do'}"
    ]
    for status, items in by.items():
        for o in items:
            f = o.finding
            lines.append(f"  {status.value.upper():<9} {f.check_id:<34} {f.resource_id}")
            lines.extend(_wrap(f"call: {o.action.call.cli()}", WIDTH, " " * 12))
            if status is Status.APPLIED and o.action.undo is not None:
                lines.extend(_wrap(f"undo: {o.action.undo.cli()}", WIDTH, " " * 12))
            lines.extend(_wrap(o.message, WIDTH, " " * 12))
    return "\n".join(lines) + "\n"


def flows_table(aggs: WindowAggregates, findings: list[Finding], summary: dict[str, Any]) -> str:
    """`peerguard flows`: per peering, its traffic in the span and what was found on it."""
    records = summary["records"]
    lines = [
        f"PeerGuard flows of account {summary['account_id']} in {summary['region']}, "
        f"{summary['since']} to {summary['until']}: {plural(len(summary['peerings']), 'peering')}; "
        f"{plural(records['flows'], 'crossing record')} read, baseline included "
        f"({records['not_crossing']} not crossing, {records['malformed']} malformed); "
        f"{plural(len(findings), 'finding')}",
    ]
    lines.extend(f"WARNING: {w}" for w in summary["warnings"])
    for pcx in summary["peerings"]:
        mine = [f for f in aggs.flows if f.peering_id == pcx]
        accepted = sum(f.packets for f in mine if f.accepted)
        rejected = sum(f.packets for f in mine if f.rejected)
        learned = summary["baseline_windows"].get(pcx, 0)
        lines += [
            "",
            f"{pcx}: {accepted} accepted and {rejected} rejected packets; baseline of "
            f"{plural(learned, 'window')}",
        ]
        found = [f for f in findings if f.peering_connection_id == pcx]
        lines.extend(line for f in found for line in finding_lines(f))
        if not found:
            lines.append("  No anomaly.")
    return "\n".join(lines) + "\n"


def accounts_table(report: AccountsAudit) -> str:
    """The merged report of many accounts: one header, then the findings as for one."""
    s = report.summary()
    failed = f", {plural(len(report.failures), 'account')} failed" if report.failures else ""
    head = (
        f"PeerGuard audit of {plural(len(report.results), 'account')}{failed} in "
        f"{', '.join(s['regions']) or '-'}: {plural(s['vpcs'], 'VPC')}, "
        f"{plural(s['peerings'], 'peering')}, {plural(s['api_calls'], 'API call')} "
        f"({report.workers} at a time, {report.seconds:.1f} s)"
    )
    body = audit_table(report.merged()).split("\n", 1)[1]
    return head + "\n" + body


# -- peerguard path ---------------------------------------------------------------------------

_VERDICT = {"allow": "allow", "deny": "DENY", "unknown": "unknown"}


def path_table(result: PathResult, snap: Snapshot | None = None) -> str:
    """The path like a traceroute: one line per hop with its verdict, what matched and why;
    each denying hop names the call that removes the block."""
    src, dst = result.source, result.destination
    lines = [
        f"Path {src.text} -> {dst.text} {result.probe.text}",
        f"  from {label(snap, src.vpc_id)}",
        f"  to   {label(snap, dst.vpc_id)}",
        "",
    ]
    for i, hop in enumerate(result.hops, 1):
        ident = label(snap, hop.id) if hop.id else "-"
        lines.append(
            f"{i:>3}  {hop.direction:<7} {hop.component:<18} {_VERDICT[hop.verdict]:<7} {ident}"
        )
        if hop.matched:
            lines.extend(_wrap(f"matched: {hop.matched}", WIDTH, " " * 14))
        lines.extend(_wrap(hop.explanation, WIDTH, " " * 14))
        if hop.verdict == "deny" and hop.fix is not None:
            lines.extend(_wrap(f"fix: {hop.fix.cli()}", WIDTH, " " * 14))
    lines.append("")
    blocked = result.blocked_by
    if blocked is not None:
        n = result.hops.index(blocked) + 1
        denies = sum(1 for h in result.hops if h.verdict == "deny")
        verb = "denies" if denies == 2 else "deny"
        more = f" ({plural(denies - 1, 'more hop')} also {verb})" if denies > 1 else ""
        what = " ".join(x for x in (blocked.component, blocked.id) if x)
        lines.append(f"Not reachable: blocked at hop {n}, {what} ({blocked.direction}){more}.")
        if blocked.fix is not None:
            lines.extend(_wrap(f"fix: {blocked.fix.cli()}", WIDTH, "  "))
    elif result.reachable is None:
        unknown = sum(1 for h in result.hops if h.verdict == "unknown")
        lines.append(
            f"Unknown: nothing read denies it, but {plural(unknown, 'hop')} could not be "
            "judged (see above)."
        )
    else:
        lines.append(
            f"Reachable: every hop allows it, both ways ({plural(len(result.hops), 'hop')})."
        )
    return "\n".join(lines) + "\n"


# -- peerguard peerings -----------------------------------------------------------------------


def _side_rows(v: SideView) -> list[tuple[str, str]]:
    dns = {True: "on", False: "off", None: "unknown"}[v.dns_resolution_from_remote]
    return [
        ("VPC", f"{v.vpc_id} ({v.name})" if v.name else v.vpc_id),
        ("CIDR blocks", ", ".join(v.cidr_blocks) or "-"),
        ("account/region", f"{v.account_id} / {v.region}"),
        ("routes to peer", v.routes),
        ("SG exposure", v.sg_exposure),
        ("network ACLs", v.nacl),
        ("DNS from peer", dns),
        ("flow logs", v.flow_logs),
    ]


def peerings_table(views: Sequence[PeeringView]) -> str:
    """Every peering: a two-column block (requester, accepter) under a title line."""
    lines = [f"{plural(len(views), 'peering')}"]
    for v in views:
        counts = ", ".join(f"{n} {s}" for s, n in v.findings.items() if n)
        total = sum(v.findings.values())
        title = f"{v.peering_connection_id}{f' ({v.name})' if v.name else ''} [{v.status}]"
        lines += ["", f"{title}: {plural(total, 'finding')}{f' ({counts})' if counts else ''}"]
        if v.status_message and v.status != "active":
            lines.extend(_wrap(v.status_message, WIDTH, "  "))
        rows = list(zip(_side_rows(v.requester), _side_rows(v.accepter), strict=True))
        width = max(len("requester"), *(len(left) for (_, left), _ in rows)) + 2
        lines.append(f"  {'':<16} {'requester':<{width}} accepter")
        for (key, left), (_, right) in rows:
            lines.append(f"  {key:<16} {left:<{width}} {right}")
    return "\n".join(lines) + "\n"
