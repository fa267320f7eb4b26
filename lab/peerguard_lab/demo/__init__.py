"""`peerguard demo`: the seed scenarios built in an embedded emulator, audited by the real engine.

No account and no network: a moto server on 127.0.0.1, fake credentials, and the same
`audit` the CLI and the Lambdas run. Five acts (ACTS), each about two screens:
1. the audit of seven broken networks, 2. their mistakes' CloudTrail events replayed through
the handlers, 3. auto-accept, 4. repair in fix mode, 5. flow-log analysis.
`peerguard demo --act N` shows one act; the acts it builds on run first, silently.
"""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from peerguard.domain.checks import CheckContext, resolve
from peerguard.domain.checks.routes import route_conflicts
from peerguard.domain.findings import Finding
from peerguard.domain.model import Snapshot
from peerguard.render import label, plural
from peerguard.usecases.pipeline import AuditResult, audit
from peerguard_lab.demo.acceptance import AcceptanceDemo, render_acceptance, run_acceptance_demo
from peerguard_lab.demo.flows import FlowDemo, render_flow_demo, run_flow_demo
from peerguard_lab.demo.repair import RepairDemo, render_repair, run_repair_demo
from peerguard_lab.demo.replay import replay_text
from peerguard_lab.demo.scenarios import REGIONS, Scenario, build_all
from peerguard_lab.emulator import Emulator

__all__ = [
    "ACTS",
    "DemoRun",
    "Outcome",
    "Scenario",
    "acts_text",
    "build_all",
    "fix_text",
    "name_of",
    "play",
    "render",
    "run_demo",
    "run_scenarios",
]

WIDTH = 100
FIX_INDENT = " " * 11

# The acts, in the order `make demo` plays them: (title, what it shows).
ACTS: dict[int, tuple[str, str]] = {
    1: ("Audit", "seven broken peered networks, one read-only audit, every finding"),
    2: ("Replay", "each mistake's CloudTrail event through the Lambda handlers: Slack and SNS"),
    3: ("Auto-accept", "two peering requests: the allowlisted one accepted and routed"),
    4: ("Repair", "fix mode makes the safe fixes, then a re-audit lists what is left"),
    5: ("Flow logs", "a port scan and a reject spike found in flow logs across a peering"),
}


def act_heading(n: int) -> list[str]:
    title, what = ACTS[n]
    return [f"== Act {n} of {len(ACTS)}. {title}: {what} =="]


def acts_text() -> str:
    """`peerguard demo --list`."""
    lines = [f"  {n}. {title}: {what}" for n, (title, what) in ACTS.items()]
    return "Acts of `peerguard demo` (`--act N` shows one):\n" + "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Outcome:
    scenario: Scenario
    findings: list[Finding]

    @property
    def found(self) -> bool:
        return self.scenario.found(self.findings)


def run_scenarios(emu: Emulator) -> tuple[list[Outcome], AuditResult]:
    """Build every scenario, audit the whole account once, attribute findings by resource id."""
    scenarios = build_all(emu.clients())
    result = audit(emu.clients(), REGIONS, CheckContext(), resolve(None))
    return [Outcome(s, s.findings(result.findings)) for s in scenarios], result


def name_of(snap: Snapshot | None, resource_id: str) -> str:
    """The id, whole, with its Name tag (and a VPC's CIDR blocks) as render.label gives it;
    security groups with their group name."""
    groups = (snap.security_groups or {}) if snap is not None else {}
    if resource_id in groups:
        return groups[resource_id].label
    return label(snap, resource_id)


def _wrap(text: str, indent: str = "", more: str | None = None) -> list[str]:
    # Never break on hyphens or inside words: ids such as pcx-0a1b... stay whole.
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent if more is None else more,
        break_on_hyphens=False,
        break_long_words=False,
    )


def _dead_routes(findings: list[Finding], table: str) -> set[str]:
    """Destinations of `table` that route.blackhole's automatic fix deletes."""
    return {
        str(g.remediation.parameters.get("DestinationCidrBlock"))
        for g in findings
        if g.check_id == "route.blackhole"
        and g.resource_id == table
        and g.remediation is not None
        and g.remediation.automatic
    }


def unblocked_by_blackhole_fix(f: Finding, findings: list[Finding], snap: Snapshot | None) -> bool:
    """A return route held back only by routes to a dead peering on its table: fix mode
    deletes those (route.blackhole), and the next sweep finds the return route automatic."""
    rem, rt = f.remediation, snap.route_tables.get(f.resource_id) if snap else None
    if f.check_id != "route.missing_reciprocal" or rem is None or rem.automatic or rt is None:
        return False
    dest = str(rem.parameters.get("DestinationCidrBlock"))
    pcx = str(rem.parameters.get("VpcPeeringConnectionId"))
    clashes = {r.destination for r in rt.routes if route_conflicts(r, dest, pcx)}
    return bool(clashes) and clashes <= _dead_routes(findings, rt.route_table_id)


def fix_text(f: Finding, findings: list[Finding], snap: Snapshot | None = None) -> str:
    """How the fix is made, true to what fix mode does with it (act 4)."""
    rem = f.remediation
    assert rem is not None
    if rem.automatic:
        return "automatic in fix mode"
    if unblocked_by_blackhole_fix(f, findings, snap):
        return "automatic in fix mode, the sweep after the route.blackhole fix"
    # The reason's first clause; `peerguard audit` prints the rest.
    return f"by hand: {rem.reason.split(': ')[0]}" if rem.reason else "by hand"


