"""The demo's flow act: three hours of flow-log records with a port scan and a reject spike
planted in the last settled window, written where flow logs deliver (CloudWatch Logs for
one VPC, S3 for its peer), then the flow analyzer handler run on its schedule tick as
template.yaml routes it: its findings, the Slack message, a second tick that counts
nothing twice, and the chart (a self-contained HTML page).

It starts from an empty emulator (the earlier acts are done; moto keeps one state per
process), so the account holds only this act's two VPCs and their peering.
"""

from __future__ import annotations

import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peerguard import chart
from peerguard.aws.reader import Reader
from peerguard.domain.flows.aggregates import iso
from peerguard.domain.flows.crossing import crossings
from peerguard.settings import FlowSettings
from peerguard.usecases.flows import FlowReader, analyse_span, plan_sources
from peerguard_lab.demo.replay import slack_text
from peerguard_lab.emulator import ACCOUNT, REGION, Emulator
from peerguard_lab.flowlab import Record, Traffic, deliver_to_bucket, deliver_to_log_group
from peerguard_lab.slack import FakeSlack, store_webhook
from peerguard_lab.stack import Stack, quiet

FUNCTION = "FlowAnalyzerFunction"
GROUP = "/peerguard-demo/app-flows"
BUCKET = "peerguard-demo-flow-logs"
WINDOW = 900
BASELINE_WINDOWS = 12
V5 = ("version", "account-id", "vpc-id", "interface-id", "srcaddr", "dstaddr", "srcport",
      "dstport", "protocol", "packets", "bytes", "start", "end", "action", "log-status",
      "flow-direction", "traffic-path", "pkt-srcaddr", "pkt-dstaddr")  # fmt: skip
