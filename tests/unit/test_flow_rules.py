"""The flow anomaly rules and the baseline they compare with (pure: hand-made aggregates)."""

from __future__ import annotations

import pytest

from peerguard.domain import catalogue
from peerguard.domain.catalogue import Kind
from peerguard.domain.findings import Finding, Severity
from peerguard.domain.flows.aggregates import FlowAggregate, Window, WindowAggregates, seen_once
from peerguard.domain.flows.baseline import Baseline, Limits, PairStats, PeeringBaseline
from peerguard.domain.flows.crossing import Direction
from peerguard.domain.flows.rules import RULES, Thresholds, evaluate
from tests.flowdata import ACCOUNT, T0, crossing, side

WEB = side("web", "10.0.0.0/16")
DB = side("db", "10.1.0.0/16")
THEIRS = side("theirs", "10.9.0.0/16", owner="222222222222")
PCX = crossing("pcx-web-db", WEB, DB)
R2A, A2R = Direction.REQUESTER_TO_ACCEPTER, Direction.ACCEPTER_TO_REQUESTER
W = 900


def flow(
    src: str,
    dst: str,
    port: int,
    *,
    action: str = "ACCEPT",
    packets: int = 10,
    bytes: int = 1000,
    records: int = 1,
    reply: bool = False,
    direction: Direction = R2A,
    start: int = T0,
    pcx: str = "pcx-web-db",
) -> FlowAggregate:
    return FlowAggregate(
        pcx, direction, start, src, dst, port, 6, action, reply, packets, bytes, records
    )


def aggs(*flows: FlowAggregate, cs: tuple = (PCX,), windows: int = 1) -> WindowAggregates:
    return WindowAggregates(Window(W, T0, T0 + W * windows), cs, tuple(flows))


def warm(**kw: object) -> Baseline:
    """A baseline that has learned enough windows for every rule to run."""
    return Baseline(peerings={"pcx-web-db": PeeringBaseline(windows=50, **kw)})  # type: ignore[arg-type]


def only(findings: list[Finding], check_id: str) -> list[Finding]:
    return [f for f in findings if f.check_id == check_id]


# -- the catalogue ---------------------------------------------------------------------------


def test_the_five_rules_are_in_the_catalogue_as_flow_entries() -> None:
    entries = catalogue.entries()
    expected = {
        "flow.port_scan": Severity.HIGH,
        "flow.reject_spike": Severity.MEDIUM,
        "flow.new_talker": Severity.LOW,
        "flow.unexpected_port": Severity.MEDIUM,
        "flow.volume_spike": Severity.MEDIUM,
    }
    assert {i: e.severity for i, e in entries.items() if e.kind is Kind.FLOW} == expected
    assert set(RULES) == set(expected)
    for i in expected:
        e = entries[i]
        assert e.resource_type == "AWS::EC2::VPCPeeringConnection" and e.risk and e.fix
        assert "logs:FilterLogEvents" in e.iam_actions and "s3:GetObject" in e.iam_actions
    # flow entries sit after the checks and before what PeerGuard did, whatever was imported
    ids = list(entries)
    assert ids.index("route.peer_side_unverified") < ids.index("flow.port_scan")
    assert ids.index("flow.volume_spike") < ids.index("remediation.applied")
    assert "flow.port_scan" not in catalogue.checks()


# -- port scan -------------------------------------------------------------------------------


def scan(n: int, *, rejected: int, horizontal: bool = False) -> list[FlowAggregate]:
    out = []
    for i in range(n):
        dst, port = (f"10.1.0.{i + 1}", 22) if horizontal else ("10.1.0.9", 1000 + i)
        out.append(flow("10.0.4.4", dst, port, action="REJECT" if i < rejected else "ACCEPT"))
    return out


