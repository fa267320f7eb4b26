"""Flow-log analysis: the analyzer on a schedule, and the reading it shares with the CLI.

Each run reads the network (the peerings and their CIDR blocks), finds where the flow logs
of this account's peered VPCs go (DescribeFlowLogs), and analyses the windows from the
watermark on, oldest first, one at a time: read, aggregate, judge against the baseline
learned so far, announce (dedup and channels, as every finding), learn, move the
watermark. A window is analysed once its end is `delivery_delay_minutes` in the past, so a
record delivered late (within the delay) is in it and it is never read twice. A run stops
at `max_windows`, before Lambda's deadline, or when another run moved the watermark;
what is left is carried to the next run.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from peerguard.aws.clients import Clients
from peerguard.aws.flows.engine import Engine, LogFile
from peerguard.aws.flows.pushdown import Athena, AthenaTable, Insights, PushdownError
from peerguard.aws.flows.sources import (
    CloudWatchReader,
    FlowLogInfo,
    S3Reader,
    VolumeExceeded,
    flow_logs,
)
from peerguard.aws.reader import Reader
from peerguard.domain.coverage import Coverage
from peerguard.domain.findings import Finding, sort_findings
from peerguard.domain.flows.aggregates import Counts, Window, WindowAggregates, combine, iso
from peerguard.domain.flows.baseline import Baseline
from peerguard.domain.flows.crossing import Crossing, crossings
from peerguard.domain.flows.formats import DEFAULT, Format
from peerguard.domain.flows.rules import evaluate
from peerguard.events import parse_schedule
from peerguard.observability import MetricUnit, logger, metrics
from peerguard.settings import FlowSettings
from peerguard.state.flows import FlowStore
from peerguard.usecases import pipeline
from peerguard.usecases.pipeline import Runtime

# Errors worth retrying next run (the window is carried, not skipped).
TRANSIENT = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "SlowDown",
}
# A scheduled event's time is the run's "now" when it is recent (a replayed or mutated
# event from long ago, or one from the future, falls back to the clock).
TICK_TRUST = timedelta(days=1)


# -- where the records are ----------------------------------------------------------------


@dataclass(frozen=True)
class LogGroupSource:
    region: str
    log_group: str
    format: Format | None = None
    observer: str | None = None  # the VPC, when only one VPC's flow log delivers here
    flow_log: FlowLogInfo | None = None  # for Logs Insights

    @property
    def name(self) -> str:
        return f"log group {self.log_group} ({self.region})"


@dataclass(frozen=True)
class BucketSource:
    region: str
    bucket: str
    prefix: str = ""
    hive: bool = False
    per_hour: bool = False
    flow_logs: tuple[FlowLogInfo, ...] = ()  # empty: every flow log's objects in the folders

    @property
    def name(self) -> str:
        return f"s3://{self.bucket}/{self.prefix} ({self.region})"

    @property
    def observers(self) -> dict[str, str | None] | None:
        return {f.flow_log_id: f.observer for f in self.flow_logs} if self.flow_logs else None

    @property
    def formats(self) -> dict[str, Format]:
        return {f.flow_log_id: f.format for f in self.flow_logs}


@dataclass(frozen=True)
class FileSource:
    files: tuple[LogFile, ...]

    @property
    def name(self) -> str:
        return f"{len(self.files)} local file(s)"


Source = LogGroupSource | BucketSource | FileSource


@dataclass
class Plan:
    sources: list[Source] = field(default_factory=list)
    observers: set[str] = field(default_factory=set)  # VPCs whose logs are read
    warnings: list[str] = field(default_factory=list)


def _chosen(logs: Sequence[FlowLogInfo]) -> list[FlowLogInfo]:
    """One VPC's flow logs to read: one that records ALL traffic, else its ACCEPT and REJECT
    ones (two ALL logs to two places would count every flow twice)."""
    usable = [
        f
        for f in logs
        if f.status.upper() == "ACTIVE"
        and (
            (f.destination_type == "cloud-watch-logs" and f.log_group)
            or (f.destination_type == "s3" and f.bucket and f.file_format == "plain-text")
        )
    ]
    usable = sorted(usable, key=lambda f: (f.destination_type != "cloud-watch-logs", f.flow_log_id))
    every = [f for f in usable if f.traffic_type.upper() == "ALL"]
    if every:
        return every[:1]
    by_type: dict[str, FlowLogInfo] = {}
    for f in usable:
        by_type.setdefault(f.traffic_type.upper(), f)
    return list(by_type.values())


def plan_sources(
    clients: Clients, cs: Sequence[Crossing], account_id: str, regions: Iterable[str]
) -> Plan:
    """The flow logs of this account's VPCs on an active peering, grouped by destination."""
    plan = Plan()
    wanted: dict[str, set[str]] = {}
    regions = set(regions)
    for c in cs:
        for side in (c.requester, c.accepter):
            if side.owner_id == account_id and side.region in regions:
                wanted.setdefault(side.region, set()).add(side.vpc_id)
    groups: dict[tuple[str, str], list[FlowLogInfo]] = {}
    buckets: dict[tuple[str, str, str, bool, bool], list[FlowLogInfo]] = {}
    for region, vpcs in sorted(wanted.items()):
        try:
            found = flow_logs(clients.client("ec2", region), vpcs)
        except ClientError as e:
            plan.warnings.append(f"DescribeFlowLogs in {region}: {_reason(e)}")
            continue
        per_vpc: dict[str, list[FlowLogInfo]] = {}
        for f in found:
            per_vpc.setdefault(f.resource_id, []).append(f)
        for vpc in sorted(vpcs):
            chosen = _chosen(per_vpc.get(vpc, []))
            if not chosen:
                plan.warnings.append(f"{vpc} ({region}) has no readable flow log")
                continue
            plan.observers.add(vpc)
            for f in chosen:
                if f.destination_type == "s3" and f.bucket:
                    key = (region, f.bucket, f.prefix, f.hive, f.per_hour)
                    buckets.setdefault(key, []).append(f)
                elif f.log_group:
                    groups.setdefault((region, f.log_group), []).append(f)
    for (region, group), logs in sorted(groups.items()):
        vpcs = {f.observer for f in logs if f.observer}
        formats = {f.format for f in logs}
        if len(formats) > 1:
            plan.warnings.append(
                f"log group {group}: flow logs of several formats; read as the first"
            )
        plan.sources.append(
            LogGroupSource(
                region,
                group,
                logs[0].format,
                next(iter(vpcs)) if len(vpcs) == 1 else None,
                logs[0] if len(logs) == 1 else None,
            )
        )
    for (region, bucket, prefix, hive, per_hour), logs in sorted(buckets.items()):
        plan.sources.append(BucketSource(region, bucket, prefix, hive, per_hour, tuple(logs)))
    return plan