SCANNER, TARGET = "10.50.1.66", "10.60.1.20"
# The first tick reaches back over the baseline and the anomalous window.
PARAMETERS = {"FlowBackfillMinutes": str((BASELINE_WINDOWS + 1) * WINDOW // 60)}


@dataclass
class FlowDemo:
    pcx: str
    now: int
    anomaly_window: int
    events: int
    objects: int
    first: dict[str, Any]
    second: dict[str, Any]
    slack: list[dict[str, Any]] = field(default_factory=list)
    chart: Path | None = None

    @property
    def ok(self) -> bool:
        return (
            self.first.get("findings") == {"flow.port_scan": 1, "flow.reject_spike": 1}
            and self.second.get("windows") == 0
            and len(self.slack) == 1
        )


def _build(emu: Emulator) -> tuple[str, str, str, str]:
    """app (10.50/16, flow log to CloudWatch Logs) peered with db (10.60/16, flow log to S3
    in a v5 format); the ids of app, db, the peering and db's flow log."""
    c = emu.clients()
    ec2, logs, s3 = c.client("ec2"), c.client("logs"), c.client("s3")
    app = ec2.create_vpc(CidrBlock="10.50.0.0/16")["Vpc"]["VpcId"]
    db = ec2.create_vpc(CidrBlock="10.60.0.0/16")["Vpc"]["VpcId"]
    pcx = ec2.create_vpc_peering_connection(VpcId=app, PeerVpcId=db)["VpcPeeringConnection"]
    pcx_id = pcx["VpcPeeringConnectionId"]
    ec2.accept_vpc_peering_connection(VpcPeeringConnectionId=pcx_id)
    logs.create_log_group(logGroupName=GROUP)
    ec2.create_flow_logs(
        ResourceIds=[app],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName=GROUP,
        DeliverLogsPermissionArn=f"arn:aws:iam::{ACCOUNT}:role/flow-logs",
    )
    s3.create_bucket(Bucket=BUCKET)
    fl = ec2.create_flow_logs(
        ResourceIds=[db],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination=f"arn:aws:s3:::{BUCKET}",
        LogFormat=" ".join(f"${{{f}}}" for f in V5),
    )["FlowLogIds"][0]
    return app, db, pcx_id, fl


def run_flow_demo(emu: Emulator, chart_path: Path | None = None) -> FlowDemo:
    emu.reset()
    _, db, pcx, flow_log = _build(emu)
    c = emu.clients()
    now = int(time.time())
    settled = now - WINDOW - now % WINDOW  # the newest window whose delivery delay is over
    anomaly = settled - WINDOW
    first = anomaly - BASELINE_WINDOWS * WINDOW
    traffic = Traffic().steady("10.50.1.10", TARGET, 5432, first, BASELINE_WINDOWS + 1)
    traffic.port_scan(SCANNER, TARGET, anomaly, range(1000, 1030))
    traffic.reject_spike("10.50.1.11", "10.60.1.21", 6379, anomaly)
    records = traffic.records
    events = deliver_to_log_group(c.client("logs"), GROUP, records, account=ACCOUNT)
    db_side = [Record(**{**r.__dict__, "vpc_id": db}) for r in records]
    keys = deliver_to_bucket(
        c.client("s3"), BUCKET, flow_log, db_side, account=ACCOUNT, region=REGION, fields=V5
    )
    with FakeSlack() as slack:
        secret = store_webhook(c, slack.url, "peerguard-demo/flows-slack-webhook")
        stack = Stack({**PARAMETERS, "SlackWebhookSecretArn": secret}, c)
        tick = datetime.fromtimestamp(now, UTC)
        with quiet():  # the handler's logs and metrics belong in CloudWatch
            one = stack.tick(FUNCTION, tick)
            two = stack.tick(FUNCTION, tick)
        posted = slack.take()
    demo = FlowDemo(pcx, now, anomaly, events, len(keys), one, two, posted)
    demo.chart = chart_path or Path(tempfile.gettempdir()) / "peerguard-demo-flows.html"
    _draw(emu, demo, first, settled)
    return demo


def _draw(emu: Emulator, demo: FlowDemo, first: int, until: int) -> None:
    """The same records through `peerguard flows`' engine, drawn (the analyzer never draws)."""
    c = emu.clients()
    account = c.account_id()
    snapshot = Reader(c, account).full([REGION])
    cs = crossings(snapshot)
    plan = plan_sources(c, cs, account, [REGION])
    reader = FlowReader(c, FlowSettings(), account)
    done = analyse_span(reader, plan.sources, cs, demo.anomaly_window, until, first, plan.observers)
    title = f"PeerGuard demo: flows across {demo.pcx}"
    assert demo.chart is not None
    demo.chart.write_text(chart.render(".html", done.everything, done.findings, title))


def render_flow_demo(demo: FlowDemo, width: int = 100) -> list[str]:
    one, two = demo.first, demo.second
    records = one.get("records", {})
    lines = textwrap.wrap(
        f"VPC app (10.50.0.0/16) logs its flows to CloudWatch Logs ({GROUP}, default format); "
        f"its peer db (10.60.0.0/16) to S3 (s3://{BUCKET}, a v5 format with a header line). "
        f"Three hours of steady app->db traffic on {demo.pcx}, then, in the window from "
        f"{iso(demo.anomaly_window)}: {SCANNER} tries 30 ports of {TARGET}, and a broken "
        "client retries a refused port 2,000 packets' worth.",
        width,
        break_on_hyphens=False,
    )
    lines += [
        "",
        f"Written: {demo.events} log events, {demo.objects} S3 objects (each flow is in both "
        "VPCs' logs).",
        f"{FUNCTION}, schedule tick as template.yaml routes it "
        f"({', '.join(f'{k}={v}' for k, v in PARAMETERS.items())}):",
    ]
    lines += textwrap.wrap(
        f"{one.get('windows')} windows analysed up to {one.get('watermark')}: "
        f"{records.get('flows')} crossing records ({records.get('seen_twice')} logged by both "
        f"VPCs, counted once); found {_counts(one.get('findings'))}; notified "
        f"{_counts(one.get('notify'))}.",
        width,
        initial_indent="  ",
        subsequent_indent="    ",
        break_on_hyphens=False,
    )
    lines += [
        f"  Second tick: {two.get('windows')} windows (nothing counted twice), notified "
        f"{_counts(two.get('notify'))}.",
        f"Slack ({len(demo.slack)} message{'s' if len(demo.slack) != 1 else ''}):",
    ]
    for payload in demo.slack:
        for line in slack_text(payload)[:14]:
            lines += textwrap.wrap(
                line,
                width,
                initial_indent="    ",
                subsequent_indent="      ",
                break_on_hyphens=False,  # ids stay whole
                break_long_words=False,
            )
    lines.append(f"Chart (self-contained HTML, opens offline): {demo.chart}")
    verdict = "as expected" if demo.ok else "NOT AS EXPECTED"
    lines.append(f"Flow analysis: port scan and reject spike found on {demo.pcx}: {verdict}")
    return lines


def _counts(counted: Any) -> str:
    if not isinstance(counted, dict) or not counted:
        return "nothing"
    return ", ".join(f"{k} {v}" for k, v in sorted(counted.items()))
