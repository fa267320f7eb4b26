"""Where flow log records come from: CloudWatch Logs, S3, local files. Clients passed in.

Each source yields `LogFile`s for the engine: local files as they are, log events and S3
objects spooled to a directory the caller owns (a `tempfile.TemporaryDirectory`), each
file deleted by the engine once read. Sources never parse records: they only move bytes
(S3 objects keep their gzip; log events are written one per line).

Time windows: a record belongs to the window its `start` falls in, which the engine
decides. Sources read a little past the window's end (`slack`), because records are
delivered after they start: by up to the aggregation interval (10 minutes at most) to
CloudWatch Logs, and in files written every 5 or 10 minutes to S3.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from peerguard.aws.flows.engine import LogFile
from peerguard.domain.flows.formats import DEFAULT, Format, parse_log_format

DEFAULT_SLACK = timedelta(minutes=15)
# S3 object names: <account>_vpcflowlogs_<region>_<flow log id>_<YYYYMMDDTHHmmZ>_<hash>.log.gz
_S3_NAME = re.compile(
    r"(?P<account>\d{12})_vpcflowlogs_(?P<region>[a-z0-9-]+)_(?P<flow_log>fl-[0-9a-f]+)_"
    r"(?P<time>\d{8}T\d{4}Z)_(?P<hash>[0-9a-f]+)\.log(?P<gz>\.gz)?$"
)


class VolumeExceeded(Exception):
    """More than the embedded engine should take: push the aggregation down instead."""

    def __init__(self, what: str, seen: int, limit: int) -> None:
        super().__init__(f"{what}: {seen} exceeds the embedded engine's limit of {limit}")
        self.seen = seen
        self.limit = limit


# -- DescribeFlowLogs ----------------------------------------------------------------------


@dataclass(frozen=True)
class FlowLogInfo:
    """A flow log as DescribeFlowLogs reports it: where its records go, in which format."""

    flow_log_id: str
    resource_id: str  # the VPC, subnet or network interface it captures
    destination_type: str  # cloud-watch-logs | s3 | kinesis-data-firehose
    format: Format = DEFAULT
    log_group: str | None = None
    bucket: str | None = None
    prefix: str = ""  # before AWSLogs/, with its trailing slash
    file_format: str = "plain-text"  # or parquet
    hive: bool = False
    per_hour: bool = False
    traffic_type: str = "ALL"
    status: str = "ACTIVE"

    @property
    def observer(self) -> str | None:
        """The VPC whose traffic this log records, when it is a VPC's flow log."""
        return self.resource_id if self.resource_id.startswith("vpc-") else None


def parse_flow_log(item: dict[str, Any]) -> FlowLogInfo:
    """One DescribeFlowLogs item (pure)."""
    dest_type = item.get("LogDestinationType", "cloud-watch-logs")
    bucket, prefix = None, ""
    if dest_type == "s3":
        # arn:aws:s3:::bucket/optional/prefix
        path = str(item.get("LogDestination", "")).split(":::", 1)[-1]
        bucket, _, rest = path.partition("/")
        prefix = rest.strip("/") + "/" if rest.strip("/") else ""
    opts = item.get("DestinationOptions") or {}
    fmt_text = item.get("LogFormat")
    return FlowLogInfo(
        flow_log_id=item["FlowLogId"],
        resource_id=item.get("ResourceId", ""),
        destination_type=dest_type,
        format=parse_log_format(fmt_text, strict=False) if fmt_text else DEFAULT,
        log_group=item.get("LogGroupName"),
        bucket=bucket,
        prefix=prefix,
        file_format=opts.get("FileFormat", "plain-text"),
        hive=bool(opts.get("HiveCompatiblePartitions", False)),
        per_hour=bool(opts.get("PerHourPartition", False)),
        traffic_type=item.get("TrafficType", "ALL"),
        status=item.get("FlowLogStatus", "ACTIVE"),
    )


def flow_logs(ec2: Any, resource_ids: Iterable[str] | None = None) -> list[FlowLogInfo]:
    """The flow logs of the given VPCs (subnets, interfaces), or all; paginated."""
    wanted = sorted(set(resource_ids)) if resource_ids is not None else None
    kwargs: dict[str, Any] = {}
    if wanted is not None:
        if not wanted:
            return []
        kwargs["Filter"] = [{"Name": "resource-id", "Values": wanted}]
    out = []
    for page in ec2.get_paginator("describe_flow_logs").paginate(**kwargs):
        for item in page.get("FlowLogs", []):
            info = parse_flow_log(item)
            # moto (and filters in general) may return more than asked: filter again.
            if wanted is None or info.resource_id in wanted:
                out.append(info)
    return out


# -- local files ---------------------------------------------------------------------------


def local_files(
    paths: Iterable[str | Path],
    *,
    log_format: Format | None = None,
    observer: str | None = None,
) -> list[LogFile]:
    """Files as given; a directory means every file under it (sorted)."""
    out: list[LogFile] = []
    for p in map(Path, paths):
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        out.extend(LogFile(f, log_format, observer) for f in files)
    return out


# -- CloudWatch Logs -----------------------------------------------------------------------


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