def finding_brief(f: Finding, findings: list[Finding], snap: Snapshot | None) -> list[str]:
    """One finding in two or three lines: severity, check, the resource named; the fix call."""
    lines = [f"  {f.severity.value.upper():<8} {f.check_id:<26} {name_of(snap, f.resource_id)}"]
    if f.remediation is not None:
        how = fix_text(f, findings, snap)
        lines += _wrap(f"fix, {how}: {f.remediation.cli()}", FIX_INDENT)
    return lines


def render(outcomes: list[Outcome], result: AuditResult, url: str, seconds: float) -> str:
    s, snap = result.summary(), result.snapshot
    lines = [
        *act_heading(1),
        f"Emulated AWS (moto) at {url}, no account needed. Audit of "
        f"{s['account_id']} in {', '.join(s['regions'])}: {plural(s['vpcs'], 'VPC')}, "
        f"{plural(s['peerings'], 'peering')}, {plural(s['route_tables'], 'route table')}, "
        f"{plural(s['api_calls'], 'API call')}, {plural(len(result.findings), 'finding')}.",
    ]
    lines[1:] = _wrap(lines[1])
    for i, o in enumerate(outcomes, 1):
        lines += ["", *_wrap(f"{i}. {o.scenario.name}. {o.scenario.explanation}", "", "   ")]
        lines += [line for f in o.findings for line in finding_brief(f, result.findings, snap)]
        if not o.findings:
            lines.append("  PeerGuard reports nothing.")
    owned = {id(f) for o in outcomes for f in o.findings}
    stray = [f for f in result.findings if id(f) not in owned]
    if stray:
        lines += ["", "Findings outside the scenarios:"]
        lines += [line for f in stray for line in finding_brief(f, result.findings, snap)]
    lines += [
        "",
        f"Result in {seconds:.1f} s (* the check the mistake must raise; the rest it raised too):",
    ]
    for o in outcomes:
        verdict = "found" if o.found else "MISSED"
        raised = sorted({f.check_id for f in o.findings} | set(o.scenario.expected))
        shown = ", ".join(c + ("*" if c in o.scenario.expected else "") for c in raised)
        lines.append(f"  {o.scenario.name:<32} {verdict:<7} {shown}")
    return "\n".join(lines) + "\n"


@dataclass
class DemoRun:
    """What the acts built and found, in order; each act reads what the earlier ones left."""

    emu: Emulator
    started: float = field(default_factory=time.monotonic)
    outcomes: list[Outcome] = field(default_factory=list)
    result: AuditResult | None = None
    accepting: AcceptanceDemo | None = None
    repaired: RepairDemo | None = None
    flowing: FlowDemo | None = None
    replay_ok: bool = True

    @property
    def ok(self) -> bool:
        return (
            all(o.found for o in self.outcomes)
            and self.replay_ok
            and all(a.ok for a in (self.accepting, self.repaired, self.flowing) if a is not None)
        )


def _audit(run: DemoRun) -> str:
    run.outcomes, run.result = run_scenarios(run.emu)
    return render(run.outcomes, run.result, run.emu.url, time.monotonic() - run.started)


def _replay(run: DemoRun) -> str:
    text = replay_text(run.emu, [o.scenario for o in run.outcomes])
    return "\n".join(act_heading(2)) + "\n" + text


def _accept(run: DemoRun) -> str:
    run.accepting = run_acceptance_demo(run.emu.clients())  # new requests arrive
    return "\n".join([*act_heading(3), *render_acceptance(run.accepting, WIDTH)]) + "\n"


def _repair(run: DemoRun) -> str:
    run.repaired = run_repair_demo(run.emu.clients())  # fix mode, then re-audit
    return "\n".join([*act_heading(4), *render_repair(run.repaired)]) + "\n"


def _flows(run: DemoRun) -> str:
    run.flowing = run_flow_demo(run.emu)  # on an emptied emulator: must stay last
    return "\n".join([*act_heading(5), *render_flow_demo(run.flowing, WIDTH)]) + "\n"


# Each act, and the acts whose state it builds on (run first, silently, for `--act N`).
_PLAYS: dict[int, tuple[Callable[[DemoRun], str], tuple[int, ...]]] = {
    1: (_audit, ()),
    2: (_replay, (1,)),
    3: (_accept, (1,)),
    4: (_repair, (1, 3)),
    5: (_flows, ()),
}


def play(emu: Emulator, acts: list[int], out: TextIO) -> DemoRun:
    """Run the acts asked for (and those they need), in order; write only the asked ones."""
    needed = set(acts) | {d for a in acts for d in _PLAYS[a][1]}
    run = DemoRun(emu)
    for n in sorted(needed):
        text = _PLAYS[n][0](run)
        if n in acts:
            out.write(("\n" if n != min(acts) else "") + text)
    return run


def run_demo(port: int = 0, out: TextIO | None = None, act: int | None = None) -> int:
    """Exit 0 when every act shown (and those it builds on) went as expected, 1 otherwise."""
    out = out or sys.stdout
    if act is not None and act not in ACTS:
        raise ValueError(f"no act {act}: the demo has acts 1 to {len(ACTS)} (--list names them)")
    with Emulator(port) as emu:
        run = play(emu, [act] if act is not None else list(ACTS), out)
    return 0 if run.ok else 1
