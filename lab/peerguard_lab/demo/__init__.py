"""`peerguard demo`: the seed scenarios built in an embedded emulator, audited by the real engine.

No account and no network: a moto server on 127.0.0.1, fake credentials, and the same
`audit` the CLI and the Lambdas run. Five acts: the audit, the mistakes' CloudTrail events
replayed through the handlers, auto-accept, repair in fix mode, and flow-log analysis.
"""

from __future__ import annotations

import sys
import textwrap
import time
from dataclasses import dataclass
from typing import TextIO

from peerguard.domain.checks import CheckContext, resolve
from peerguard.domain.findings import Finding
from peerguard.render import finding_lines
from peerguard.usecases.pipeline import AuditResult, audit
from peerguard_lab.demo.acceptance import render_acceptance, run_acceptance_demo
from peerguard_lab.demo.flows import render_flow_demo, run_flow_demo
from peerguard_lab.demo.repair import render_repair, run_repair_demo
from peerguard_lab.demo.replay import replay_text
from peerguard_lab.demo.scenarios import REGIONS, Scenario, build_all
from peerguard_lab.emulator import Emulator

__all__ = ["Outcome", "Scenario", "build_all", "render", "run_demo", "run_scenarios"]

WIDTH = 100


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


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_on_hyphens=False)  # keep ids like pcx-0a1b whole


def render(outcomes: list[Outcome], result: AuditResult, url: str, seconds: float) -> str:
    s = result.summary()
    lines = [
        f"PeerGuard demo: emulated AWS (moto) at {url}; no account, no network.",
        f"Audited account {s['account_id']} in {', '.join(s['regions'])}: {s['vpcs']} VPCs, "
        f"{s['peerings']} peerings, {s['route_tables']} route tables, "
        f"{s['api_calls']} API calls, {len(result.findings)} findings.",
    ]
    for i, o in enumerate(outcomes, 1):
        lines += ["", f"== {i}. {o.scenario.name} =="]
        lines += _wrap(o.scenario.explanation, WIDTH)
        lines += ["", "PeerGuard reports:"] if o.findings else ["", "PeerGuard reports nothing."]
        for f in o.findings:
            lines += finding_lines(f)
    owned = {id(f) for o in outcomes for f in o.findings}
    stray = [f for f in result.findings if id(f) not in owned]
    if stray:
        lines += ["", "Findings outside the scenarios:"]
        for f in stray:
            lines += finding_lines(f)
    lines += ["", "Result:"]
    for o in outcomes:
        verdict = "found" if o.found else "MISSED"
        lines.append(f"  {o.scenario.name:<34} {verdict:<7} ({', '.join(o.scenario.expected)})")
    lines.append(f"Done in {seconds:.1f} s.")
    return "\n".join(lines) + "\n"


def run_demo(port: int = 0, out: TextIO | None = None) -> int:
    """Exit 0 when every scenario's mistake was found, 1 otherwise."""
    out = out or sys.stdout
    started = time.monotonic()
    with Emulator(port) as emu:
        outcomes, result = run_scenarios(emu)
        url = emu.url
        out.write(render(outcomes, result, url, time.monotonic() - started))
        out.write(replay_text(emu, [o.scenario for o in outcomes]))
        accepting = run_acceptance_demo(emu.clients())  # third act: new requests arrive
        out.write("\n".join(render_acceptance(accepting, WIDTH)) + "\n")
        repaired = run_repair_demo(emu.clients())  # last act: fix mode, then re-audit
        out.write("\n".join(render_repair(repaired)) + "\n")
        flowing = run_flow_demo(emu)  # flow act: on an emptied emulator, after the others
        out.write("\n".join(render_flow_demo(flowing, WIDTH)) + "\n")
    ok = all(o.found for o in outcomes) and accepting.ok and repaired.ok and flowing.ok
    return 0 if ok else 1
