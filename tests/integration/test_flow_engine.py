"""The embedded engine (DuckDB) on generated and hand-written records.

Each test writes log files the way AWS delivers them and checks what the engine makes of
them; one compares it with a plain-Python reading of the same lines on random records.
"""

from __future__ import annotations

import gzip
import ipaddress
import random
from collections import Counter
from pathlib import Path

import pytest

from peerguard.aws.flows.engine import Engine, LogFile, analyse, connect
from peerguard.domain.flows.aggregates import (
    Counts,
    FlowAggregate,
    Window,
    WindowAggregates,
    ordered,
)
from peerguard.domain.flows.crossing import Crossing, Direction
from peerguard.domain.flows.formats import DEFAULT, Format, FormatError, parse_log_format
from tests.flowdata import T0, V2_HEADER, crossing, custom, nodata, side, v2, write

WEB = side("web", "10.0.0.0/16", "2600:1f18:a:100::/56")
DB = side("db", "10.1.0.0/16", "10.2.0.0/20", "2600:1f18:b:200::/56")
OPS = side("ops", "172.31.0.0/16", owner="222222222222")
PCX = crossing("pcx-web-db", WEB, DB)
PCX2 = crossing("pcx-ops-web", OPS, WEB)
R2A, A2R = Direction.REQUESTER_TO_ACCEPTER, Direction.ACCEPTER_TO_REQUESTER
WINDOW = Window(900, T0, T0 + 3600)


def run(
    tmp_path: Path,
    lines: list[str],
    cs: tuple[Crossing, ...] = (PCX,),
    *,
    name: str = "flows.log",
    header: str | None = None,
    fmt: Format | None = None,
    window: Window = WINDOW,
) -> WindowAggregates:
    path = write(tmp_path / name, lines, header=header)
    return analyse([LogFile(path, fmt)], cs, window)


def keyed(aggs: WindowAggregates) -> dict[tuple[object, ...], tuple[int, int, int]]:
    return {f.key: (f.packets, f.bytes, f.records) for f in aggs.flows}


def test_requests_and_replies_cross_the_peering_under_the_service_port(tmp_path: Path) -> None:
    aggs = run(
        tmp_path,
        [
            v2("10.0.1.5", "10.1.2.7", 40001, 5432, packets=10, bytes=1000),
            v2("10.0.1.5", "10.1.2.7", 40002, 5432, packets=5, bytes=500),  # 2nd connection
            v2("10.1.2.7", "10.0.1.5", 5432, 40001, packets=8, bytes=8000),  # the reply
            v2("10.0.1.5", "8.8.8.8", 40003, 53, protocol=17),  # to the internet
            v2("10.0.1.5", "10.0.3.3", 40004, 22),  # inside the VPC
        ],
    )
    w = T0
    assert keyed(aggs) == {
        ("pcx-web-db", R2A, w, "10.0.1.5", "10.1.2.7", 5432, 6, "ACCEPT", False): (15, 1500, 2),
        ("pcx-web-db", A2R, w, "10.1.2.7", "10.0.1.5", 5432, 6, "ACCEPT", True): (8, 8000, 1),
    }
    assert aggs.counts == Counts(flows=3, not_crossing=2)
    assert aggs.engine == "duckdb"


def test_secondary_blocks_and_ipv6_in_every_spelling_cross(tmp_path: Path) -> None:
    aggs = run(
        tmp_path,
        [
            v2("10.0.1.5", "10.2.15.250", 40001, 443),  # the secondary /20
            v2("10.0.1.5", "10.2.16.1", 40001, 443),  # just past it
            v2("2600:1f18:a:100::5", "2600:1f18:b:2ff:ffff:ffff:ffff:ffff", 40001, 443),
            v2("2600:1f18:a:1ff::", "2600:1f18:b:200:0:0:0:1", 40001, 443),  # "::" at the end
            v2("2600:1f18:000a:0100:0000:0000:0000:0007", "2600:1f18:b:200::9", 40001, 443),
            v2("2600:1f18:a:100::5", "2600:1f18:b:300::1", 40001, 443),  # outside the /56
            v2("10.0.1.5", "2600:1f18:b:200::9", 40001, 443),  # mixed families
        ],
        (PCX,),
    )
    assert sorted(f.dst for f in aggs.flows) == [
        "10.2.15.250",
        "2600:1f18:b:200:0:0:0:1",
        "2600:1f18:b:200::9",
        "2600:1f18:b:2ff:ffff:ffff:ffff:ffff",
    ]
    assert aggs.counts.flows == 4
    assert aggs.counts.not_crossing == 2
    assert aggs.counts.malformed == 1  # an IPv4 source cannot talk to an IPv6 destination


