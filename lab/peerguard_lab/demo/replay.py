"""The demo's second act: each scenario's mistake as CloudTrail recorded it, replayed through the
real Lambda handlers, routed as template.yaml routes it, and the messages they send.

Everything stays inside the emulator: the lab's `Stack` creates the template's table, topic
and queues in it, an SQS queue subscribed to the topic stands in for SNS subscribers, and the
lab's loopback Slack stands in for Slack (its URL kept in a Secrets Manager secret, as
deployed). The events are the samples in events/ with the scenario's real ids substituted;
the handlers run with the environment the template gives them and `GracePeriodMinutes=0`, so
route findings are announced at once instead of after the grace queue's delay.

The template, the samples and the handlers are in the repository: without a checkout the
replay says so and is skipped.
"""

from __future__ import annotations

import re
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any

from peerguard.render import plural
from peerguard_lab.demo.scenarios import PARTNER_ACCOUNT, WEST, Scenario
from peerguard_lab.emulator import ACCOUNT, REGION, Emulator
from peerguard_lab.events import SAMPLE_ACCOUNT, sample
from peerguard_lab.slack import FakeSlack, store_webhook
from peerguard_lab.stack import Stack, quiet
from peerguard_lab.template import NoCheckout

WIDTH = 100

# The stack's parameters for the replay (the rest are the template's defaults).
PARAMETERS = {"GracePeriodMinutes": "0", "PeerRegions": WEST}


# -- the story's recorded calls ------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One recorded call: which sample, with which ids, and what it did in the story."""

    sample: str
    ids: dict[str, str]
    what: str
    account: str | None = None
    note: str = ""


def steps_for(s: Scenario) -> list[Step]:
    """The CloudTrail events recorded when the scenario's mistake was made."""
    n = s.named
    rtb, pcx = "rtb-0a1b2c3d4e5f67890", "pcx-0a1b2c3d4e5f67890"
    if s.key == "web":
        return [
            Step(
                "CreateRoute",
                {rtb: n["rt-web-b"], pcx: n["web-to-db"], "10.1.0.0/16": "192.168.0.0/16"},
                f"web-b's route to the db tier: {n['rt-web-b']} 192.168.0.0/16 via "
                f"{n['web-to-db']} (db-b's table {n['rt-db-b']} has no way back)",
            )
        ]
    if s.key == "mesh":
        return [
            Step(
                "AcceptVpcPeeringConnection",
                {
                    pcx: n["inventory-user"],
                    "vpc-0a1b2c3d4e5f67890": n["inventory"],
                    "vpc-0b1c2d3e4f5a67891": n["user"],
                    "10.0.0.0/16": "10.1.0.0/16",
                    "10.1.0.0/16": "10.2.0.0/16",
                },
                f"inventory<->user peering {n['inventory-user']} accepted; no route follows",
            )
        ]
    if s.key == "eks":
        return [
            Step(
                "DeleteVpcPeeringConnection",
                {pcx: n["blue-green-old"]},
                f"the old peering {n['blue-green-old']} deleted while "
                f"{n['rt-green-nodes-2']} still routes through it",
            )
        ]
    if s.key == "private":
        return [
            Step(
                "CreateRoute",
                {
                    rtb: n["rt-reporting-private"],
                    pcx: n["batch-reporting"],
                    "10.1.0.0/16": "10.0.1.0/25",
                },
                f"reporting's return route: {n['rt-reporting-private']} 10.0.1.0/25 (not /24) via "
                f"{n['batch-reporting']}",
            )
        ]
    if s.key == "overlap":
        return [
            Step(
                "CreateVpcPeeringConnection",
                {
                    "pcx-0d1e2f3a4b5c67893": n["partner-to-payments"],
                    "vpc-0a1b2c3d4e5f67890": n["partner-billing"],
                    "vpc-0c1d2e3f4a5b67892": n["payments"],
                    SAMPLE_ACCOUNT: PARTNER_ACCOUNT,
                    PARTNER_ACCOUNT: ACCOUNT,
                    WEST: REGION,
                },
                f"the partner requests {n['partner-billing']} <-> {n['payments']}, both "
                "10.0.0.0/16",
                account=PARTNER_ACCOUNT,
                note=f"recorded in the requester's account {PARTNER_ACCOUNT} (ours gets no "
                "event for a request: the acceptance poll finds it); shown as if forwarded",
            )
        ]
    if s.key == "hub":
        return [
            Step(
                "CreateRoute",
                {rtb: n["rt-team-a"], pcx: n["hub-team-a"], "10.1.0.0/16": "172.18.0.0/16"},
                f"team A routes team B's 172.18.0.0/16 to the hub: {n['rt-team-a']} via "
                f"{n['hub-team-a']}",
            )
        ]
    if s.key == "sg":
        return [
            Step(
                "AuthorizeSecurityGroupIngress",
                {
                    "sg-0a1b2c3d4e5f67890": n["orders-postgres"],
                    "sgr-0a1b2c3d4e5f67890": n["rule-app-all"],
                    "10.1.0.0/16": "10.70.0.0/16",
                },
                f"{n['orders-postgres']} (orders-postgres) lets 10.70.0.0/16 in on every port "
                f"(rule {n['rule-app-all']})",
            )
        ]
    return []