@dataclass
class CloudWatchReader:
    """FilterLogEvents over a log group, spooled to files of `lines_per_file` events.

    `max_events` (the pushdown threshold) stops the read with VolumeExceeded as soon as
    it is passed, so the embedded path never pulls more than that before giving up; with
    `stop_at_limit`, the events read so far are yielded instead and `exceeded` says why
    the read stopped (the analyzer without pushdown: a cut window, never a stalled one).
    """

    logs: Any
    log_group: str
    spool: Path
    format: Format = DEFAULT
    observer: str | None = None
    max_events: int | None = None
    lines_per_file: int = 1_000_000
    slack: timedelta = DEFAULT_SLACK
    page_size: int | None = None  # events per FilterLogEvents call (None: the API's 10,000)
    stop_at_limit: bool = False
    exceeded: VolumeExceeded | None = None
    events: int = 0
    bytes: int = 0
    pages: int = 0
    _n: int = field(default=0, repr=False)

    def files(self, since: datetime, until: datetime) -> Iterator[LogFile]:
        paginator = self.logs.get_paginator("filter_log_events")
        config = {"PageSize": self.page_size} if self.page_size else {}
        pages = paginator.paginate(
            logGroupName=self.log_group,
            startTime=_ms(since),
            endTime=_ms(until + self.slack) - 1,  # endTime is inclusive
            PaginationConfig=config,
        )
        out = None
        written = 0
        try:
            for page in pages:
                self.pages += 1
                for event in page.get("events", []):
                    self.events += 1
                    if self.max_events is not None and self.events > self.max_events:
                        over = VolumeExceeded(
                            f"log group {self.log_group}", self.events, self.max_events
                        )
                        if not self.stop_at_limit:
                            raise over
                        self.exceeded = over
                        break
                    if out is None:
                        out, path = self._open()
                    line = str(event.get("message", "")).rstrip("\n") + "\n"
                    data = line.encode("utf-8", "surrogateescape")
                    out.write(data)
                    self.bytes += len(data)
                    written += 1
                    if written >= self.lines_per_file:
                        out.close()
                        out, written = None, 0
                        yield LogFile(path, self.format, self.observer, temporary=True)
                if self.exceeded is not None:
                    break
            if out is not None:
                out.close()
                out = None
                yield LogFile(path, self.format, self.observer, temporary=True)
        finally:
            if out is not None:
                out.close()

    def _open(self) -> tuple[Any, Path]:
        self._n += 1
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", self.log_group.strip("/"))
        path = self.spool / f"cwl-{name}-{self._n:05d}.log"
        return open(path, "wb"), path


# -- S3 ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    flow_log_id: str
    written_at: datetime  # the time in the object's name


def parse_key(key: str, size: int = 0) -> S3Object | None:
    """An S3 flow log object from its key; None for anything else (Parquet included)."""
    m = _S3_NAME.search(key.rsplit("/", 1)[-1])
    if not m:
        return None
    at = datetime.strptime(m["time"], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
    return S3Object(key, size, m["flow_log"], at)


def day_prefixes(
    prefix: str, account_id: str, region: str, since: datetime, until: datetime, *, hive: bool
) -> list[str]:
    """The AWS key layout's day folders from `since` to `until` (inclusive of both days)."""
    out = []
    day = since.astimezone(UTC).date()
    last = until.astimezone(UTC).date()
    while day <= last:
        if hive:
            out.append(
                f"{prefix}AWSLogs/aws-account-id={account_id}/aws-service=vpcflowlogs/"
                f"aws-region={region}/year={day:%Y}/month={day:%m}/day={day:%d}/"
            )
        else:
            out.append(f"{prefix}AWSLogs/{account_id}/vpcflowlogs/{region}/{day:%Y/%m/%d}/")
        day += timedelta(days=1)
    return out


@dataclass
class S3Reader:
    """The text objects of one or more flow logs that deliver to one bucket.

    `observers` maps flow log ids to the VPC each one records; objects of other flow
    logs in the same folders are left out when it is given.
    """

    s3: Any
    bucket: str
    account_id: str
    region: str
    spool: Path
    prefix: str = ""
    hive: bool = False
    formats: dict[str, Format] = field(default_factory=dict)  # flow log id -> declared
    observers: dict[str, str | None] | None = None  # flow log id -> VPC
    slack: timedelta = DEFAULT_SLACK
    skipped: int = 0  # objects under the prefixes that are not flow log text files
    listed_bytes: int = 0

    def objects(self, since: datetime, until: datetime) -> list[S3Object]:
        """Objects written in [since, until + slack), found by listing the day folders."""
        end = until + self.slack
        out = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for pfx in day_prefixes(
            self.prefix, self.account_id, self.region, since, end, hive=self.hive
        ):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=pfx):
                for item in page.get("Contents", []):
                    obj = parse_key(item["Key"], int(item.get("Size", 0)))
                    if obj is None:
                        self.skipped += 1
                        continue
                    if self.observers is not None and obj.flow_log_id not in self.observers:
                        continue
                    if since <= obj.written_at < end:
                        out.append(obj)
        self.listed_bytes = sum(o.size for o in out)
        return sorted(out, key=lambda o: (o.written_at, o.key))

    def check_volume(self, objects: Sequence[S3Object], limit: int | None) -> None:
        total = sum(o.size for o in objects)
        if limit is not None and total > limit:
            raise VolumeExceeded(f"s3://{self.bucket}/{self.prefix}", total, limit)

    def files(self, objects: Iterable[S3Object]) -> Iterator[LogFile]:
        """Each object downloaded to the spool as it is needed (gzip kept as it is)."""
        for obj in objects:
            path = self.spool / obj.key.rsplit("/", 1)[-1]
            self.s3.download_file(self.bucket, obj.key, str(path))
            observer = (self.observers or {}).get(obj.flow_log_id)
            yield LogFile(path, self.formats.get(obj.flow_log_id), observer, temporary=True)
