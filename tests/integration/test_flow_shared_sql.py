"""The SQL shared by the embedded engine and Athena, run through DuckDB.

The Athena rendering of the query (its table, its partition and "$path" predicates) is
run against a DuckDB view shaped like the Athena table over the same S3-style objects,
and must give exactly the embedded engine's aggregates.
"""

from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from peerguard.aws.flows import sql
from peerguard.aws.flows.engine import LogFile, analyse, connect
from peerguard.aws.flows.pushdown import AthenaTable, athena_aggregates, athena_query
from peerguard.aws.flows.sources import FlowLogInfo
from peerguard.domain.flows.aggregates import Window, ordered
from peerguard.domain.flows.crossing import address_key
from peerguard.domain.flows.formats import V2_FIELDS, parse_log_format
from tests.flowdata import ACCOUNT, REGION, T0, V2_HEADER, custom, write
from tests.integration.test_flow_engine import PCX, PCX2, V5, random_lines

WINDOW = Window(900, T0, T0 + 3600)
TABLE = AthenaTable("peerguard", "vpc_flow_lines", "logs-bucket", ACCOUNT, prefix="org/")


def s3_name(flow_log: str, minute: int) -> str:
    when = datetime.fromtimestamp(T0 + minute * 60, UTC)
    return f"{ACCOUNT}_vpcflowlogs_{REGION}_{flow_log}_{when:%Y%m%dT%H%MZ}_0a1b2c3d.log.gz"


def objects(tmp_path: Path) -> tuple[list[Path], list[FlowLogInfo]]:
    rnd = random.Random(11)
    day = tmp_path / "org/AWSLogs" / ACCOUNT / "vpcflowlogs" / REGION / "2024/06/01"
    day.mkdir(parents=True)
    web = FlowLogInfo("fl-0aaa1", "vpc-web", "s3", bucket="logs-bucket", prefix="org/")
    db = FlowLogInfo("fl-0bbb2", "vpc-db", "s3", V5, bucket="logs-bucket", prefix="org/")
    files = []
    for i in range(4):
        files.append(
            write(day / s3_name(web.flow_log_id, 5 * i), random_lines(rnd, 400), header=V2_HEADER)
        )
        v5_lines = [
            custom(V5.fields, version=5, vpc_id="vpc-db", srcaddr=s, dstaddr=d, srcport=sp,
                   dstport=dp, protocol=6, packets=rnd.randint(1, 9), bytes=rnd.randint(40, 900),
                   start=T0 + rnd.randint(0, 3599), end=T0 + 3600, action=a, tcp_flags=fl,
                   log_status="OK", traffic_path="-", flow_direction="ingress")
            for s, d, sp, dp, a, fl in (
                (rnd.choice(["10.0.0.5", "172.31.9.9", "10.0.9.9"]),
                 rnd.choice(["10.1.3.3", "10.2.0.7", "10.0.0.5"]),
                 rnd.randint(1, 65535), rnd.choice([22, 443, 50051]),
                 rnd.choice(["ACCEPT", "REJECT"]), rnd.choice([2, 18, 0, "-"]))
                for _ in range(300)
            )
        ] + ["5 -"]  # a malformed line in the custom format  # fmt: skip
        files.append(write(day / s3_name(db.flow_log_id, 5 * i), v5_lines, header=V5.header))
    return files, [web, db]


def athena_view(con: duckdb.DuckDBPyConnection, files: list[Path], root: Path) -> None:
    """`peerguard.vpc_flow_lines` as Athena sees it: one line per row, partition columns."""
    paths = ", ".join(sql.literal(str(p)) for p in files)
    con.execute("CREATE SCHEMA peerguard")
    # Athena skips each object's header line (skip.header.line.count); so does this view.
    con.execute(
        f"""CREATE VIEW peerguard.vpc_flow_lines AS
        SELECT line, 's3://logs-bucket/' || substr(filename, {len(str(root)) + 2}) AS "$path",
               '{REGION}' AS aws_region, '2024/06/01' AS date_path
        FROM read_csv([{paths}], delim='\x1f', header=true, columns={{'line': 'VARCHAR'}},
                      auto_detect=false, quote='', escape='', filename=true)"""
    )