# -- the replay ------------------------------------------------------------------------------


@dataclass
class Replayed:
    """One scenario's events, what each function returned, and the messages they sent."""

    scenario: Scenario
    events: list[tuple[Step, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    slack: list[dict[str, Any]] = field(default_factory=list)
    sns: list[dict[str, Any]] = field(default_factory=list)


def replay(emu: Emulator, scenarios: list[Scenario]) -> list[Replayed]:
    """Replay every scenario's steps; raises NoCheckout outside a repository checkout."""
    out = []
    clients = emu.clients()
    with FakeSlack() as slack:
        secret = store_webhook(clients, slack.url, "peerguard-demo/slack-webhook")
        stack = Stack({**PARAMETERS, "SlackWebhookSecretArn": secret}, clients)
        subscriber = stack.subscribe_queue(raw=False)  # the SNS envelope keeps the subject
        for scenario in scenarios:
            done = Replayed(scenario)
            for step in steps_for(scenario):
                event = sample(step.sample, step.ids, step.account)
                with quiet():  # the handlers' logs and metrics belong in CloudWatch
                    results = stack.deliver(event)
                done.events.append((step, event, results))
            done.slack = slack.take()
            done.sns = [m["body"] for m in stack.messages(subscriber)]
            out.append(done)
    return out


# -- rendering -----------------------------------------------------------------------------------

_LINK = re.compile(r"<([^|>]+)\|([^>]+)>")


def slack_text(payload: dict[str, Any]) -> list[str]:
    """A compact text rendering of a Block Kit message: header, context, sections."""
    lines: list[str] = []
    for block in payload.get("blocks", []):
        kind = block.get("type")
        if kind == "header":
            lines.append(f"# {block['text']['text']}")
        elif kind == "context":
            lines += [_plain(e.get("text", "")) for e in block.get("elements", [])]
        elif kind == "section":
            text = _plain(block.get("text", {}).get("text", ""))
            lines += [line for line in text.replace("```", "").splitlines() if line.strip()]
        elif kind == "divider":
            lines.append("---")
    return lines or [payload.get("text", "")]


def _plain(mrkdwn: str) -> str:
    text = _LINK.sub(lambda m: m.group(2), mrkdwn)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _result_text(result: Any) -> str:
    if not isinstance(result, dict):
        return str(result)
    parts = [str(result.get("status", "done"))]
    found = result.get("findings")
    if isinstance(found, int):
        parts.append(plural(found, "finding"))
    elif isinstance(found, dict) and found:
        parts.append("findings " + ", ".join(f"{k} {v}" for k, v in sorted(found.items())))
    notify = result.get("notify", {})
    decisions = {k: v for k, v in notify.get("decisions", {}).items() if v}
    if decisions:
        parts.append("notified " + ", ".join(f"{k} {v}" for k, v in decisions.items()))
    if result.get("reason"):
        parts.append(str(result["reason"]))
    return "; ".join(parts)


def _wrap(text: str, indent: str, more: str | None = None) -> list[str]:
    """Long lines wrapped under `indent`; ids and commands are never cut."""
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "  " if more is None else more,
        break_on_hyphens=False,
        break_long_words=False,
    )


def replay_text(emu: Emulator, scenarios: list[Scenario]) -> str:
    """The replay as the demo prints it; one plain line instead when there is no checkout."""
    started = time.monotonic()
    try:
        replayed = replay(emu, scenarios)
    except NoCheckout as e:
        return f"\nReplay skipped: {e}.\n"
    return render_replay(replayed, time.monotonic() - started)


def render_replay(replayed: list[Replayed], seconds: float) -> str:
    params = ", ".join(f"{k}={v}" for k, v in PARAMETERS.items())
    lines = _wrap(
        "Act 1's mistakes as CloudTrail recorded them, routed by template.yaml's rules to the "
        f"handlers ({params}); Slack is a loopback stand-in, SNS a queue on the topic.",
        "",
        "",
    )
    full: list[str] = []
    for i, r in enumerate(replayed, 1):
        if not r.events:
            lines.append(f"{i}. {r.scenario.name}: no event-visible mistake to replay")
        for step, _event, results in r.events:
            lines += _wrap(f"{i}. {r.scenario.name}, {step.sample}: {step.what}", "", "   ")
            if step.note:
                lines += _wrap(f"note: {step.note}", "   ", "     ")
            if not results:
                lines.append("   -> no rule matches it")
            for fn, result in results.items():
                lines += _wrap(f"-> {fn}: {_result_text(result)}", "   ", "     ")
        sent = f"Slack {len(r.slack)}, SNS {len(r.sns)}:"
        subjects = [str(m.get("Subject", "(no subject)")) for m in r.sns] or ["(nothing sent)"]
        for j, subject in enumerate(subjects):
            lines += _wrap(f"{sent if j == 0 else ' ' * len(sent)} {subject}", "   ", "     ")
        if r.slack and not full:  # one message in full: what the on-call engineer reads
            full = ["", f"The Slack message of {i}, in full:"]
            full += [x for line in slack_text(r.slack[0]) for x in _wrap(line, "  ", "    ")]
    lines += full
    lines.append(f"Replay done in {seconds:.1f} s.")
    return "\n".join(lines) + "\n"