def test_nodata_skipdata_dashes_and_malformed_lines_are_counted_never_fatal(
    tmp_path: Path,
) -> None:
    good = v2("10.0.1.5", "10.1.2.7", 40001, 443)
    path = tmp_path / "flows.log"
    body = (
        "\n".join(
            [
                V2_HEADER,
                good,
                nodata(),
                nodata(status="SKIPDATA"),
                v2("10.0.1.5", "10.1.2.7", 40001, 443, bytes="-"),  # "-": no value, still a flow
                "",  # blank lines are not records
                good + " extra",  # one field too many
                " ".join(good.split()[:9]),  # too few
                v2("10.0.1.5", "10.1.2.7", 40001, 443, packets="ten"),  # not a number
                v2("10.0.1.5", "10.1.2.7", 40001, 443, action="MAYBE"),
                v2("10.0.1.999", "10.1.2.7", 40001, 443),  # not an address
                good.replace(" ", "  ", 1),  # a doubled space
                v2("-", "-", "-", "-", status="OK"),  # OK without addresses
            ]
        ).encode()
        + b"\n2 bad \xff\xfe bytes\n"
    )
    path.write_bytes(body)
    aggs = analyse([LogFile(path)], (PCX,), WINDOW)
    assert aggs.counts == Counts(
        flows=2, nodata=1, skipdata=1, malformed=7, unaddressed=1, not_crossing=0
    )
    (flow,) = aggs.flows
    assert (flow.packets, flow.bytes, flow.records) == (20, 1000, 2)


def test_a_file_with_mixed_line_endings_is_read_as_whole_lines(tmp_path: Path) -> None:
    lines = [v2("10.0.1.5", "10.1.2.7", 40000 + i, 443) for i in range(4)] + ["2 garbage"]
    clean = run(tmp_path, lines, name="clean.log")
    mixed = tmp_path / "mixed.log"
    mixed.write_bytes(("\r\n".join(lines[:2]) + "\n" + "\n".join(lines[2:]) + "\r\n").encode())
    aggs = analyse([LogFile(mixed)], (PCX,), WINDOW)
    assert keyed(aggs) == keyed(clean)
    assert aggs.counts == clean.counts == Counts(flows=4, malformed=1)


V5 = parse_log_format(
    "${version} ${vpc-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} "
    "${packets} ${bytes} ${start} ${end} ${action} ${tcp-flags} ${pkt-srcaddr} "
    "${pkt-dstaddr} ${flow-direction} ${traffic-path} ${log-status}"
)


def v5(**values: object) -> str:
    base: dict[str, object] = {
        "version": 5,
        "srcport": 40000,
        "dstport": 443,
        "protocol": 6,
        "packets": 3,
        "bytes": 300,
        "start": T0 + 5,
        "end": T0 + 65,
        "action": "ACCEPT",
        "tcp_flags": 0,
        "log_status": "OK",
    }
    return custom(V5.fields, **{**base, **values})