def test_a_source_reaching_twenty_ports_mostly_rejected_is_a_port_scan() -> None:
    (f,) = evaluate(aggs(*scan(20, rejected=15)), Baseline())  # no baseline needed
    assert f.check_id == "flow.port_scan" and f.severity is Severity.HIGH
    assert f.peering_connection_id == f.resource_id == "pcx-web-db"
    assert (f.account_id, f.vpc_id) == (ACCOUNT, "vpc-db")  # the VPC being scanned
    ev = f.extra["evidence"]
    assert ev["source"] == "10.0.4.4" and ev["destination"] == "10.1.0.9"
    assert ev["distinct_ports"] == 20 and ev["port"] is None and ev["action"] == "REJECT"
    assert (ev["packets"], ev["bytes"], ev["rejected_share"]) == (200, 20000, 0.75)
    assert ev["baseline"] is None and ev["threshold"] == 20
    assert (
        ev["direction"] == "requester-to-accepter" and ev["window_start"] == "2024-06-01T00:00:00Z"
    )
    # The evidence is part of the public JSON, at the top level like every `extra`.
    assert f.to_json()["evidence"]["source"] == "10.0.4.4"
    assert "10.0.4.4 (vpc-web) probed 20 ports on 1 host(s)" in f.detail


def test_twenty_hosts_on_one_port_is_a_scan_too() -> None:
    (f,) = evaluate(aggs(*scan(20, rejected=20, horizontal=True)), Baseline())
    ev = f.extra["evidence"]
    assert ev["port"] == 22 and ev["distinct_destinations"] == 20 and ev["destination"] is None


@pytest.mark.parametrize(
    ("flows", "why"),
    [
        (scan(19, rejected=19), "19 ports"),
        (scan(19, rejected=19, horizontal=True), "19 hosts"),
        (scan(20, rejected=10), "half rejected is not mostly"),
    ],
)
def test_below_the_thresholds_is_no_scan(flows: list[FlowAggregate], why: str) -> None:
    assert evaluate(aggs(*flows), Baseline()) == [], why


def test_replies_are_not_probes() -> None:
    replies = [
        flow("10.1.0.9", "10.0.4.4", 1000 + i, action="REJECT", reply=True) for i in range(30)
    ]
    assert evaluate(aggs(*replies), Baseline(), rules=["flow.port_scan"]) == []


def test_thresholds_are_settings() -> None:
    t = Thresholds(scan_ports=5)
    assert only(evaluate(aggs(*scan(5, rejected=5)), Baseline(), t), "flow.port_scan")
    with pytest.raises(ValueError, match="scan_ports"):
        Thresholds(scan_ports=0)
    with pytest.raises(ValueError, match="unknown flow rule"):
        evaluate(aggs(), Baseline(), rules=["flow.nope"])


# -- baseline rules --------------------------------------------------------------------------


def test_nothing_but_scans_is_judged_while_the_baseline_learns() -> None:
    loud = [flow("10.0.1.1", "10.1.1.1", 9999, action="REJECT", packets=10**6, bytes=10**10)]
    young = Baseline(peerings={"pcx-web-db": PeeringBaseline(windows=11)})
    assert evaluate(aggs(*loud), young) == []
    assert {f.check_id for f in evaluate(aggs(*loud), warm())} == {
        "flow.reject_spike",
        "flow.volume_spike",
    }  # rejected: no new talker, no unexpected port


def test_reject_spike_compares_with_ten_times_the_usual_and_a_floor() -> None:
    def rejected(packets: int) -> WindowAggregates:
        return aggs(
            flow("10.0.1.1", "10.1.1.1", 443, action="REJECT", packets=packets - 100),
            flow("10.0.1.2", "10.1.1.1", 443, action="REJECT", packets=100),
            flow("10.0.1.1", "10.1.1.1", 443, packets=10**6),  # accepted: not counted
        )

    base = warm(reject_packets_per_window=100.0)
    assert only(evaluate(rejected(999), base), "flow.reject_spike") == []  # < 10x
    (f,) = only(evaluate(rejected(1000), base), "flow.reject_spike")
    ev = f.extra["evidence"]
    assert (ev["packets"], ev["baseline"], ev["threshold"]) == (1000, 100.0, 1000.0)
    assert (ev["source"], ev["destination"], ev["port"], ev["top_packets"]) == (
        "10.0.1.1", "10.1.1.1", 443, 900,
    )  # fmt: skip
    quiet = warm(reject_packets_per_window=0.0)
    assert only(evaluate(rejected(499), quiet), "flow.reject_spike") == []  # under the floor
    assert only(evaluate(rejected(500), quiet), "flow.reject_spike")