# -- reading one window -----------------------------------------------------------------------


@dataclass
class Reading:
    """What reading a span of time gave: the aggregates, and what went wrong on the way."""

    aggregates: WindowAggregates
    warnings: list[str] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)  # sources read only up to the threshold
    retry: str = ""  # a transient error: carry the window, do not skip it
    engines: Counter[str] = field(default_factory=Counter)


@dataclass
class FlowReader:
    """Reads sources over a span with the embedded engine, or pushes down above the volume
    thresholds (when allowed). One engine connection for the whole run."""

    clients: Clients
    settings: FlowSettings
    account_id: str
    pushdown: bool = False
    engine: Engine = field(default_factory=Engine)
    sleep: Callable[[float], None] = time.sleep
    _tables: set[str] = field(default_factory=set)

    def read(
        self, sources: Sequence[Source], cs: Sequence[Crossing], window: Window, observed: set[str]
    ) -> Reading:
        assert window.since is not None and window.until is not None
        since = datetime.fromtimestamp(window.since, UTC)
        until = datetime.fromtimestamp(window.until, UTC)
        parts: list[WindowAggregates] = []
        out = Reading(WindowAggregates(window, tuple(cs)))
        with tempfile.TemporaryDirectory(prefix="peerguard-flows-") as tmp:
            spool = Path(tmp)
            for src in sources:
                try:
                    part = self._one(src, cs, window, since, until, spool, observed, out)
                except (ClientError, BotoCoreError, PushdownError, OSError, ValueError) as e:
                    if isinstance(e, ClientError) and _code(e) in TRANSIENT:
                        out.retry = f"{src.name}: {_reason(e)}"
                        return out
                    out.warnings.append(f"{src.name}: {_reason(e)}")
                    continue
                if part is not None:
                    parts.append(part)
                    out.engines[part.engine] += 1
        out.aggregates = merge(window, cs, parts)
        return out

    def _one(
        self,
        src: Source,
        cs: Sequence[Crossing],
        window: Window,
        since: datetime,
        until: datetime,
        spool: Path,
        observed: set[str],
        out: Reading,
    ) -> WindowAggregates | None:
        s = self.settings
        e = s.ephemeral_from
        if isinstance(src, FileSource):
            return self.engine.analyse(src.files, cs, window, observed=observed, ephemeral_from=e)
        if isinstance(src, LogGroupSource):
            insights = self.pushdown and src.flow_log is not None
            reader = CloudWatchReader(
                self.clients.client("logs", src.region),
                src.log_group,
                spool,
                src.format or DEFAULT,
                src.observer,
                max_events=s.pushdown_log_events,
                stop_at_limit=not insights,  # no pushdown: analyse what the limit allows
            )
            over: list[VolumeExceeded] = []
            files = _until_exceeded(reader.files(since, until), over)
            aggs = self.engine.analyse(files, cs, window, observed=observed, ephemeral_from=e)
            if over and src.flow_log is not None:  # above the threshold: Logs Insights
                pushed = Insights(self.clients.client("logs", src.region), sleep=self.sleep)
                return pushed.analyse(src.flow_log, cs, window, observed=observed, ephemeral_from=e)
            if reader.exceeded is not None:
                out.cut.append(
                    f"{src.name}: {reader.exceeded}; analysed the first {s.pushdown_log_events}"
                )
                return replace(aggs, truncated=True)
            return aggs
        reader3 = S3Reader(
            self.clients.client("s3", src.region),
            src.bucket,
            self.account_id,
            src.region,
            spool,
            prefix=src.prefix,
            hive=src.hive,
            formats=src.formats,
            observers=src.observers,
        )
        objects = reader3.objects(since, until)
        try:
            reader3.check_volume(objects, s.pushdown_s3_bytes)
        except VolumeExceeded as exceeded:
            if self.pushdown and src.flow_logs:
                return self._athena(src, cs, window, observed)
            kept, total = [], 0
            for o in objects:  # oldest first, up to the threshold
                if total + o.size > s.pushdown_s3_bytes:
                    break
                kept.append(o)
                total += o.size
            out.cut.append(
                f"{src.name}: {exceeded}; analysed {len(kept)} of {len(objects)} objects"
            )
            objects = kept
        aggs = self.engine.analyse(
            reader3.files(objects), cs, window, observed=observed, ephemeral_from=e
        )
        return aggs

    def _athena(
        self, src: BucketSource, cs: Sequence[Crossing], window: Window, observed: set[str]
    ) -> WindowAggregates:
        s = self.settings
        # One table per bucket, prefix and account (the table's location is fixed).
        digest = sha256(f"{src.bucket}/{src.prefix}/{self.account_id}".encode()).hexdigest()[:10]
        table = AthenaTable(
            s.athena_database,
            f"{s.athena_table}_{digest}",
            src.bucket,
            self.account_id,
            src.prefix,
            src.hive,
            src.per_hour,
        )
        athena = Athena(
            self.clients.client("athena"),  # the stack's workgroup, in the home region
            s.athena_workgroup,
            s.athena_output or None,
            sleep=self.sleep,
        )
        if table.table not in self._tables:
            athena.create_table(table)
            self._tables.add(table.table)
        return athena.analyse(
            table, src.region, src.flow_logs, cs, window, observed=observed,
            ephemeral_from=s.ephemeral_from,
        )  # fmt: skip


