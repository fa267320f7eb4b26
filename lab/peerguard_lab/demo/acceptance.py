"""The demo's auto-accept step, after the audit: two new peering requests reach our account.

A vendor account on the allowlist asks to peer its feeds VPC with our analytics VPC: the
acceptance function accepts it and adds the return route in the table tagged
`peerguard:peer-routes=true`. An account nobody allowlisted asks too: it is alerted and
left pending (as is the overlapping partner request of scenario 5, not on the allowlist).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from peerguard.aws.clients import Clients
from peerguard.domain.findings import Call
from peerguard.domain.plans.acceptance import ACCEPTED, ROUTE_ADDED
from peerguard.settings import AcceptanceSettings
from peerguard.state.changes import MemoryRecorder
from peerguard.usecases.acceptance import AcceptanceRun, run_acceptance
from peerguard.usecases.pipeline import Runtime
from peerguard_lab.demo.scenarios import EAST, Net, Scenario
from peerguard_lab.stack import quiet

VENDOR_ACCOUNT = "111111111111"  # on the allowlist
UNKNOWN_ACCOUNT = "222222222222"  # not on it


@dataclass
class AcceptanceDemo:
    scenario: Scenario
    run: AcceptanceRun
    records: MemoryRecorder

    @property
    def vendor_pcx(self) -> str:
        return self.scenario.named["vendor-to-analytics"]

    @property
    def unknown_pcx(self) -> str:
        return self.scenario.named["unknown-to-analytics"]

    def action(self, pcx: str) -> str:
        return next(v.action for v in self.run.verdicts if v.pcx_id == pcx)

    @property
    def ok(self) -> bool:
        """The allowlisted request was accepted and routed; the unknown one only alerted."""
        done = {(r.change, r.result) for r in self.records.records}
        return (
            self.action(self.vendor_pcx) == "accept"
            and {(ACCEPTED.id, "applied"), (ROUTE_ADDED.id, "applied")} <= done
            and self.action(self.unknown_pcx) == "alert"
        )


def build_requests(clients: Clients) -> Scenario:
    s = Scenario("accept", "Auto-accept", ("acceptance.accepted", "peering.not_allowlisted"))
    n = Net(clients, s)
    ours = n.vpc("analytics", "10.20.0.0/16", EAST)
    subnet = n.subnet(ours, "analytics-app", "10.20.1.0/24")
    tagged = n.table(ours, "rt-analytics-app", subnet)
    clients.client("ec2", EAST).create_tags(
        Resources=[tagged], Tags=[{"Key": "peerguard:peer-routes", "Value": "true"}]
    )
    for name, account, cidr in (
        ("vendor", VENDOR_ACCOUNT, "10.30.0.0/16"),
        ("unknown", UNKNOWN_ACCOUNT, "10.40.0.0/16"),
    ):
        other = Net(clients.assume(f"arn:aws:iam::{account}:role/network-admin"), s)
        theirs = other.vpc(f"{name}-vpc", cidr)
        other.request_peering(f"{name}-to-analytics", theirs, ours, clients.account_id())
    s.broken = {s.named["unknown-to-analytics"]}
    s.explanation = (
        f"Two accounts ask to peer with our analytics VPC {ours} (10.20.0.0/16). Vendor "
        f"{VENDOR_ACCOUNT} is on the allowlist; {UNKNOWN_ACCOUNT} is not. The route table "
        f"{tagged} is tagged peerguard:peer-routes=true for return routes. The acceptance "
        "function (AutoAcceptPeerings=true) runs on its 5-minute schedule."
    )
    return s


def run_acceptance_demo(clients: Clients) -> AcceptanceDemo:
    scenario = build_requests(clients)
    settings = AcceptanceSettings(auto_accept=True, allowlist=VENDOR_ACCOUNT)
    rt = Runtime(clients, settings)
    with quiet():  # the function's JSON logs belong in CloudWatch, not in the demo
        run = run_acceptance(rt, trigger="demo")
    assert isinstance(rt.recorder, MemoryRecorder)
    return AcceptanceDemo(scenario, run, rt.recorder)


def _wrap(text: str, indent: str, more: str, width: int) -> list[str]:
    return textwrap.wrap(
        text,
        width,
        initial_indent=indent,
        subsequent_indent=more,
        break_on_hyphens=False,  # ids stay whole
        break_long_words=False,
    )


def render_acceptance(demo: AcceptanceDemo, wrap: int = 100) -> list[str]:
    # Ids with their Name tags: the requests' as the run read them, the act's own resources'.
    names = {rid: name for name, rid in demo.scenario.named.items()}
    names |= {p.pcx_id: p.tags.get("Name", "") for p in demo.run.pending}

    def named(rid: str) -> str:
        return f"{rid} ({names[rid]})" if names.get(rid) else rid

    lines = textwrap.wrap(demo.scenario.explanation, wrap, break_on_hyphens=False)
    lines += ["", "Decisions:"]
    for v in demo.run.verdicts:
        lines += _wrap(f"{named(v.pcx_id)}  {v.action.upper()}: {v.reason}", "  ", "      ", wrap)
    lines += ["", "Changes made (recorded with their undo):"]
    for r in demo.records.records:
        undo = Call.model_validate(r.undo).cli() if r.undo else "none"
        made = Call.model_validate(r.call).cli()
        lines += _wrap(made, "  ", "      ", wrap)
        lines += _wrap(f"-> {r.result}; undo: {undo}", "    ", "      ", wrap)
    lines += ["", "Announced:"]
    for f in demo.run.findings:  # one line per finding
        lines.append(f"  {f.severity.value.upper():<8} {f.check_id:<26} {named(f.resource_id)}")
    verdict = "as expected" if demo.ok else "NOT AS EXPECTED"
    lines += [
        "",
        f"Auto-accept: allowlisted request accepted and routed, unknown one alerted: {verdict}",
    ]
    return lines