def test_new_talker_is_an_accepted_pair_the_baseline_never_saw() -> None:
    known = warm(pairs={"10.0.1.1 10.1.1.1": PairStats(bytes_per_window=1e3, windows=9)})
    found = evaluate(
        aggs(
            flow("10.0.1.1", "10.1.1.1", 443),  # known pair
            flow("10.1.1.1", "10.0.1.1", 443, reply=True, direction=A2R),  # its reply
            flow("10.0.1.7", "10.1.1.1", 443),  # new
            flow("10.1.1.1", "10.0.1.7", 443, reply=True, direction=A2R),  # its reply
            flow("10.0.1.8", "10.1.1.1", 443, action="REJECT"),  # new, but refused
        ),
        known,
        rules=["flow.new_talker"],
    )
    (f,) = found
    ev = f.extra["evidence"]
    assert (ev["source"], ev["destination"], ev["port"], ev["action"]) == (
        "10.0.1.7", "10.1.1.1", 443, "ACCEPT",
    )  # fmt: skip
    assert (ev["packets"], ev["bytes"], ev["baseline"], ev["baseline_windows"]) == (20, 2000, 0, 50)


def test_unexpected_port_is_an_accepted_request_port_never_seen_accepted() -> None:
    base = warm(ports={"6/443": T0 - W})
    found = evaluate(
        aggs(
            flow("10.0.1.1", "10.1.1.1", 443),
            flow("10.0.1.1", "10.1.1.1", 3306, packets=7),
            flow("10.0.1.2", "10.1.1.2", 3306, packets=3),
            flow("10.1.1.1", "10.0.1.1", 51515, reply=True, direction=A2R),  # a reply's port
            flow("10.0.1.1", "10.1.1.1", 8080, action="REJECT"),  # refused
        ),
        base,
        rules=["flow.unexpected_port"],
    )
    (f,) = found
    ev = f.extra["evidence"]
    assert (ev["port"], ev["packets"], ev["sources"], ev["known_ports"]) == (3306, 10, 2, 1)
    assert ev["source"] == "10.0.1.1" and f.vpc_id == "vpc-db"


