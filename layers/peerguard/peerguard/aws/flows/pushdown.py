"""The same aggregation, pushed down to the engines made for volume: Athena and Logs Insights.

Athena runs the embedded engine's query text (`peerguard.aws.flows.sql`) over a table of
whole lines with partition projection on the AWS key layout, so nothing but the
aggregates leaves S3. Logs Insights runs a `stats` query per log group; it cannot label
peerings itself, so its rows are labelled here with the same ranges the SQL uses.

Clients are passed in; waits go through the `sleep` given (tests pass a no-op).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from peerguard.aws.flows.engine import parse_rows
from peerguard.aws.flows.sources import DEFAULT_SLACK, FlowLogInfo
from peerguard.aws.flows.sql import Group, aggregate_query, literal
from peerguard.domain.flows.aggregates import (
    DEFAULT_EPHEMERAL_FROM,
    DST,
    SRC,
    Counts,
    FlowAggregate,
    Window,
    WindowAggregates,
    seen_once,
)
from peerguard.domain.flows.crossing import Classifier, Crossing
from peerguard.domain.flows.formats import Format

EMBEDDED = "embedded"
ATHENA = "athena"
INSIGHTS = "logs-insights"
INSIGHTS_MAX_ROWS = 10_000  # GetQueryResults returns at most this many
INSIGHTS_MAX_QUERY = 10_000  # characters in a query string


class PushdownError(RuntimeError):
    """The pushed-down query failed; the message says which engine and why."""


def path_for(volume: int, threshold: int, pushdown: str) -> str:
    """The engine for `volume` (S3 bytes listed, or log events): embedded up to the
    threshold (from the settings), the pushed-down engine above it."""
    return EMBEDDED if volume <= threshold else pushdown


# -- Athena --------------------------------------------------------------------------------


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum() or name != name.lower():
        raise ValueError(f"{name!r} is not an Athena name (lowercase letters, digits, _)")
    return name


@dataclass(frozen=True)
class AthenaTable:
    """A table of whole flow log lines over one account's objects in one bucket.

    Partitions are projected from the key layout (no crawler, no MSCK REPAIR):
    `aws_region` is injected (every query names it) and `date_path` is the day folder
    (`yyyy/MM/dd`, or `yyyy/MM/dd/HH` for hourly partitions; Hive-style names with
    `hive`). Lines are the only column, so one table serves every format.
    """

    database: str
    table: str
    bucket: str
    account_id: str
    prefix: str = ""
    hive: bool = False
    per_hour: bool = False
    since: datetime = datetime(2020, 1, 1, tzinfo=UTC)  # start of the projection range

    @property
    def name(self) -> str:
        return f'"{_ident(self.database)}"."{_ident(self.table)}"'

    @property
    def date_format(self) -> str:
        day = "'year='yyyy'/month='MM'/day='dd" if self.hive else "yyyy/MM/dd"
        if self.per_hour:
            day += "'/hour='HH" if self.hive else "/HH"
        return day

    def date_value(self, when: datetime) -> str:
        w = when.astimezone(UTC)
        if self.hive:
            text = f"year={w:%Y}/month={w:%m}/day={w:%d}"
            return text + (f"/hour={w:%H}" if self.per_hour else "")
        return f"{w:%Y/%m/%d}" + (f"/{w:%H}" if self.per_hour else "")

    @property
    def location(self) -> str:
        if self.hive:
            return (
                f"s3://{self.bucket}/{self.prefix}AWSLogs/aws-account-id={self.account_id}/"
                "aws-service=vpcflowlogs/"
            )
        return f"s3://{self.bucket}/{self.prefix}AWSLogs/{self.account_id}/vpcflowlogs/"

    def ddl(self) -> str:
        region_dir = "aws-region=${aws_region}" if self.hive else "${aws_region}"
        unit = "HOURS" if self.per_hour else "DAYS"
        name = f"`{_ident(self.database)}`.`{_ident(self.table)}`"
        return f"""CREATE EXTERNAL TABLE IF NOT EXISTS {name} (
  line string
)
PARTITIONED BY (aws_region string, date_path string)
ROW FORMAT DELIMITED LINES TERMINATED BY '\\n'
STORED AS TEXTFILE
LOCATION '{self.location}'
TBLPROPERTIES (
  "skip.header.line.count" = "1",
  "projection.enabled" = "true",
  "projection.aws_region.type" = "injected",
  "projection.date_path.type" = "date",
  "projection.date_path.format" = "{self.date_format}",
  "projection.date_path.range" = "{self.date_value(self.since)},NOW",
  "projection.date_path.interval" = "1",
  "projection.date_path.interval.unit" = "{unit}",
  "storage.location.template" = "{self.location}{region_dir}/${{date_path}}"
)"""

    def relation(self, region: str, flow_log_id: str, since: datetime, until: datetime) -> str:
        """The lines of one flow log's objects written in [since, until]: partitions
        pruned by region and day (or hour), objects by the flow log id in their name."""
        lo, hi = self.date_value(since), self.date_value(until)
        return (
            f"(SELECT line FROM {self.name} WHERE aws_region = {literal(region)} "
            f"AND date_path BETWEEN {literal(lo)} AND {literal(hi)} "
            f'AND strpos("$path", {literal("_" + flow_log_id + "_")}) > 0)'
        )


def athena_query(
    table: AthenaTable,
    region: str,
    logs: Sequence[FlowLogInfo],
    cs: Sequence[Crossing],
    window: Window,
    *,
    ephemeral_from: int = DEFAULT_EPHEMERAL_FROM,
    slack: timedelta = DEFAULT_SLACK,
) -> str:
    """The shared aggregation over the flow logs' objects of the window (see sql.py)."""
    if window.since is None or window.until is None:
        raise ValueError("an Athena query needs a bounded window")
    since = datetime.fromtimestamp(window.since, UTC)
    until = datetime.fromtimestamp(window.until, UTC) + slack
    groups = [
        Group(table.relation(region, fl.flow_log_id, since, until), fl.format, fl.observer)
        for fl in logs
    ]
    return aggregate_query(groups, cs, window, ephemeral_from=ephemeral_from)