def test_custom_format_uses_packet_addresses_and_traffic_path(tmp_path: Path) -> None:
    aggs = run(
        tmp_path,
        [
            # a pod behind its node's interface: the packet's own source crosses
            v5(srcaddr="10.0.0.9", pkt_srcaddr="10.0.5.5", dstaddr="10.1.0.7",
               pkt_dstaddr="10.1.0.7", flow_direction="egress", traffic_path=4),
            # same CIDRs, but AWS says it left through the internet gateway (path 8)
            v5(srcaddr="10.0.0.9", pkt_srcaddr="10.0.0.9", dstaddr="10.1.0.7",
               pkt_dstaddr="10.1.0.7", flow_direction="egress", traffic_path=8, dstport=80),
            # ingress records carry no traffic path
            v5(srcaddr="10.1.0.7", pkt_srcaddr="10.1.0.7", dstaddr="10.0.0.9",
               pkt_dstaddr="10.0.0.9", flow_direction="ingress", dstport=8443),
        ],
        header=V5.header,
        fmt=DEFAULT,  # the header line wins over what the flow log was said to use
    )  # fmt: skip
    assert sorted((f.src, f.dst, f.port) for f in aggs.flows) == [
        ("10.0.5.5", "10.1.0.7", 443),
        ("10.1.0.7", "10.0.0.9", 8443),
    ]
    assert aggs.counts == Counts(flows=2, not_crossing=1)


def test_tcp_flags_tell_a_reply_from_a_request_on_high_ports(tmp_path: Path) -> None:
    aggs = run(
        tmp_path,
        [
            # gRPC server on 50051 answers (SYN-ACK, 18): a reply, under port 50051
            v5(srcaddr="10.1.0.7", dstaddr="10.0.0.9", srcport=50051, dstport=40123,
               tcp_flags=18),
            # its client's SYN (2) to 50051 from 40123: a request
            v5(srcaddr="10.0.0.9", dstaddr="10.1.0.7", srcport=40123, dstport=50051,
               tcp_flags=2),
            # without flags, a low port answering a high one is a reply (heuristic)
            v5(srcaddr="10.1.0.7", dstaddr="10.0.0.9", srcport=5432, dstport=41000,
               tcp_flags="-"),
        ],
        header=V5.header,
    )  # fmt: skip
    got = {(f.src, f.port, f.reply) for f in aggs.flows}
    assert got == {("10.1.0.7", 50051, True), ("10.0.0.9", 50051, False), ("10.1.0.7", 5432, True)}


def test_windows_and_records_outside_the_window(tmp_path: Path) -> None:
    aggs = run(
        tmp_path,
        [
            v2("10.0.1.5", "10.1.2.7", 40001, 443, start=T0),
            v2("10.0.1.5", "10.1.2.7", 40001, 443, start=T0 + 899),
            v2("10.0.1.5", "10.1.2.7", 40001, 443, start=T0 + 900),
            v2("10.0.1.5", "10.1.2.7", 40001, 443, start=T0 - 1),
            v2("10.0.1.5", "10.1.2.7", 40001, 443, start=T0 + 3600),
            v2("10.0.1.5", "10.1.2.7", 40001, 443, start="-", end=T0 + 1000),  # end will do
            v2("10.0.1.5", "10.1.2.7", 40001, 443, start="-", end="-"),
        ],
    )
    assert Counter({f.window_start: f.records for f in aggs.flows}) == Counter({T0: 2, T0 + 900: 2})
    assert aggs.counts == Counts(flows=4, outside_window=2, untimed=1)
    assert aggs.window_starts() == [T0, T0 + 900, T0 + 1800, T0 + 2700]