def _until_exceeded(files: Iterator[LogFile], over: list[VolumeExceeded]) -> Iterator[LogFile]:
    """The files until the source says it has more than the threshold (recorded in `over`)."""
    try:
        yield from files
    except VolumeExceeded as e:
        over.append(e)


def merge(
    window: Window, cs: Sequence[Crossing], parts: Sequence[WindowAggregates]
) -> WindowAggregates:
    """The aggregates of several sources (or engines) over one window, as one."""
    counts = Counts()
    for p in parts:
        counts = counts + p.counts
    engines = sorted({p.engine for p in parts if p.engine})
    return WindowAggregates(
        window,
        tuple(cs),
        combine(f for p in parts for f in p.flows),
        counts,
        engine="+".join(engines),
        truncated=any(p.truncated for p in parts),
        unreadable=tuple(u for p in parts for u in p.unreadable),
    )


def _code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code", ""))


def _reason(e: Exception) -> str:
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        return f"{err.get('Code')}: {err.get('Message')}"
    return str(e).splitlines()[0] if str(e) else type(e).__name__


# -- the analyzer ---------------------------------------------------------------------------


def on_schedule(rt: Runtime, event: Any, context: Any = None) -> dict[str, Any]:
    tick = pipeline.parse_or_report(parse_schedule, event)
    if isinstance(tick, dict):
        return tick
    rt.invoked(context)
    return analyse(rt, as_of(tick.time, rt.now()))


