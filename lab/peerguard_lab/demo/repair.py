"""The demo's last act: `--mode fix` repairs what is safe to repair, then a clean re-audit.

Each pass is what one sweep in fix mode does. A fix can unblock another (deleting a route
left to a dead peering frees its destination for the mirror route), so passes repeat
until one changes nothing: in production that is the next hourly sweep.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peerguard.aws.clients import Clients
from peerguard.aws.executor import Executor
from peerguard.domain.checks import CheckContext, resolve
from peerguard.domain.model import Snapshot
from peerguard.domain.plans.actions import Mode, Report
from peerguard.domain.plans.remediation import RemediationConfig, plan_all
from peerguard.render import changes_table
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


def render_repair(demo: RepairDemo) -> list[str]:
    lines = ["", "== Repair: peerguard audit --mode fix =="]
    for i, p in enumerate(demo.passes, 1):
        lines += [
            "",
            f"Pass {i} (one sweep in fix mode):",
            *changes_table(p).rstrip().splitlines(),
        ]
    left = demo.left_fixable
    lines += [
        "",
        f"Re-audit: {len(demo.after.findings)} findings remain, "
        f"{len(left)} of them automatically fixable route findings"
        + (f" ({', '.join(left)})" if left else "")
        + "; the rest need a person (overlaps, unused or pending peerings, transitive routes).",
        f"Route tables changed: {len(demo.changed_tables)}, all of them by the fixes above: "
        + ("yes" if demo.changed_tables == demo.fixed_tables else "NO"),
    ]
    return lines