def test_a_flow_logged_by_both_vpcs_is_counted_once_where_it_arrived(tmp_path: Path) -> None:
    egress = write(tmp_path / "web.log", [v2("10.0.1.5", "10.1.2.7", 40001, 22)])
    ingress = write(tmp_path / "db.log", [v2("10.0.1.5", "10.1.2.7", 40001, 22, action="REJECT")])
    both = analyse(
        [LogFile(egress, observer="vpc-web"), LogFile(ingress, observer="vpc-db")], (PCX,), WINDOW
    )
    assert [(f.action, f.records) for f in both.flows] == [("REJECT", 1)]
    assert both.counts == Counts(flows=1, seen_twice=1)
    # Only the source's log is read: its record counts.
    web_only = analyse([LogFile(egress, observer="vpc-web")], (PCX,), WINDOW)
    assert [f.action for f in web_only.flows] == ["ACCEPT"]
    # Told that db's log exists elsewhere (read by another call), web's record is left out.
    told = analyse([LogFile(egress, observer="vpc-web")], (PCX,), WINDOW, observed=["vpc-db"])
    assert told.flows == () and told.counts == Counts(seen_twice=1)
    # In separate batches, the copy is still found: it is decided over the whole call.
    engine = Engine(connect(threads=1), batch_bytes=1)
    apart = engine.analyse(
        [LogFile(egress, observer="vpc-web"), LogFile(ingress, observer="vpc-db")], (PCX,), WINDOW
    )
    assert [f.action for f in apart.flows] == ["REJECT"]


def test_the_vpc_id_field_names_the_observer(tmp_path: Path) -> None:
    lines = [
        v5(vpc_id="vpc-web", srcaddr="10.0.0.9", dstaddr="10.1.0.7", action="ACCEPT"),
        v5(vpc_id="vpc-db", srcaddr="10.0.0.9", dstaddr="10.1.0.7", action="REJECT"),
    ]
    aggs = run(tmp_path, lines, header=V5.header)
    # Both VPCs are logged (vpc-db's record is here), and one copy is kept; since the file
    # itself names no observer, vpc-db counts as observed only when the caller says so.
    assert sorted(f.action or "" for f in aggs.flows) == ["ACCEPT", "REJECT"]
    told = analyse(
        [LogFile(tmp_path / "flows.log")], (PCX,), WINDOW, observed=["vpc-db", "vpc-web"]
    )
    assert [f.action for f in told.flows] == ["REJECT"]


def test_gzip_s3_files_with_headers_and_several_formats_in_one_call(tmp_path: Path) -> None:
    f1 = write(
        tmp_path / "111111111111_vpcflowlogs_us-east-1_fl-0a1_20240601T0005Z_ab12.log.gz",
        [v2("10.0.1.5", "10.1.2.7", 40001, 443)],
        header=V2_HEADER,
    )
    f2 = write(
        tmp_path / "111111111111_vpcflowlogs_us-east-1_fl-0b2_20240601T0005Z_cd34.log.gz",
        [v5(srcaddr="172.31.4.4", dstaddr="10.0.0.9", dstport=22)],
        header=V5.header,
    )
    f3 = write(tmp_path / "cwl.log", [v2("10.1.2.7", "10.0.1.5", 443, 40001)])  # no header
    aggs = analyse([LogFile(f1), LogFile(f2), LogFile(f3)], (PCX, PCX2), WINDOW)
    assert sorted((f.peering_id, f.direction, f.port) for f in aggs.flows) == [
        ("pcx-ops-web", R2A, 22),
        ("pcx-web-db", A2R, 443),
        ("pcx-web-db", R2A, 443),
    ]


def test_batches_give_the_same_aggregates_and_spooled_files_are_deleted(tmp_path: Path) -> None:
    rnd = random.Random(3)
    files = []
    for i in range(6):
        lines = [
            v2(f"10.0.0.{rnd.randint(1, 9)}", f"10.1.0.{rnd.randint(1, 9)}", 40000, 443)
            for _ in range(50)
        ]
        files.append(write(tmp_path / f"f{i}.log", lines))
    whole = Engine(connect(threads=1)).analyse([LogFile(p) for p in files], (PCX,), WINDOW)
    batched = Engine(connect(threads=1), batch_bytes=1).analyse(
        [LogFile(p, temporary=i % 2 == 0) for i, p in enumerate(files)], (PCX,), WINDOW
    )
    assert ordered(batched.flows) == ordered(whole.flows)
    assert batched.counts == whole.counts == Counts(flows=300)
    assert [p.exists() for p in files] == [False, True] * 3