def test_the_athena_text_gives_the_embedded_engines_aggregates(tmp_path: Path) -> None:
    files, logs = objects(tmp_path)
    cs = (PCX, PCX2)
    by_id = {fl.flow_log_id: fl for fl in logs}
    embedded = analyse(
        [
            LogFile(p, by_id[p.name.split("_")[3]].format, by_id[p.name.split("_")[3]].observer)
            for p in files
        ],
        cs,
        WINDOW,
    )
    text = athena_query(TABLE, REGION, logs, cs, WINDOW)
    assert "read_csv" not in text and '"peerguard"."vpc_flow_lines"' in text
    con = connect(threads=1)
    athena_view(con, files, tmp_path)
    athena = athena_aggregates(con.execute(text).fetchall(), logs, cs, WINDOW)
    assert ordered(athena.flows) == ordered(embedded.flows)
    assert athena.counts == embedded.counts
    c = athena.counts
    assert c.flows > 500 and c.malformed >= 4 and c.not_crossing > 100 and c.seen_twice > 10


def test_athena_reads_only_the_window_partitions_and_the_flow_logs_objects() -> None:
    logs = [FlowLogInfo("fl-0aaa1", "vpc-web", "s3")]
    text = athena_query(TABLE, REGION, logs, (PCX,), Window(900, T0 + 85500, T0 + 86400))
    assert "aws_region = 'us-east-1'" in text
    # the window ends at midnight, plus the delivery slack: two day partitions
    assert "date_path BETWEEN '2024/06/01' AND '2024/06/02'" in text
    assert "strpos(\"$path\", '_fl-0aaa1_') > 0" in text


def test_athena_ddl_projects_the_aws_key_layout() -> None:
    ddl = TABLE.ddl()
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS `peerguard`.`vpc_flow_lines`" in ddl
    assert "LOCATION 's3://logs-bucket/org/AWSLogs/111111111111/vpcflowlogs/'" in ddl
    assert '"projection.aws_region.type" = "injected"' in ddl
    assert '"projection.date_path.format" = "yyyy/MM/dd"' in ddl
    assert (
        '"storage.location.template" = '
        '"s3://logs-bucket/org/AWSLogs/111111111111/vpcflowlogs/${aws_region}/${date_path}"'
    ) in ddl
    hourly = AthenaTable("db", "t", "b", ACCOUNT, hive=True, per_hour=True).ddl()
    assert "\"yyyy'/month='MM'/day='dd'/hour='HH\"" not in hourly  # quoted as a whole
    assert "\"'year='yyyy'/month='MM'/day='dd'/hour='HH\"" in hourly
    assert '"projection.date_path.interval.unit" = "HOURS"' in hourly
    assert "aws-service=vpcflowlogs/aws-region=${aws_region}/${date_path}" in hourly


def test_default_and_custom_format_text_render_positions() -> None:
    g = sql.Group("(SELECT line FROM t)", parse_log_format("${srcaddr} ${dstaddr} ${action}"))
    text = sql.aggregate_query([g], (PCX,), WINDOW)
    assert "cardinality(p) = 3" in text and "p[1] END AS r_srcaddr" in text
    assert "CAST(NULL AS VARCHAR) AS r_packets" in text
    assert len(V2_FIELDS) == 14


# -- the address encoding in SQL is the one in Python ----------------------------------------


def _encode(con: duckdb.DuckDBPyConnection, addresses: list[str]) -> list[int | None]:
    steps = sql._address_steps("src")
    values = ", ".join(f"({sql.literal(a)}, {i})" for i, a in enumerate(addresses))
    q = f"WITH addr0 AS (SELECT * FROM (VALUES {values}) v(src, i)),\n"
    for i, s in enumerate(steps):
        q += f"addr{i + 1} AS (SELECT addr{i}.*, {s} FROM addr{i}),\n"
    q = q.rstrip(",\n") + f"\nSELECT src_num FROM addr{len(steps)} ORDER BY i"
    return [r[0] for r in con.execute(q).fetchall()]


SPELLINGS = st.sampled_from(["compressed", "exploded", "upper"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), SPELLINGS),
        min_size=1,
        max_size=40,
    )
)
def test_sql_encodes_addresses_as_python_does(
    addrs: list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, str]],
) -> None:
    texts = []
    for ip, how in addrs:
        text = ip.exploded if how == "exploded" and ip.version == 6 else str(ip)
        texts.append(text.upper() if how == "upper" else text)
    con = duckdb.connect()
    got = _encode(con, texts)
    assert got == [address_key(t)[1] for t in texts]  # type: ignore[index]


def test_sql_refuses_what_is_not_an_address() -> None:
    bad = ["10.0.0", "10.0.0.256", "10.0.0.1.2", "1:2:3", "1:2:3:4:5:6:7:8:9", "zz::1", "10.-1.0.0"]
    assert _encode(duckdb.connect(), bad) == [None] * len(bad)
