"""The one aggregation query, shared by the embedded engine (DuckDB) and Athena.

The text is written in the subset of SQL that DuckDB and Athena (engine v3, Trino) read
the same way: `split`, `cardinality`, 1-based array subscripts guarded by CASE,
`strpos`, `lpad`/`rpad`, `TRY_CAST`, `%` on integers, VALUES in a WITH clause, LEFT JOIN
with equality and range conditions. Only the relation each group of lines is read from
differs (a `read_csv` of local files, or the Athena table narrowed to one flow log's
objects by partition and `"$path"`). A test runs the Athena rendering through DuckDB on
the same records and compares the aggregates with the embedded engine's.

Athena reads records as whole lines, split here; the embedded engine lets DuckDB's CSV
reader split and type them (a third faster), and falls back to whole lines for a file the
reader cannot take. Both treat a line the same way: fields separated by single spaces, `-`
for none; a line of any other shape, or with a bad number, is counted as malformed, never
fatal, and never shifts fields into the wrong columns.

Output rows: (kind, peering, direction, window_start, src, dst, port, protocol, action,
reply, packets, bytes, records, seen_at). Rows of kind "flow" are the aggregates; every other kind
(nodata, skipdata, malformed, unaddressed, untimed, outside_window, not_crossing) is one
row whose `records` counts those lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from peerguard.domain.flows.aggregates import DEFAULT_EPHEMERAL_FROM, Window
from peerguard.domain.flows.crossing import Crossing, bucket_bits, ranges
from peerguard.domain.flows.formats import PEERING_TRAFFIC_PATHS, Format, column
from peerguard.domain.model import net

# The raw fields the query reads, when the format has them (else NULL).
FIELDS = (
    "srcaddr",
    "dstaddr",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "tcp-flags",
    "traffic-path",
)
NUMERIC = ("srcport", "dstport", "protocol", "packets", "bytes", "start", "end", "tcp-flags")
KINDS = (
    "flow",
    "not_crossing",
    "nodata",
    "skipdata",
    "malformed",
    "unaddressed",
    "untimed",
    "outside_window",
)
# Kinds are small integers inside the query (cheaper to group by), names in its output.
CANDIDATE = 0
CODE = {k: i for i, k in enumerate(KINDS) if k != "flow"}
RESULT_COLUMNS = (
    "kind",
    "peering_id",
    "direction",
    "window_start",
    "src",
    "dst",
    "port",
    "protocol",
    "action",
    "reply",
    "packets",
    "bytes",
    "records",
    "seen_at",
)
_HEX = "'0123456789abcdef'"


# SQL types of the fields the query reads, when a relation gives typed columns.
TYPES = {
    "srcport": "INTEGER",
    "dstport": "INTEGER",
    "protocol": "INTEGER",
    "packets": "BIGINT",
    "bytes": "BIGINT",
    "start": "BIGINT",
    "end": "BIGINT",
    "tcp-flags": "INTEGER",
    "traffic-path": "INTEGER",
}


def sql_type(field: str) -> str:
    return TYPES.get(field, "VARCHAR")


@dataclass(frozen=True)
class Group:
    """Records of one format from one place.

    `relation` has one VARCHAR column `line` (whole lines, split here: Athena, and the
    embedded engine's fallback), or, with `columns`, the format's fields as columns named
    by `formats.column` and typed by `sql_type`, `-` read as NULL, with every line of the
    wrong shape or with a bad number left out and counted by the reader (DuckDB's CSV
    reader: the embedded engine's fast path). Both give the same rows for the same lines.
    """

    relation: str
    format: Format
    observer: str | None = None  # the VPC whose flow log these lines are, when known
    columns: bool = False


def literal(value: str | None) -> str:
    if value is None:
        return "CAST(NULL AS VARCHAR)"
    return "'" + value.replace("'", "''") + "'"


def _raw(name: str) -> str:
    return "r_" + name.replace("-", "_")


def _typed_group_sql(g: Group) -> str:
    cols = []
    for f in FIELDS:
        value = f'"{column(f)}"' if g.format.has(f) else f"CAST(NULL AS {sql_type(f)})"
        cols.append(f"{value} AS {_raw(f)}")
    cols.append(f"{literal(g.observer)} AS observer")
    return f"SELECT TRUE AS ok, {', '.join(cols)}\n  FROM {g.relation}"


def _group_sql(g: Group) -> str:
    if g.columns:
        return _typed_group_sql(g)
    fmt = g.format
    n = len(fmt.fields)
    first = fmt.fields[0]
    cols = []
    for f in FIELDS:
        pos = fmt.position(f)
        value = f"CASE WHEN ok THEN p[{pos}] END" if pos else "CAST(NULL AS VARCHAR)"
        cols.append(f"{value} AS {_raw(f)}")
    cols.append(f"{literal(g.observer)} AS observer")
    # Exactly one space between fields, as AWS writes them; anything else is malformed.
    return f"""SELECT ok, {", ".join(cols)}
  FROM (
    SELECT p, cardinality(p) = {n} AS ok
    FROM (
      SELECT split(line, ' ') AS p
      FROM {g.relation}
      WHERE line IS NOT NULL AND line <> '' AND line <> {literal(first)}
        AND line NOT LIKE {literal(first + " %")}
    ) t0
  ) t1"""


def _hex_digits(x: str) -> list[str]:
    """The four digits of hextet `x` (left-padded), each -1 when not a hex digit."""
    y = f"lpad({x}, 4, '0')"
    return [f"(strpos({_HEX}, substr({y}, {i}, 1)) - 1)" for i in range(1, 5)]


def _hextet(x: str) -> str:
    d = _hex_digits(x)
    return f"({d[0]} * 4096 + {d[1]} * 256 + {d[2]} * 16 + {d[3]})"


def _hex_ok(a: str) -> str:
    """The first four hextets of `a`_g are hex (the lower ones do not matter here)."""
    digits = [d for k in range(1, 5) for d in _hex_digits(f"{a}_g[{k}]")]
    lengths = " AND ".join(f"length({a}_g[{k}]) <= 4" for k in range(1, 5))
    return f"least({', '.join(digits)}) >= 0 AND {lengths}"


def _address_steps(a: str) -> list[str]:
    """SELECT lists that turn column `a` (text) into `a_fam` and `a_num` (see crossing.py)."""
    return [
        # family; IPv4 octets; IPv6 lowercased with a leading/trailing "::" anchored
        f"""CASE WHEN strpos({a}, ':') > 0 THEN 6 WHEN strpos({a}, '.') > 0 THEN 4 END AS {a}_fam,
    CASE WHEN strpos({a}, ':') = 0 AND strpos({a}, '.') > 0 THEN split({a}, '.') END AS {a}_q,
    CASE WHEN strpos({a}, ':') > 0 THEN
      CASE WHEN lower({a}) LIKE '%::' THEN lower({a}) || '0' ELSE lower({a}) END END AS {a}_v6a""",
        f"""CASE WHEN cardinality({a}_q) = 4 THEN TRY_CAST({a}_q[1] AS BIGINT) END AS {a}_o1,
    CASE WHEN cardinality({a}_q) = 4 THEN TRY_CAST({a}_q[2] AS BIGINT) END AS {a}_o2,
    CASE WHEN cardinality({a}_q) = 4 THEN TRY_CAST({a}_q[3] AS BIGINT) END AS {a}_o3,
    CASE WHEN cardinality({a}_q) = 4 THEN TRY_CAST({a}_q[4] AS BIGINT) END AS {a}_o4,
    CASE WHEN {a}_v6a LIKE '::%' THEN '0' || {a}_v6a ELSE {a}_v6a END AS {a}_v6b""",
        # expand "::" to the missing zero groups
        f"""CASE WHEN strpos({a}_v6b, '::') > 0 THEN replace({a}_v6b, '::', ':' || rpad('',
      CAST(2 * greatest(8 - (length({a}_v6b) - length(replace({a}_v6b, ':', ''))), 0)
        AS INTEGER), '0:'))
      ELSE {a}_v6b END AS {a}_v6""",
        f"""split({a}_v6, ':') AS {a}_g""",
        f"""CASE
      WHEN {a}_fam = 4 AND {a}_o1 BETWEEN 0 AND 255 AND {a}_o2 BETWEEN 0 AND 255
        AND {a}_o3 BETWEEN 0 AND 255 AND {a}_o4 BETWEEN 0 AND 255
        THEN {a}_o1 * 16777216 + {a}_o2 * 65536 + {a}_o3 * 256 + {a}_o4
      WHEN {a}_fam = 6 AND cardinality({a}_g) = 8 AND {_hex_ok(a)}
        THEN ({_hextet(f"{a}_g[1]")} - 32768) * 281474976710656
          + {_hextet(f"{a}_g[2]")} * 4294967296
          + {_hextet(f"{a}_g[3]")} * 65536 + {_hextet(f"{a}_g[4]")}
    END AS {a}_num""",
    ]


def _crossings_sql(cs: Sequence[Crossing]) -> str:
    bits = bucket_bits(cs)
    rows = []
    for r in ranges(cs):
        b = bits[r.family]
        width = 32 if r.family == 4 else 64
        size = 1 << (width - b)
        rows.append(
            "("
            + ", ".join(
                [
                    literal(r.peering_id),
                    literal(r.direction.value),
                    str(r.family),
                    f"CAST({r.src_lo - r.src_lo % size} AS BIGINT)",
                    f"CAST({r.dst_lo - r.dst_lo % size} AS BIGINT)",
                    f"CAST({r.src_lo} AS BIGINT)",
                    f"CAST({r.src_hi} AS BIGINT)",
                    f"CAST({r.dst_lo} AS BIGINT)",
                    f"CAST({r.dst_hi} AS BIGINT)",
                    literal(r.src_vpc),
                    literal(r.dst_vpc),
                ]
            )
            + ")"
        )
    if not rows:  # no peering: one row that matches nothing keeps the query valid
        rows.append(
            "(CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR), 0, CAST(0 AS BIGINT), "
            "CAST(0 AS BIGINT), CAST(0 AS BIGINT), CAST(-1 AS BIGINT), CAST(0 AS BIGINT), "
            "CAST(-1 AS BIGINT), CAST(NULL AS VARCHAR), CAST(NULL AS VARCHAR))"
        )
    return (
        "crossing (pcx, direction, fam, src_bucket, dst_bucket, src_lo, src_hi, dst_lo, "
        "dst_hi, src_vpc, dst_vpc) AS (\n  VALUES\n    " + ",\n    ".join(rows) + "\n)"
    )


def _bucket(a: str, bits: dict[int, int]) -> str:
    m4 = 1 << (32 - bits[4])
    m6 = 1 << (64 - bits[6])
    return (
        f"CASE WHEN {a}_fam = 4 THEN {a}_num - {a}_num % {m4} "
        f"WHEN {a}_fam = 6 THEN {a}_num - (({a}_num % {m6}) + {m6}) % {m6} END AS {a}_bucket"
    )


def prefixes(cidrs: Iterable[str]) -> list[str]:
    """Text prefixes that every address of the blocks starts with (a cheap pre-filter).

    IPv4: the whole octets of the prefix ("10.1." for 10.1.0.0/16 or 10.1.16.0/20).
    IPv6: the whole hextets up to the first zero one (which an address may write as
    "::"), as AWS writes them (lowercase, no leading zeros), fully written out (`0db8`),
    and uppercase; "" for a block with none left, which every IPv6 address may be in.
    """
    out: set[str] = set()
    for cidr in cidrs:
        n = net(cidr)
        if n.version == 4:
            octets = str(n.network_address).split(".")[: n.prefixlen // 8]
            out.add("".join(o + "." for o in octets))
            continue
        kept = []
        for h in n.network_address.exploded.split(":")[: n.prefixlen // 16]:
            if int(h, 16) == 0:
                break
            kept.append(h)
        for text in ("".join(f"{int(h, 16):x}:" for h in kept), "".join(f"{h}:" for h in kept)):
            out |= {text, text.upper()}
    # A prefix that another one starts with adds nothing.
    return sorted(p for p in out if not any(p != q and p.startswith(q) for q in out))


def _starts(a: str, ps: list[str]) -> str:
    tests = []
    for p in ps:
        # LIKE 'prefix%' is DuckDB's fastest prefix test (several times starts_with's).
        tests.append(f"{a} LIKE {literal(p + '%')}" if p else f"strpos({a}, ':') > 0")
    return "(" + " OR ".join(tests) + ")" if tests else "1 = 0"


def _sides(cs: Sequence[Crossing]) -> dict[str, list[str]]:
    """Each VPC of the peerings and the text prefixes of its blocks."""
    cidrs: dict[str, list[str]] = {}
    for c in cs:
        for s in (c.requester, c.accepter):
            cidrs.setdefault(s.vpc_id, []).extend(s.cidrs)
    return {vpc: prefixes(blocks) for vpc, blocks in cidrs.items()}


def _side_columns(cs: Sequence[Crossing]) -> tuple[str, str]:
    """(SELECT-list of per-VPC prefix tests for src and dst, the candidate condition).

    A record is a candidate when its source starts like one side of a peering and its
    destination like the other side: traffic inside a VPC, or to the internet, is set
    aside before anything costly is done with it.
    """
    sides = _sides(cs)
    index = {vpc: i for i, vpc in enumerate(sides)}
    cols = []
    for vpc, i in index.items():
        cols.append(f"{_starts('src', sides[vpc])} AS src_in_{i}")
        cols.append(f"{_starts('dst', sides[vpc])} AS dst_in_{i}")
    pairs = set()
    for c in cs:
        a, b = index[c.requester.vpc_id], index[c.accepter.vpc_id]
        pairs |= {(a, b), (b, a)}
    cond = " OR ".join(f"(src_in_{a} AND dst_in_{b})" for a, b in sorted(pairs)) or "1 = 0"
    return (",\n    ".join(cols) or "1 AS no_sides"), f"({cond})"


def aggregate_query(
    groups: Iterable[Group],
    cs: Sequence[Crossing],
    window: Window,
    *,
    ephemeral_from: int = DEFAULT_EPHEMERAL_FROM,
) -> str:
    """The query: lines in, one row per aggregate and one per kind of line not counted.

    Two steps keep the cost per record low: records are first summed per (source,
    destination, port, ...) as text, after a cheap prefix test that sets aside whatever
    cannot cross a peering; only those sums have their addresses parsed into numbers and
    joined with the peerings' ranges. An address is therefore only checked for being an
    address when it could cross a peering: otherwise the record counts as not crossing.

    Each aggregate says where it was seen (`seen_at`): in the flow log of the source's
    VPC ("src"), of the destination's ("dst"), or of neither known (NULL); records that
    a VPC of neither side logged do not cross. A flow between two logged VPCs is in both
    logs: which copy counts is decided over the whole analysis (`aggregates.seen_once`).
    """
    groups = list(groups)
    if not groups:
        raise ValueError("no lines to aggregate")
    bits = bucket_bits(cs)
    side_cols, candidate = _side_columns(cs)
    union = "\n  UNION ALL\n  ".join(_group_sql(g) for g in groups)
    num = {f: f"TRY_CAST({_raw(f)} AS BIGINT)" for f in NUMERIC}
    typed = {g.columns for g in groups}
    if len(typed) > 1:
        raise ValueError("groups of lines and of typed columns cannot be mixed")
    checked = ("srcport", "dstport", "protocol", "packets", "bytes", "start", "tcp-flags")
    bad_number = (
        "1 = 0"  # the reader already refused lines with a bad number
        if typed == {True}
        else " OR ".join(f"({_raw(f)} <> '-' AND {column(f)} IS NULL)" for f in checked)
    )
    since = "" if window.since is None else f"t < {window.since}"
    until = "" if window.until is None else f"t >= {window.until}"
    outside = " OR ".join(x for x in (since, until) if x) or "1 = 0"
    paths = ", ".join(str(p) for p in PEERING_TRAFFIC_PATHS)
    src_steps, dst_steps = _address_steps("src"), _address_steps("dst")
    steps = "\n".join(
        f"""addr{i + 1} AS (
  SELECT addr{i}.*,
    {s},
    {d}
  FROM addr{i}
),"""
        for i, (s, d) in enumerate(zip(src_steps, dst_steps, strict=True))
    )
    last = f"addr{len(src_steps)}"
    w = window.seconds
    e = int(ephemeral_from)
    keys = "kind, src, dst, port, protocol, action, reply, window_start, observer"
    names = " ".join(f"WHEN f.kind2 = {code} THEN {literal(k)}" for k, code in CODE.items())
    return f"""WITH
{_crossings_sql(cs)},
lines AS (
  {union}
),
rec AS (
  SELECT ok,
    COALESCE(NULLIF(r_pkt_srcaddr, '-'), NULLIF(r_srcaddr, '-')) AS src,
    COALESCE(NULLIF(r_pkt_dstaddr, '-'), NULLIF(r_dstaddr, '-')) AS dst,
    {num["srcport"]} AS srcport, {num["dstport"]} AS dstport, {num["protocol"]} AS protocol,
    {num["packets"]} AS packets, {num["bytes"]} AS bytes,
    {num["start"]} AS start, {num["tcp-flags"]} AS tcp_flags,
    TRY_CAST(r_traffic_path AS INTEGER) AS traffic_path,
    NULLIF(r_action, '-') AS action, r_log_status AS log_status,
    COALESCE(NULLIF(r_vpc_id, '-'), observer) AS observer,
    r_srcport, r_dstport, r_protocol, r_packets, r_bytes, r_start, r_end, r_tcp_flags
  FROM lines
),
rec2 AS (
  SELECT rec.*, COALESCE(start, {num["end"]}) AS t,
    CASE WHEN {bad_number} THEN 1 ELSE 0 END AS bad_number,
    {side_cols}
  FROM rec
),
pre AS (
  SELECT rec2.*,
    CASE
      WHEN NOT ok THEN {CODE["malformed"]}
      WHEN log_status = 'NODATA' THEN {CODE["nodata"]}
      WHEN log_status = 'SKIPDATA' THEN {CODE["skipdata"]}
      WHEN src IS NULL OR dst IS NULL THEN {CODE["unaddressed"]}
      WHEN bad_number = 1 OR (action IS NOT NULL AND action NOT IN ('ACCEPT', 'REJECT'))
        THEN {CODE["malformed"]}
      WHEN t IS NULL THEN {CODE["untimed"]}
      WHEN {outside} THEN {CODE["outside_window"]}
      WHEN traffic_path IS NOT NULL AND traffic_path NOT IN ({paths}) THEN {CODE["not_crossing"]}
      WHEN {candidate} THEN {CANDIDATE}
      ELSE {CODE["not_crossing"]}
    END AS kind,
    CASE
      WHEN protocol = 6 AND tcp_flags IS NOT NULL AND tcp_flags % 32 >= 16 THEN 1
      WHEN protocol = 6 AND tcp_flags IS NOT NULL AND tcp_flags % 4 >= 2 THEN 0
      WHEN srcport < {e} AND dstport >= {e} THEN 1
      ELSE 0
    END AS reply
  FROM rec2
),
summed AS (
  SELECT {keys}, SUM(packets) AS packets, SUM(bytes) AS bytes, COUNT(*) AS records
  FROM (
    SELECT kind,
      CASE WHEN kind = {CANDIDATE} THEN src END AS src,
      CASE WHEN kind = {CANDIDATE} THEN dst END AS dst,
      CASE WHEN kind <> {CANDIDATE} THEN NULL WHEN reply = 1 THEN srcport ELSE dstport END
        AS port,
      CASE WHEN kind = {CANDIDATE} THEN protocol END AS protocol,
      CASE WHEN kind = {CANDIDATE} THEN action END AS action,
      CASE WHEN kind = {CANDIDATE} THEN reply END AS reply,
      CASE WHEN kind = {CANDIDATE} THEN t - t % {w} END AS window_start,
      CASE WHEN kind = {CANDIDATE} THEN observer END AS observer,
      packets, bytes
    FROM pre
  ) p
  GROUP BY {keys}
),
addr0 AS (SELECT * FROM summed),
{steps}
classified AS (
  SELECT a.*,
    CASE WHEN kind = {CANDIDATE}
      AND (src_num IS NULL OR dst_num IS NULL OR src_fam <> dst_fam) THEN {CODE["malformed"]}
      ELSE kind END AS kind2,
    {_bucket("src", bits)},
    {_bucket("dst", bits)}
  FROM {last} a
)
SELECT kind, peering_id, direction, window_start, src, dst, port, protocol, action, reply,
  SUM(packets) AS packets, SUM(bytes) AS bytes, SUM(records) AS records, seen_at
FROM (
  SELECT
    CASE {names} WHEN c.pcx IS NULL THEN 'not_crossing' ELSE 'flow' END AS kind,
    c.pcx AS peering_id, c.direction,
    CASE WHEN c.pcx IS NOT NULL THEN f.window_start END AS window_start,
    CASE WHEN c.pcx IS NOT NULL THEN f.src END AS src,
    CASE WHEN c.pcx IS NOT NULL THEN f.dst END AS dst,
    CASE WHEN c.pcx IS NOT NULL THEN f.port END AS port,
    CASE WHEN c.pcx IS NOT NULL THEN f.protocol END AS protocol,
    CASE WHEN c.pcx IS NOT NULL THEN f.action END AS action,
    CASE WHEN c.pcx IS NOT NULL THEN f.reply END AS reply,
    CASE WHEN c.pcx IS NULL THEN NULL WHEN f.observer = c.dst_vpc THEN 'dst'
      WHEN f.observer = c.src_vpc THEN 'src' END AS seen_at,
    f.packets, f.bytes, f.records
  FROM classified f
  LEFT JOIN crossing c
    ON f.kind2 = {CANDIDATE} AND c.fam = f.src_fam AND c.src_bucket = f.src_bucket
    AND c.dst_bucket = f.dst_bucket
    AND f.src_num BETWEEN c.src_lo AND c.src_hi AND f.dst_num BETWEEN c.dst_lo AND c.dst_hi
    AND (f.observer IS NULL OR f.observer = c.dst_vpc OR f.observer = c.src_vpc)
) m
GROUP BY kind, peering_id, direction, window_start, src, dst, port, protocol, action, reply,
  seen_at
"""
