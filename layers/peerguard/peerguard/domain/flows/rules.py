"""Flow anomaly rules: pure functions over one window's aggregates and the baseline.

Each rule is registered in the catalogue (`Kind.FLOW`) with its metadata, like the
checks, and looks at one peering in one window at a time. Findings are filed under the
peering (`resource_id` and `peering_connection_id` are the pcx id) in this account, and
carry `extra["evidence"]`: source, destination, port, protocol, action, packets, bytes,
the baseline figure they were compared with, and the threshold. They go through the same
dedup and channels as every other finding.

The baseline rules (all but port_scan) wait until the peering's baseline has learned
`Thresholds.learning_windows` windows: before that, everything would be new.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from peerguard.domain.catalogue import Entry, Kind, define
from peerguard.domain.findings import Finding, Severity, sort_findings
from peerguard.domain.flows.aggregates import (
    ACCEPT,
    REJECT,
    FlowAggregate,
    WindowAggregates,
    iso,
    iter_windows,
)
from peerguard.domain.flows.baseline import Baseline, PeeringBaseline, pair_key, port_key
from peerguard.domain.flows.crossing import Crossing, Direction

PCX = "AWS::EC2::VPCPeeringConnection"
# What reading flow logs takes, whichever path (embedded, Athena, Logs Insights).
FLOW_READ = (
    "ec2:DescribeFlowLogs",
    "logs:FilterLogEvents",
    "logs:StartQuery",
    "logs:GetQueryResults",
    "s3:ListBucket",
    "s3:GetObject",
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:GetQueryResults",
)


@dataclass(frozen=True)
class Thresholds:
    scan_ports: int = 20  # distinct destination ports from one source
    scan_destinations: int = 20  # distinct destinations on one port from one source
    scan_reject_share: float = 0.5  # "mostly rejected": more than this share of its flows
    reject_spike_factor: float = 10.0  # times the baseline rejected packets per window
    reject_spike_floor: int = 500  # rejected packets in the window, at least
    volume_spike_factor: float = 10.0  # times the pair's baseline bytes per window
    volume_spike_floor: int = 100_000_000  # bytes in the window, at least
    learning_windows: int = 12  # baseline rules wait for this many learned windows
    max_findings: int = 20  # per rule, peering and window; the rest are counted in detail

    def __post_init__(self) -> None:
        for name in ("scan_ports", "scan_destinations", "learning_windows", "max_findings"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not 0 <= self.scan_reject_share < 1:
            raise ValueError("scan_reject_share must be in [0, 1)")
        if self.reject_spike_factor <= 1 or self.volume_spike_factor <= 1:
            raise ValueError("spike factors must be above 1")


def _entry(id: str, severity: Severity, title: str, risk: str, fix: str) -> Entry:
    return define(Entry(id, Kind.FLOW, severity, title, risk, fix, PCX, iam_actions=FLOW_READ))


PORT_SCAN = _entry(
    "flow.port_scan",
    Severity.HIGH,
    "Port scan across a peering",
    "A host on one side probes many ports or many hosts on the other and is mostly refused: "
    "reconnaissance from a compromised or misconfigured host, across a trust boundary.",
    "Find the source host named in the evidence and what runs on it; isolate it unless the "
    "scan is an approved one, and narrow the security groups that let it reach the peer.",
)
REJECT_SPIKE = _entry(
    "flow.reject_spike",
    Severity.MEDIUM,
    "Spike in rejected traffic on a peering",
    "Far more traffic than usual is refused on the peering: a broken deployment, a security "
    "group or NACL change, or probing.",
    "Look at the top rejected source and port in the evidence: fix the security group or "
    "NACL if that traffic is expected, find the source if it is not.",
)
NEW_TALKER = _entry(
    "flow.new_talker",
    Severity.LOW,
    "New pair of hosts talking across a peering",
    "Two hosts that never talked across the peering now exchange accepted traffic: expected "
    "after a deployment, otherwise lateral movement.",
    "Confirm the new client and server are expected to talk; if not, narrow the security "
    "groups and NACLs between the two VPCs.",
)
UNEXPECTED_PORT = _entry(
    "flow.unexpected_port",
    Severity.MEDIUM,
    "Accepted traffic to a port never seen on a peering",
    "A service port is newly reachable and used across the peering: a new service, or an "
    "opening nobody meant to make.",
    "Check that the service on that port is meant to be reached from the peer VPC; "
    "otherwise remove the rule that allows it.",
)
VOLUME_SPIKE = _entry(
    "flow.volume_spike",
    Severity.MEDIUM,
    "Traffic volume spike between two hosts across a peering",
    "A client and server move ten times their usual volume: a backup or migration, or data "
    "leaving through the peering.",
    "Confirm the transfer is expected (backup, migration, batch job); otherwise find what the "
    "client read from the server.",
)


@dataclass(frozen=True)
class PeeringWindow:
    """One peering in one window: what a rule looks at."""

    crossing: Crossing
    start: int
    seconds: int
    flows: list[FlowAggregate]
    baseline: PeeringBaseline

    @property
    def when(self) -> str:
        return f"the {self.seconds // 60}-minute window from {iso(self.start)}"

    def describe(self, address: str) -> str:
        """`address` with the VPC it belongs to on this peering (as far as the flows say)."""
        for f in self.flows:
            if address in (f.src, f.dst):
                side = self.crossing.side(f.direction, source=address == f.src)
                return f"{address} ({side.vpc_id})"
        return address


Rule = Callable[[PeeringWindow, Thresholds], list[Finding]]


def _finding(
    entry: Entry,
    w: PeeringWindow,
    detail: str,
    evidence: Mapping[str, object],
    key: str,
    direction: Direction | None = None,
) -> Finding:
    c = w.crossing
    home = c.home
    vpc = home.vpc_id
    if direction is not None:
        dst = c.side(direction, source=False)
        vpc = dst.vpc_id if dst.owner_id == home.owner_id else home.vpc_id
    body: dict[str, object] = {
        "window_start": iso(w.start),
        "window_seconds": w.seconds,
        "direction": direction.value if direction else None,
        **evidence,
    }
    return entry.finding(
        resource_id=c.peering_id,
        account_id=home.owner_id,
        region=home.region,
        vpc_id=vpc,
        peering_connection_id=c.peering_id,
        detail=detail,
        key=key,
        extra={"evidence": body},
    )


def _capped(findings: list[Finding], t: Thresholds, what: str) -> list[Finding]:
    """At most `max_findings`; when more, each kept one says how many there were."""
    if len(findings) <= t.max_findings:
        return findings
    n = len(findings)
    return [
        f.model_copy(update={"detail": f"{f.detail} (one of {n} {what} in this window)"})
        for f in findings[: t.max_findings]
    ]


def _most(counter: Counter[object]) -> object:
    return counter.most_common(1)[0][0] if counter else None


def port_scan(w: PeeringWindow, t: Thresholds) -> list[Finding]:
    by_source: dict[tuple[str, Direction], list[FlowAggregate]] = defaultdict(list)
    for f in w.flows:
        if not f.reply:
            by_source[(f.src, f.direction)].append(f)
    out = []
    for (src, direction), flows in sorted(by_source.items()):
        ports = {f.port for f in flows}
        per_port: dict[int | None, set[str]] = defaultdict(set)
        for f in flows:
            per_port[f.port].add(f.dst)
        wide_port, wide = max(per_port.items(), key=lambda kv: (len(kv[1]), -(kv[0] or 0)))
        vertical = len(ports) >= t.scan_ports
        horizontal = len(wide) >= t.scan_destinations
        records = sum(f.records for f in flows)
        rejected = sum(f.records for f in flows if f.rejected)
        share = rejected / records if records else 0.0
        if not (vertical or horizontal) or share <= t.scan_reject_share:
            continue
        dsts = Counter[object]()
        for f in flows:
            dsts[f.dst] += 1
        top_dst = str(_most(dsts))
        protocol = _most(Counter(f.protocol for f in flows))
        shape = (
            f"{len(ports)} ports on {len(dsts)} host(s)"
            if vertical
            else f"port {wide_port} on {len(wide)} hosts"
        )
        detail = (
            f"{w.describe(src)} probed {shape} across {w.crossing.peering_id} in {w.when}; "
            f"{rejected} of {records} flows were rejected."
        )
        evidence = {
            "source": src,
            "destination": top_dst if len(dsts) == 1 or vertical else None,
            "port": None if vertical else wide_port,
            "protocol": protocol,
            "action": REJECT,
            "packets": sum(f.packets for f in flows),
            "bytes": sum(f.bytes for f in flows),
            "baseline": None,  # a scan is judged on its own, not against the past
            "threshold": t.scan_ports if vertical else t.scan_destinations,
            "distinct_ports": len(ports),
            "distinct_destinations": len(dsts),
            "sample_ports": sorted(p for p in ports if p is not None)[:20],
            "rejected_share": round(share, 3),
        }
        out.append(_finding(PORT_SCAN, w, detail, evidence, src, direction))
    return _capped(out, t, "scanning sources")


def _warm(w: PeeringWindow, t: Thresholds) -> bool:
    return w.baseline.windows >= t.learning_windows


def reject_spike(w: PeeringWindow, t: Thresholds) -> list[Finding]:
    if not _warm(w, t):
        return []
    rejected = [f for f in w.flows if f.rejected]
    packets = sum(f.packets for f in rejected)
    base = w.baseline.reject_packets_per_window
    if packets < t.reject_spike_floor or packets < t.reject_spike_factor * base:
        return []
    top = max(rejected, key=lambda f: (f.packets, f.src, f.dst))
    ratio = f"{packets / base:.0f}x" if base else "with none before"
    detail = (
        f"{packets} rejected packets on {w.crossing.peering_id} in {w.when}, {ratio} the usual "
        f"{base:.0f} per window; the most from {w.describe(top.src)} to "
        f"{w.describe(top.dst)} port {top.port}."
    )
    evidence = {
        "source": top.src,
        "destination": top.dst,
        "port": top.port,
        "protocol": top.protocol,
        "action": REJECT,
        "packets": packets,
        "bytes": sum(f.bytes for f in rejected),
        "baseline": round(base, 1),
        "threshold": max(t.reject_spike_floor, round(t.reject_spike_factor * base, 1)),
        "top_packets": top.packets,
    }
    return [_finding(REJECT_SPIKE, w, detail, evidence, "", top.direction)]


def _by_pair(flows: Iterable[FlowAggregate]) -> dict[tuple[str, str], list[FlowAggregate]]:
    out: dict[tuple[str, str], list[FlowAggregate]] = defaultdict(list)
    for f in flows:
        out[f.pair].append(f)
    return out


def _request_direction(flows: list[FlowAggregate]) -> Direction:
    """The direction of the conversation: the client's side to the server's."""
    f = flows[0]
    if not f.reply:
        return f.direction
    return (
        Direction.ACCEPTER_TO_REQUESTER
        if f.direction is Direction.REQUESTER_TO_ACCEPTER
        else Direction.REQUESTER_TO_ACCEPTER
    )


def new_talker(w: PeeringWindow, t: Thresholds) -> list[Finding]:
    if not _warm(w, t):
        return []
    out = []
    accepted = [f for f in w.flows if f.accepted]
    for pair, flows in sorted(
        _by_pair(accepted).items(), key=lambda kv: -sum(f.bytes for f in kv[1])
    ):
        if pair_key(pair) in w.baseline.pairs:
            continue
        client, server = pair
        port = _most(Counter(f.port for f in flows))
        detail = (
            f"{w.describe(client)} and {w.describe(server)} (port {port}) exchanged accepted "
            f"traffic across {w.crossing.peering_id} in {w.when}, for the first time in the "
            f"{w.baseline.windows} windows learned."
        )
        evidence = {
            "source": client,
            "destination": server,
            "port": port,
            "protocol": _most(Counter(f.protocol for f in flows)),
            "action": ACCEPT,
            "packets": sum(f.packets for f in flows),
            "bytes": sum(f.bytes for f in flows),
            "baseline": 0,  # windows in which this pair was seen before
            "threshold": 1,
            "baseline_windows": w.baseline.windows,
        }
        direction = _request_direction(flows)
        out.append(_finding(NEW_TALKER, w, detail, evidence, f"{client}>{server}", direction))
    return _capped(out, t, "new pairs")


def unexpected_port(w: PeeringWindow, t: Thresholds) -> list[Finding]:
    if not _warm(w, t):
        return []
    by_port: dict[tuple[int | None, int | None], list[FlowAggregate]] = defaultdict(list)
    for f in w.flows:
        if f.accepted and not f.reply:
            by_port[(f.protocol, f.port)].append(f)
    out = []
    for (protocol, port), flows in sorted(
        by_port.items(), key=lambda kv: -sum(f.packets for f in kv[1])
    ):
        key = port_key(protocol, port)
        if key in w.baseline.ports:
            continue
        top = max(flows, key=lambda f: (f.packets, f.src, f.dst))
        detail = (
            f"Accepted traffic to port {port} (protocol {protocol}) across "
            f"{w.crossing.peering_id} in {w.when}, a port never seen accepted there in the "
            f"{w.baseline.windows} windows learned; the most from {w.describe(top.src)} to "
            f"{w.describe(top.dst)}."
        )
        evidence = {
            "source": top.src,
            "destination": top.dst,
            "port": port,
            "protocol": protocol,
            "action": ACCEPT,
            "packets": sum(f.packets for f in flows),
            "bytes": sum(f.bytes for f in flows),
            "baseline": 0,  # windows in which this port was seen accepted before
            "threshold": 1,
            "known_ports": len(w.baseline.ports),
            "sources": len({f.src for f in flows}),
        }
        out.append(_finding(UNEXPECTED_PORT, w, detail, evidence, key, top.direction))
    return _capped(out, t, "new ports")


def volume_spike(w: PeeringWindow, t: Thresholds) -> list[Finding]:
    if not _warm(w, t):
        return []
    out = []
    for pair, flows in sorted(_by_pair(w.flows).items()):
        total = sum(f.bytes for f in flows)
        known = w.baseline.pairs.get(pair_key(pair))
        base = known.bytes_per_window if known else 0.0
        if total < t.volume_spike_floor or total < t.volume_spike_factor * base:
            continue
        client, server = pair
        port = _most(Counter({f.port: f.bytes for f in flows}))
        ratio = f"{total / base:.0f}x their usual {base:.0f}" if base else "with no usual volume"
        detail = (
            f"{w.describe(client)} and {w.describe(server)} (port {port}) moved {total} bytes "
            f"across {w.crossing.peering_id} in {w.when}, {ratio} bytes per window."
        )
        evidence = {
            "source": client,
            "destination": server,
            "port": port,
            "protocol": _most(Counter(f.protocol for f in flows)),
            "action": ACCEPT if all(f.accepted for f in flows) else None,
            "packets": sum(f.packets for f in flows),
            "bytes": total,
            "baseline": round(base, 1),
            "threshold": max(t.volume_spike_floor, round(t.volume_spike_factor * base, 1)),
        }
        direction = _request_direction(flows)
        out.append(_finding(VOLUME_SPIKE, w, detail, evidence, f"{client}>{server}", direction))
    return _capped(
        sorted(out, key=lambda f: -int(f.extra["evidence"]["bytes"])), t, "volume spikes"
    )


RULES: dict[str, Rule] = {
    PORT_SCAN.id: port_scan,
    REJECT_SPIKE.id: reject_spike,
    NEW_TALKER.id: new_talker,
    UNEXPECTED_PORT.id: unexpected_port,
    VOLUME_SPIKE.id: volume_spike,
}


def evaluate(
    aggregates: WindowAggregates,
    baseline: Baseline,
    thresholds: Thresholds = Thresholds(),
    rules: Iterable[str] | None = None,
) -> list[Finding]:
    """Every finding of the rules (all, or those named) over every window of `aggregates`.

    The baseline is the one learned before these windows: judge first, then learn
    (`baseline.learned(aggregates)`), so an anomaly is not compared with itself.
    """
    names = list(rules if rules is not None else RULES)
    unknown = [r for r in names if r not in RULES]
    if unknown:
        raise ValueError(f"unknown flow rule(s): {', '.join(unknown)}")
    chosen = [RULES[r] for r in names]
    found: list[Finding] = []
    for crossing, start, flows in iter_windows(aggregates):
        w = PeeringWindow(
            crossing, start, aggregates.window.seconds, flows, baseline.of(crossing.peering_id)
        )
        for rule in chosen:
            found.extend(rule(w, thresholds))
    return sort_findings(found)