def test_volume_spike_is_ten_times_the_pairs_bytes_and_above_the_floor() -> None:
    base = warm(pairs={"10.0.1.1 10.1.1.1": PairStats(bytes_per_window=2e7, windows=9)})

    def moved(n: int) -> WindowAggregates:
        return aggs(
            flow("10.0.1.1", "10.1.1.1", 5432, bytes=n // 2),
            flow("10.1.1.1", "10.0.1.1", 5432, bytes=n - n // 2, reply=True, direction=A2R),
        )

    t = Thresholds(volume_spike_floor=10**8)
    assert only(evaluate(moved(2 * 10**8 - 1), base, t), "flow.volume_spike") == []
    (f,) = only(evaluate(moved(2 * 10**8), base, t), "flow.volume_spike")
    ev = f.extra["evidence"]
    assert (ev["source"], ev["destination"], ev["bytes"], ev["baseline"]) == (
        "10.0.1.1", "10.1.1.1", 2 * 10**8, 2e7,
    )  # fmt: skip
    assert f.extra["evidence"]["direction"] == "requester-to-accepter"  # the client's way


def test_findings_per_rule_and_window_are_capped_and_say_so() -> None:
    many = [flow(f"10.0.2.{i}", "10.1.1.1", 443) for i in range(1, 31)]
    found = evaluate(aggs(*many), warm(), Thresholds(max_findings=5), rules=["flow.new_talker"])
    assert len(found) == 5
    assert all("(one of 30 new pairs in this window)" in f.detail for f in found)
    assert len({f.fingerprint for f in found}) == 5  # one identity per pair


def test_each_window_is_judged_on_its_own() -> None:
    flows = scan(20, rejected=20)
    spread = [f._replace(window_start=T0 if i < 10 else T0 + W) for i, f in enumerate(flows)]
    assert evaluate(aggs(*spread, windows=2), Baseline()) == []
    assert len(evaluate(aggs(*flows, windows=2), Baseline())) == 1


def test_findings_on_a_cross_account_peering_are_filed_in_this_account() -> None:
    pcx = crossing("pcx-theirs-web", THEIRS, WEB, home=WEB)
    flows = [
        flow("10.9.0.1", "10.0.0.9", 1000 + i, action="REJECT", pcx="pcx-theirs-web")
        for i in range(25)
    ]
    (f,) = evaluate(aggs(*flows, cs=(pcx,)), Baseline())
    assert (f.account_id, f.vpc_id, f.region) == (ACCOUNT, "vpc-web", "us-east-1")
    # Their VPC is the destination of a scan the other way: filed under our VPC still.
    back = [f_._replace(src="10.0.0.9", dst="10.9.0.1", direction=A2R) for f_ in flows]
    (g,) = evaluate(aggs(*back, cs=(pcx,)), Baseline())
    assert g.vpc_id == "vpc-web"


# -- the baseline ----------------------------------------------------------------------------


def test_the_baseline_learns_means_per_window_including_quiet_windows() -> None:
    a = aggs(
        flow("10.0.1.1", "10.1.1.1", 443, action="REJECT", packets=300, bytes=3000),
        flow("10.0.1.1", "10.1.1.1", 443, packets=5, bytes=1000),
        flow("10.1.1.1", "10.0.1.1", 443, packets=5, bytes=5000, reply=True, direction=A2R),
        windows=3,  # two more windows without any traffic
    )
    b = Baseline().learned(a).of("pcx-web-db")
    assert (b.windows, b.last_window) == (3, T0 + 2 * W)
    assert b.reject_packets_per_window == pytest.approx(100.0)  # 300 over 3 windows
    assert b.pairs == {
        "10.0.1.1 10.1.1.1": PairStats(bytes_per_window=9000.0, windows=1, last_seen=T0)
    }
    assert b.ports == {"6/443": T0}  # the reply's port is not learned as a service port


def test_learning_a_window_twice_counts_it_once() -> None:
    a = aggs(flow("10.0.1.1", "10.1.1.1", 443, action="REJECT", packets=100))
    once = Baseline().learned(a)
    assert once.learned(a) == once


def test_the_baseline_is_bounded_and_serialisable() -> None:
    limits = Limits(pairs=3, ports=2)
    b = Baseline()
    for i in range(6):  # six windows, a new pair and a new port in each
        w = aggs(flow(f"10.0.1.{i}", "10.1.1.1", 1000 + i, start=T0 + i * W))
        w = WindowAggregates(Window(W, T0 + i * W, T0 + (i + 1) * W), (PCX,), w.flows)
        b = b.learned(w, limits)
    p = b.of("pcx-web-db")
    assert sorted(p.pairs) == ["10.0.1.3 10.1.1.1", "10.0.1.4 10.1.1.1", "10.0.1.5 10.1.1.1"]
    assert sorted(p.ports) == ["6/1004", "6/1005"]
    assert Baseline.model_validate_json(b.model_dump_json()) == b
    assert len(b.model_dump_json()) < 1000


def test_the_mean_turns_exponential_once_warm() -> None:
    b = PeeringBaseline(windows=100, reject_packets_per_window=100.0)
    base = Baseline(peerings={"pcx-web-db": b})
    a = aggs(flow("10.0.1.1", "10.1.1.1", 443, action="REJECT", packets=1100))
    learned = base.learned(a, Limits(alpha=0.1)).of("pcx-web-db")
    assert learned.reject_packets_per_window == pytest.approx(200.0)  # 100 + 0.1 * 1000


def test_a_flow_in_both_vpcs_logs_counts_once_where_it_arrived() -> None:
    into_db = flow("10.0.1.1", "10.1.1.1", 443, records=3)  # web -> db
    seen = [(into_db, "src"), (into_db._replace(action="REJECT"), "dst"), (into_db, None)]
    kept, copies = seen_once(seen, (PCX,), {"vpc-web", "vpc-db"})
    assert copies == 3 and sorted(f.action or "" for f in kept) == ["ACCEPT", "REJECT"]
    # db's log not read: web's copy is the only one, and counts.
    kept, copies = seen_once([(into_db, "src")], (PCX,), {"vpc-web"})
    assert copies == 0 and kept == (into_db,)