def test_a_truncated_gzip_object_is_read_as_far_as_it_goes(tmp_path: Path) -> None:
    lines = [v2("10.0.1.5", "10.1.2.7", 40000 + i, 443) for i in range(5000)]
    whole = write(tmp_path / "whole.log.gz", lines)
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    good = write(tmp_path / "good.log", lines[:10])
    engine = Engine(connect(threads=1))
    aggs = engine.analyse([LogFile(cut), LogFile(good)], (PCX,), WINDOW)
    assert 10 + 1000 < aggs.counts.flows < 10 + 5000  # half a file, and the other file
    assert aggs.counts.malformed <= 1  # the line cut in the middle
    (why,) = aggs.unreadable
    assert (
        "cut.log.gz" in why and "Unexpected end of GZIP stream" in why and "read the first" in why
    )
    # Not gzip at all, though named so: its lines are not records.
    fake = tmp_path / "fake.log.gz"
    fake.write_bytes(b"not a flow log\n")
    assert analyse([LogFile(fake)], (PCX,), WINDOW).counts == Counts(malformed=1)


def test_no_peering_means_nothing_crosses(tmp_path: Path) -> None:
    aggs = run(tmp_path, [v2("10.0.1.5", "10.1.2.7")], ())
    assert aggs.flows == () and aggs.counts == Counts(not_crossing=1)


def test_a_format_without_addresses_is_refused(tmp_path: Path) -> None:
    fmt = parse_log_format("${version} ${interface-id} ${action}")
    with pytest.raises(FormatError, match="no source and destination"):
        run(tmp_path, ["2 eni-1 ACCEPT"], fmt=fmt)


# -- against a plain-Python reading of the same lines ------------------------------------------