def as_of(tick: datetime, now: datetime) -> datetime:
    """The time the run is for: the schedule's tick when it is recent, else the clock."""
    if tick.tzinfo is None:
        tick = tick.replace(tzinfo=UTC)
    return tick if now - TICK_TRUST <= tick <= now else now


def settled_until(when: datetime, settings: FlowSettings) -> int:
    """The end of the last window whose records have all been delivered by `when`."""
    w = settings.window_minutes * 60
    t = int(when.timestamp()) - settings.delivery_delay_minutes * 60
    return t - t % w


@dataclass
class Run:
    """What one analyzer run did (its summary is the handler's result)."""

    as_of: datetime
    start: int
    end: int
    window_seconds: int
    analysed: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    counts: Counts = field(default_factory=Counts)
    warnings: list[str] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)
    stopped: str = ""  # why windows were carried ("" when none were)
    watermark: int | None = None
    notify: Counter[str] = field(default_factory=Counter)
    engines: Counter[str] = field(default_factory=Counter)
    peerings: int = 0
    sources: int = 0

    @property
    def pending(self) -> int:
        start = self.watermark if self.watermark is not None else self.start
        return max(0, (self.end - start) // self.window_seconds)

    def summary(self) -> dict[str, Any]:
        return {
            "status": "analysed",
            "as_of": self.as_of.astimezone(UTC).isoformat(),
            "windows": len(self.analysed),
            "first_window": iso(self.analysed[0]) if self.analysed else None,
            "last_window": iso(self.analysed[-1]) if self.analysed else None,
            "carried": self.pending,
            "stopped": self.stopped,
            "watermark": iso(self.watermark) if self.watermark is not None else None,
            "peerings": self.peerings,
            "sources": self.sources,
            "findings": dict(sorted(Counter(f.check_id for f in self.findings).items())),
            "records": self.counts.to_json(),
            "engines": dict(self.engines),
            "cut": self.cut,
            "warnings": self.warnings,
            "notify": dict(self.notify),
        }


def analyse(rt: Runtime, when: datetime) -> dict[str, Any]:
    s = rt.settings
    assert isinstance(s, FlowSettings)
    if not s.table_name:
        return {
            "status": "skipped",
            "reason": "no state table (PEERGUARD_TABLE): nowhere to keep the watermark",
        }
    w = s.window_minutes * 60
    store = FlowStore(rt.clients.client("dynamodb"), s.table_name)
    account, region = rt.clients.account_id(), rt.region
    mark = store.watermark(account, region)
    end = settled_until(when, s)
    start = mark.next_window if mark else end - (s.backfill_minutes * 60 // w) * w
    run = Run(when, start, end, w, watermark=mark.next_window if mark else None)
    if start >= end:
        return _finish(run, "")
    snapshot = Reader(rt.clients, account).full(rt.regions)
    run.warnings += list(snapshot.warnings)
    cs = crossings(snapshot)
    run.peerings = len(cs)
    plan = plan_sources(rt.clients, cs, account, rt.regions)
    run.sources = len(plan.sources)
    run.warnings += plan.warnings
    if not cs or not plan.sources:  # nothing to read: every window is empty
        moved = store.advance(account, region, mark, end, rt.now())
        run.watermark = end if moved else run.watermark
        return _finish(run, "" if moved else "another run moved the watermark")
    baseline = store.baselines(c.peering_id for c in cs)
    reader = FlowReader(rt.clients, s, account, pushdown=s.pushdown, sleep=rt.sleep)
    slowest = 0.0
    for ws in range(start, end, w):
        if len(run.analysed) >= s.max_windows:
            return _finish(run, f"at most {s.max_windows} windows per run")
        left = rt.time_left()
        if left is not None and left < s.reserve_seconds + slowest:
            return _finish(run, f"{left:.0f} s left before the deadline")
        began = time.monotonic()
        reading = reader.read(plan.sources, cs, Window(w, ws, ws + w), plan.observers)
        if reading.retry:
            run.warnings.append(reading.retry)
            return _finish(run, f"transient error, window {iso(ws)} retried next run")
        aggs = reading.aggregates
        found = evaluate(aggs, baseline, s.thresholds())
        if found:
            result = pipeline.announce(rt, found, Coverage.nothing(account, region))
            run.notify.update({k: v for k, v in result.get("decisions", {}).items() if v})
        baseline = baseline.learned(aggs)
        store.save_baselines(baseline, (c.peering_id for c in cs), rt.now())
        moved = store.advance(account, region, mark, ws + w, rt.now())
        if moved is None:
            return _finish(run, "another run moved the watermark")
        mark = moved
        run.watermark = ws + w
        run.analysed.append(ws)
        run.findings += found
        run.counts = run.counts + aggs.counts
        run.warnings += [u for u in aggs.unreadable] + reading.warnings
        run.cut += reading.cut
        run.engines.update(reading.engines)
        slowest = max(slowest, time.monotonic() - began)
    return _finish(run, "")


def _finish(run: Run, stopped: str) -> dict[str, Any]:
    run.stopped = stopped if run.pending else ""
    run.findings = sort_findings(run.findings)
    metrics.add_metric(name="FlowWindows", unit=MetricUnit.Count, value=len(run.analysed))
    metrics.add_metric(name="FlowWindowsCarried", unit=MetricUnit.Count, value=run.pending)
    metrics.add_metric(name="FlowRecords", unit=MetricUnit.Count, value=run.counts.flows)
    metrics.add_metric(name="Findings", unit=MetricUnit.Count, value=len(run.findings))
    if run.cut:
        metrics.add_metric(name="FlowSourcesCut", unit=MetricUnit.Count, value=len(run.cut))
    for w in run.warnings:
        logger.warning(w)
    summary = run.summary()
    logger.info("flow analysis finished", extra={"summary": summary})
    return summary


# -- a span of time, once (the CLI) ----------------------------------------------------------


@dataclass
class SpanAnalysis:
    """[since, until) judged against the baseline learned from [baseline_start, since)."""

    findings: list[Finding]
    analysed: WindowAggregates  # the windows judged
    everything: WindowAggregates  # with the baseline's windows (for the chart)
    baseline: Baseline
    reading: Reading


def analyse_span(
    reader: FlowReader,
    sources: Sequence[Source],
    cs: Sequence[Crossing],
    since: int,
    until: int,
    baseline_start: int | None = None,
    observed: Iterable[str] = (),
) -> SpanAnalysis:
    """Read once from the baseline's start to `until`; learn the windows before `since`,
    judge the others against what was learned (times in epoch seconds, on window starts)."""
    s = reader.settings
    w = s.window_minutes * 60
    first = baseline_start if baseline_start is not None else since
    reading = reader.read(sources, cs, Window(w, first, until), set(observed))
    if reading.retry:
        raise RuntimeError(reading.retry)
    aggs = reading.aggregates
    before = tuple(f for f in aggs.flows if f.window_start < since)
    after = tuple(f for f in aggs.flows if f.window_start >= since)
    baseline = Baseline()
    if baseline_start is not None and baseline_start < since:
        baseline = baseline.learned(
            WindowAggregates(Window(w, baseline_start, since), tuple(cs), before)
        )
    analysed = replace(aggs, window=Window(w, since, until), flows=after)
    findings = evaluate(analysed, baseline, s.thresholds())
    return SpanAnalysis(findings, analysed, aggs, baseline, reading)