@dataclass
class Athena:
    """StartQueryExecution, poll GetQueryExecution, page GetQueryResults."""

    client: Any
    workgroup: str = "primary"
    output_location: str | None = None  # None: the workgroup's own
    poll_seconds: float = 1.0
    timeout_seconds: float = 600.0
    sleep: Callable[[float], None] = time.sleep
    scanned_bytes: int = 0

    def start(self, sql: str, database: str | None = None) -> str:
        kwargs: dict[str, Any] = {"QueryString": sql, "WorkGroup": self.workgroup}
        if database:
            kwargs["QueryExecutionContext"] = {"Database": database}
        if self.output_location:
            kwargs["ResultConfiguration"] = {"OutputLocation": self.output_location}
        return str(self.client.start_query_execution(**kwargs)["QueryExecutionId"])

    def wait(self, query_id: str) -> None:
        waited = 0.0
        while True:
            ex = self.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            status = ex["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                self.scanned_bytes += int(ex.get("Statistics", {}).get("DataScannedInBytes", 0))
                return
            if state in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason", "no reason given")
                raise PushdownError(f"Athena query {query_id} {state.lower()}: {reason}")
            if waited >= self.timeout_seconds:
                self.client.stop_query_execution(QueryExecutionId=query_id)
                raise PushdownError(
                    f"Athena query {query_id} still {state.lower()} after {waited:.0f} s"
                )
            self.sleep(self.poll_seconds)
            waited += self.poll_seconds

    def rows(self, query_id: str) -> list[list[str | None]]:
        """The result rows (the header row dropped), NULL as None."""
        out: list[list[str | None]] = []
        first = True
        pages = self.client.get_paginator("get_query_results").paginate(QueryExecutionId=query_id)
        for page in pages:
            for row in page["ResultSet"]["Rows"]:
                if first:
                    first = False
                    continue
                out.append([d.get("VarCharValue") for d in row["Data"]])
        return out

    def run(self, sql: str, database: str | None = None) -> list[list[str | None]]:
        qid = self.start(sql, database)
        self.wait(qid)
        return self.rows(qid)

    def create_table(self, table: AthenaTable) -> None:
        qid = self.start(table.ddl())
        self.wait(qid)

    def analyse(
        self,
        table: AthenaTable,
        region: str,
        logs: Sequence[FlowLogInfo],
        cs: Sequence[Crossing],
        window: Window,
        *,
        observed: Iterable[str] = (),
        ephemeral_from: int = DEFAULT_EPHEMERAL_FROM,
    ) -> WindowAggregates:
        sql = athena_query(table, region, logs, cs, window, ephemeral_from=ephemeral_from)
        return athena_aggregates(self.run(sql, table.database), logs, cs, window, observed)


def athena_aggregates(
    rows: Iterable[Sequence[Any]],
    logs: Sequence[FlowLogInfo],
    cs: Sequence[Crossing],
    window: Window,
    observed: Iterable[str] = (),
) -> WindowAggregates:
    """The query's result rows as aggregates, each flow counted once (see seen_once)."""
    seen, counts = parse_rows(rows)
    observers = set(observed) | {fl.observer for fl in logs if fl.observer}
    flows, copies = seen_once(seen, cs, observers)
    counts = replace(counts, flows=counts.flows - copies, seen_twice=copies)
    return WindowAggregates(window, tuple(cs), flows, counts, engine=ATHENA)


# -- CloudWatch Logs Insights ------------------------------------------------------------------


def _field(name: str) -> str:
    return "f_" + name.replace("-", "_")


def _in_blocks(addr: str, cidrs: Iterable[str]) -> str:
    return "(" + " or ".join(f'isIpInSubnet({addr}, "{c}")' for c in cidrs) + ")"


def _crossing_filter(c: Crossing) -> str:
    a, b = c.requester.cidrs, c.accepter.cidrs
    if not a or not b:
        return ""
    src, dst = _field("srcaddr"), _field("dstaddr")
    return (
        f"({_in_blocks(src, a)} and {_in_blocks(dst, b)}) or "
        f"({_in_blocks(src, b)} and {_in_blocks(dst, a)})"
    )


def insights_queries(
    fmt: Format,
    cs: Sequence[Crossing],
    window: Window,
    *,
    ephemeral_from: int = DEFAULT_EPHEMERAL_FROM,
) -> list[tuple[bool, str]]:
    """(replies?, `stats` query) pairs that sum the log group's crossing records like the SQL does.

    Two per batch of peerings (Insights has no CASE): requests, summed under their
    destination port, and replies (from a port below `ephemeral_from` to one at or
    above it), under their source port. Fields come from `parse` in the format's order;
    Insights knows no pkt-srcaddr fallback and no TCP flags here, so only srcaddr/dstaddr
    and the port heuristic are used. Batches keep each query under Insights' size limit.
    """
    needed = ("srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes")
    missing = [f for f in (*needed, "start", "action") if not fmt.has(f)]
    if missing:
        raise ValueError(f"Logs Insights needs the fields {', '.join(missing)} in the format")
    names = ", ".join(_field(f) for f in fmt.fields)
    pattern = " ".join("*" for _ in fmt.fields)
    status = f' and {_field("log-status")} = "OK"' if fmt.has("log-status") else ""
    w, e = window.seconds, int(ephemeral_from)
    sp, dp = _field("srcport"), _field("dstport")
    reply = f"({sp} < {e} and {dp} >= {e})"
    time_filter = []
    if window.since is not None:
        time_filter.append(f"{_field('start')} >= {window.since}")
    if window.until is not None:
        time_filter.append(f"{_field('start')} < {window.until}")
    when = "".join(f" and {t}" for t in time_filter)

    def query(batch: Sequence[Crossing], replies: bool) -> str:
        crossing = " or ".join(f"({x})" for x in (_crossing_filter(c) for c in batch) if x)
        port = sp if replies else dp
        kind = reply if replies else f"not {reply}"
        return (
            f'parse @message "{pattern}" as {names}\n'
            f'| filter ({_field("action")} = "ACCEPT" or {_field("action")} = "REJECT")'
            f"{status}{when}\n"
            f"| filter {kind}\n"
            f"| filter {crossing}\n"
            f"| fields {_field('start')} - {_field('start')} % {w} as window_start\n"
            f"| stats sum({_field('packets')}) as packets, sum({_field('bytes')}) as bytes, "
            f"count(*) as records by window_start, {_field('srcaddr')} as src, "
            f"{_field('dstaddr')} as dst, {port} as port, {_field('protocol')} as protocol, "
            f"{_field('action')} as action"
        )

    out: list[tuple[bool, str]] = []
    batch: list[Crossing] = []
    for c in cs:
        if not _crossing_filter(c):
            continue
        longest = max(len(query([*batch, c], r)) for r in (False, True))
        if batch and longest > INSIGHTS_MAX_QUERY:
            out += [(False, query(batch, False)), (True, query(batch, True))]
            batch = []
        batch.append(c)
    if batch:
        out += [(False, query(batch, False)), (True, query(batch, True))]
    return out


@dataclass
class Insights:
    """StartQuery, then GetQueryResults until the query is Complete."""

    client: Any
    poll_seconds: float = 1.0
    timeout_seconds: float = 600.0
    sleep: Callable[[float], None] = time.sleep
    scanned_bytes: int = 0
    truncated: bool = False

    def run(
        self, log_group: str, query: str, start: datetime, end: datetime
    ) -> list[dict[str, str]]:
        qid = self.client.start_query(
            logGroupName=log_group,
            startTime=int(start.timestamp()),
            endTime=int(end.timestamp()),
            queryString=query,
            limit=INSIGHTS_MAX_ROWS,
        )["queryId"]
        waited = 0.0
        while True:
            res = self.client.get_query_results(queryId=qid)
            status = res["status"]
            if status == "Complete":
                self.scanned_bytes += int(res.get("statistics", {}).get("bytesScanned", 0))
                rows = [
                    {c["field"]: c["value"] for c in row if not c["field"].startswith("@")}
                    for row in res.get("results", [])
                ]
                self.truncated = self.truncated or len(rows) >= INSIGHTS_MAX_ROWS
                return rows
            if status in ("Failed", "Cancelled", "Timeout", "Unknown"):
                raise PushdownError(f"Logs Insights query {qid} on {log_group}: {status}")
            if waited >= self.timeout_seconds:
                # Not stopped: StopQuery takes no narrower Resource than "*", and the query
                # ends by itself (Logs Insights times out after 60 minutes).
                raise PushdownError(
                    f"Logs Insights query {qid} still {status} after {waited:.0f} s"
                )
            self.sleep(self.poll_seconds)
            waited += self.poll_seconds

    def analyse(
        self,
        log: FlowLogInfo,
        cs: Sequence[Crossing],
        window: Window,
        *,
        observed: Iterable[str] = (),
        ephemeral_from: int = DEFAULT_EPHEMERAL_FROM,
        slack: timedelta = DEFAULT_SLACK,
    ) -> WindowAggregates:
        if log.log_group is None:
            raise ValueError(f"{log.flow_log_id} does not deliver to CloudWatch Logs")
        if window.since is None or window.until is None:
            raise ValueError("a Logs Insights query needs a bounded window")
        start = datetime.fromtimestamp(window.since, UTC)
        end = datetime.fromtimestamp(window.until, UTC) + slack
        rows: list[tuple[bool, dict[str, str]]] = []
        for replies, q in insights_queries(log.format, cs, window, ephemeral_from=ephemeral_from):
            rows += [(replies, r) for r in self.run(log.log_group, q, start, end)]
        observers = set(observed) | ({log.observer} if log.observer else set())
        flows, copies = seen_once(label(rows, cs, log.observer), cs, observers)
        return WindowAggregates(
            window,
            tuple(cs),
            flows,
            Counts(flows=sum(f.records for f in flows), seen_twice=copies),
            engine=INSIGHTS,
            truncated=self.truncated,
        )


def label(
    rows: Iterable[tuple[bool, dict[str, str]]],
    cs: Sequence[Crossing],
    observer: str | None,
) -> list[tuple[FlowAggregate, str | None]]:
    """Insights rows as aggregates: peering and direction from the addresses (pure).

    Each comes with the side whose log had it (the log group's VPC), as the SQL says it;
    a row a VPC of neither side logged does not cross.
    """
    classify = Classifier(cs)
    out = []
    for replies, r in rows:
        src, dst = r.get("src", ""), r.get("dst", "")
        for rng in classify(src, dst):
            at = SRC if observer == rng.src_vpc else DST if observer == rng.dst_vpc else None
            if observer is not None and at is None:
                continue
            f = FlowAggregate(
                rng.peering_id,
                rng.direction,
                int(float(r["window_start"])),
                src,
                dst,
                _int(r.get("port")),
                _int(r.get("protocol")),
                r.get("action") or None,
                replies,
                _int(r.get("packets")) or 0,
                _int(r.get("bytes")) or 0,
                _int(r.get("records")) or 0,
            )
            out.append((f, at))
    return out


def _int(value: str | None) -> int | None:
    if value in (None, "", "-"):
        return None
    return int(float(value))
