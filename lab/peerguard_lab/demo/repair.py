"""The demo's last act: `--mode fix` repairs what is safe to repair, then a clean re-audit.

Each pass is what one sweep in fix mode does. A fix can unblock another (deleting a route
left to a dead peering frees its destination for the mirror route), so passes repeat
until one changes nothing: in production that is the next hourly sweep.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

from peerguard.aws.clients import Clients
from peerguard.aws.executor import Executor
from peerguard.domain.checks import CheckContext, resolve
from peerguard.domain.model import Snapshot
from peerguard.domain.plans.actions import Mode, Report, Status
from peerguard.domain.plans.remediation import RemediationConfig, plan_all
from peerguard.render import WIDTH, label, plural
from peerguard.state.changes import MemoryRecorder
from peerguard.usecases.pipeline import AuditResult, audit
from peerguard_lab.demo.scenarios import REGIONS

FIXABLE = ("route.missing_reciprocal", "route.blackhole")
MAX_PASSES = 3


def _routes(snap: Snapshot) -> dict[str, set[tuple[str, str]]]:
    return {
        rt.route_table_id: {(r.destination, r.target) for r in rt.routes}
        for rt in snap.route_tables.values()
    }


@dataclass
class RepairDemo:
    before: AuditResult
    after: AuditResult
    passes: list[Report] = field(default_factory=list)

    @property
    def changed_tables(self) -> set[str]:
        old, new = _routes(self.before.snapshot), _routes(self.after.snapshot)
        return {t for t in old.keys() | new.keys() if old.get(t) != new.get(t)}

    @property
    def fixed_tables(self) -> set[str]:
        return {str(o.action.route_table_id) for p in self.passes for o in p.applied} - {"None"}

    @property
    def left_fixable(self) -> list[str]:
        """Route findings PeerGuard could still fix automatically: none, after the passes."""
        return [
            f"{f.check_id} {f.resource_id}"
            for f in self.after.findings
            if f.check_id in FIXABLE and f.remediation is not None and f.remediation.automatic
        ]

    @property
    def ok(self) -> bool:
        return not self.left_fixable and self.changed_tables == self.fixed_tables


def run_repair_demo(clients: Clients) -> RepairDemo:
    ctx, checks = CheckContext(), resolve(None)
    config = RemediationConfig(default_mode=Mode.FIX, max_changes=10)
    before = audit(clients, REGIONS, ctx, checks)
    current, passes = before, []
    for _ in range(MAX_PASSES):
        executor = Executor(
            clients, max_changes=10, regions=REGIONS, recorder=MemoryRecorder(), trigger="demo"
        )
        outcomes = executor.run_each(plan_all(current.findings, current.snapshot, config, ctx))
        done = executor.report(outcomes, Mode.FIX)
        passes.append(done)
        current = audit(clients, REGIONS, ctx, checks)
        if not done.applied:
            break
    return RepairDemo(before, current, passes)


def _wrap(text: str, indent: str, more: str) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=more,
        break_on_hyphens=False,  # ids stay whole
        break_long_words=False,
    )


def _name(snap: Snapshot, resource_id: str) -> str:
    groups = snap.security_groups or {}
    return groups[resource_id].label if resource_id in groups else label(snap, resource_id)


def render_repair(demo: RepairDemo) -> list[str]:
    snap = demo.before.snapshot
    lines = _wrap(
        "`peerguard audit --mode fix`, as each hourly sweep runs it: only the safe fixes (return "
        "routes, dead routes, rules open to the internet), each re-checked on the live state "
        "just before it is made and recorded with its undo. A fix can unblock another, so "
        f"passes repeat until one changes nothing ({len(demo.passes)} passes here).",
        "",
        "",
    )
    applied = [(i, o) for i, p in enumerate(demo.passes, 1) for o in p.applied]
    lines += ["", f"Applied ({plural(len(applied), 'change')}, each once):"]
    proposed_first: dict[str, int] = {}  # fingerprint -> the pass that first left it
    for i, p in enumerate(demo.passes, 1):
        for o in p.with_status(Status.PROPOSED):
            proposed_first.setdefault(o.finding.fingerprint, i)
    for i, o in applied:
        f = o.finding
        why = ""
        if i > 1 and f.fingerprint in proposed_first:  # left in an earlier pass, made now
            why = " (automatic now: the earlier pass removed what blocked it)"
        lines += _wrap(
            f"  pass {i}  {f.check_id:<26} {_name(snap, f.resource_id)}{why}", "", " " * 10
        )
        lines += _wrap(o.action.call.cli(), " " * 10, " " * 12)
        if o.action.undo is not None:
            lines += _wrap(f"undo: {o.action.undo.cli()}", " " * 10, " " * 12)
    done = {o.finding.fingerprint for _, o in applied}
    left = {
        o.finding.fingerprint: o
        for p in demo.passes
        for o in p.with_status(Status.PROPOSED)
        if o.finding.fingerprint not in done
    }
    lines += ["", f"Left to a person ({plural(len(left), 'proposal')}, fix mode leaves them):"]
    for o in left.values():
        f = o.finding
        lines += _wrap(f"  {f.check_id:<26} {_name(snap, f.resource_id)}: {o.message}", "", " " * 4)
    after = demo.after.findings
    fixable = demo.left_fixable
    lines += [
        "",
        f"Re-audit: {plural(len(after), 'finding')} remain, "
        f"{len(fixable) or 'none'} of them automatically fixable:",
    ]
    for f in after:
        lines.append(
            f"  {f.severity.value.upper():<8} {f.check_id:<26} "
            f"{_name(demo.after.snapshot, f.resource_id)}"
        )
    verdict = "yes" if demo.changed_tables == demo.fixed_tables else "NO"
    lines.append(
        f"Route tables changed: {len(demo.changed_tables)}, all of them by the fixes above: "
        f"{verdict}"
    )
    return lines