def reference(
    lines: list[str], cs: tuple[Crossing, ...], window: Window, ephemeral: int = 32768
) -> tuple[dict[tuple[object, ...], list[int]], Counter[str]]:
    """What the engine should make of default-format lines, written out in Python."""
    nets = []
    for c in cs:
        for d in Direction:
            s, t = c.side(d, source=True), c.side(d, source=False)
            nets.append((c.peering_id, d, [ipaddress.ip_network(x) for x in s.cidrs],
                         [ipaddress.ip_network(x) for x in t.cidrs]))  # fmt: skip

    def starts(cidrs: tuple[str, ...]) -> set[str]:
        out = set()
        for x in cidrs:
            n = ipaddress.ip_network(x)
            if n.version == 4:
                octets = str(n.network_address).split(".")[: n.prefixlen // 8]
                out.add("".join(o + "." for o in octets))
            else:  # (no zero hextets in these blocks' prefixes)
                hx = n.network_address.exploded.split(":")[: n.prefixlen // 16]
                out.add("".join(f"{int(h, 16):x}:" for h in hx))
        return out

    pairs = []
    for c in cs:
        a, b = starts(c.requester.cidrs), starts(c.accepter.cidrs)
        pairs += [(a, b), (b, a)]

    def candidate(src: str, dst: str) -> bool:
        """Source starts like one side of a peering, destination like the other."""
        return any(
            any(src.startswith(p) for p in a) and any(dst.startswith(p) for p in b)
            for a, b in pairs
        )

    out: dict[tuple[object, ...], list[int]] = {}
    counts: Counter[str] = Counter()

    def num(v: str | None) -> int | None:
        return None if v is None else int(v)

    for line in lines:
        if not line:
            continue
        tok = line.split(" ")
        if len(tok) != 14:
            counts["malformed"] += 1
            continue
        f = dict(zip(DEFAULT.fields, [None if t == "-" else t for t in tok], strict=True))
        if f["log-status"] in ("NODATA", "SKIPDATA"):
            counts[str(f["log-status"]).lower()] += 1
            continue
        if f["srcaddr"] is None or f["dstaddr"] is None:
            counts["unaddressed"] += 1
            continue
        try:
            sp, dp, proto, pk, by, t = (num(f[k]) for k in
                ("srcport", "dstport", "protocol", "packets", "bytes", "start"))  # fmt: skip
        except ValueError:
            counts["malformed"] += 1
            continue
        if f["action"] not in (None, "ACCEPT", "REJECT"):
            counts["malformed"] += 1
            continue
        if t is None:
            counts["untimed"] += 1
            continue
        if not (window.since <= t < window.until):  # type: ignore[operator]
            counts["outside_window"] += 1
            continue
        src, dst = str(f["srcaddr"]), str(f["dstaddr"])
        if not candidate(src, dst):
            counts["not_crossing"] += 1
            continue
        try:
            a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        except ValueError:
            counts["malformed"] += 1
            continue
        if a.version != b.version:
            counts["malformed"] += 1
            continue
        reply = sp is not None and dp is not None and sp < ephemeral <= dp
        port = sp if reply else dp
        matched = [(p, d) for p, d, ss, ds in nets
                   if any(a in n for n in ss) and any(b in n for n in ds)]  # fmt: skip
        if not matched:
            counts["not_crossing"] += 1
            continue
        counts["flows"] += 1
        for p, d in matched:
            key = (p, d, t - t % window.seconds, src, dst, port, proto, f["action"], reply)
            acc = out.setdefault(key, [0, 0, 0])
            acc[0] += pk or 0
            acc[1] += by or 0
            acc[2] += 1
    return out, counts


def random_lines(rnd: random.Random, n: int) -> list[str]:
    hosts = ["10.0.0.5", "10.0.9.9", "10.1.3.3", "10.2.0.7", "10.2.31.1", "172.31.9.9",
             "8.8.4.4", "2600:1f18:a:100::1", "2600:1f18:a:1ff:0:0:0:2", "2600:1f18:b:200::3",
             "2600:1f18:b:300::4", "10.0.1.300"]  # fmt: skip
    out = []
    for _ in range(n):
        r = rnd.random()
        if r < 0.03:
            out.append(nodata(T0 + rnd.randint(0, 3000), rnd.choice(["NODATA", "SKIPDATA"])))
            continue
        if r < 0.05:
            out.append(v2(rnd.choice(hosts), rnd.choice(hosts)) + rnd.choice([" x", ""])[:2])
            continue
        sp, dp = rnd.choice([(rnd.randint(32768, 60999), rnd.choice([22, 443, 5432])),
                             (rnd.choice([22, 443, 5432]), rnd.randint(32768, 60999)),
                             (rnd.randint(1, 65535), rnd.randint(1, 65535))])  # fmt: skip
        out.append(
            v2(
                rnd.choice(hosts),
                rnd.choice(hosts),
                sp,
                dp,
                protocol=rnd.choice([6, 17, 1]),
                packets=rnd.choice([rnd.randint(1, 99), "-"]),
                bytes=rnd.randint(40, 99999),
                start=T0 + rnd.randint(-100, 3700),
                action=rnd.choice(["ACCEPT", "REJECT", "ACCEPT"]),
            )
        )
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_engine_agrees_with_a_plain_python_reading(tmp_path: Path, seed: int) -> None:
    lines = random_lines(random.Random(seed), 3000)
    expected, counts = reference(lines, (PCX, PCX2), WINDOW)
    path = tmp_path / "flows.log.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    aggs = analyse([LogFile(path)], (PCX, PCX2), WINDOW)
    got = {f.key: [f.packets, f.bytes, f.records] for f in aggs.flows}
    assert got == expected
    assert aggs.counts == Counts(**counts)
    assert len(aggs.flows) > 50  # the test data exercises something


def test_flow_aggregate_pair_names_the_client_first() -> None:
    f = FlowAggregate("pcx-1", A2R, T0, "10.1.0.7", "10.0.0.9", 5432, 6, "ACCEPT", True, 1, 1, 1)
    assert f.pair == ("10.0.0.9", "10.1.0.7")
    assert f._replace(reply=False).pair == ("10.1.0.7", "10.0.0.9")
