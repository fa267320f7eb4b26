"""Flow-log records for the lab: lines as AWS writes them, delivered where flow logs deliver.

`Traffic` makes lines (default v2 or any custom field list): steady client/server traffic
over many windows, a port scan, a burst of rejected packets. `deliver_to_log_group` writes
them as CloudWatch Logs events (the event time is the record's end, as AWS delivers them,
or later for a late record), `deliver_to_bucket` as gzip objects under the AWS key layout
with their header line. The demo and the tests plant anomalies with it.
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from peerguard.domain.flows.formats import V2_FIELDS

# The v5 fields the flow tests and the demo write (custom format, header line).
V5_FIELDS = (*V2_FIELDS[:2], "vpc-id", *V2_FIELDS[2:], "flow-direction", "traffic-path",
             "pkt-srcaddr", "pkt-dstaddr")  # fmt: skip
WINDOW = 900


@dataclass(frozen=True)
class Record:
    src: str
    dst: str
    sport: int
    dport: int
    start: int
    packets: int = 10
    bytes: int = 1000
    action: str = "ACCEPT"
    protocol: int = 6
    vpc_id: str = "-"
    delay: int = 60  # seconds from start to delivery (the event time is start + delay)

    @property
    def end(self) -> int:
        return self.start + 50

    def line(self, fields: Sequence[str], account: str) -> str:
        values: dict[str, Any] = {
            "version": 5 if "vpc-id" in fields else 2,
            "account-id": account,
            "interface-id": "eni-0a1b2c3d4e5f67890",
            "srcaddr": self.src,
            "dstaddr": self.dst,
            "srcport": self.sport,
            "dstport": self.dport,
            "protocol": self.protocol,
            "packets": self.packets,
            "bytes": self.bytes,
            "start": self.start,
            "end": self.end,
            "action": self.action,
            "log-status": "OK",
            "vpc-id": self.vpc_id,
            "flow-direction": "ingress",
            "traffic-path": "-",
            "pkt-srcaddr": self.src,
            "pkt-dstaddr": self.dst,
        }
        return " ".join(str(values.get(f, "-")) for f in fields)


@dataclass
class Traffic:
    records: list[Record] = field(default_factory=list)

    def steady(
        self,
        client: str,
        server: str,
        port: int,
        first_window: int,
        windows: int,
        *,
        per_window: int = 4,
        rejected: int = 1,
    ) -> Traffic:
        """A client talking to a server every window: requests and replies, a few refused."""
        for w in range(windows):
            start = first_window + w * WINDOW
            for i in range(per_window):
                t = start + 30 + i * 840 // per_window  # spread over the window
                eph = 40000 + (w * per_window + i) % 20000
                self.records.append(Record(client, server, eph, port, t, 12, 4000))
                self.records.append(Record(server, client, port, eph, t, 10, 90000))
            for i in range(rejected):
                self.records.append(
                    Record(client, server, 50000 + i, 22, start + 600 + i, 2, 120, "REJECT")
                )
        return self

    def port_scan(self, scanner: str, target: str, window: int, ports: Iterable[int]) -> Traffic:
        """One source trying many ports of one host in a window, all refused."""
        for i, port in enumerate(ports):
            self.records.append(
                Record(scanner, target, 45000 + i, port, window + 60 + i, 1, 44, "REJECT")
            )
        return self

    def reject_spike(
        self, client: str, server: str, port: int, window: int, packets: int = 2000
    ) -> Traffic:
        """A burst of refused connections (a broken deployment retrying)."""
        for i in range(20):
            self.records.append(
                Record(client, server, 46000 + i, port, window + 100 + i * 10, packets // 20,
                       packets // 20 * 60, "REJECT")
            )  # fmt: skip
        return self

    def add(self, *records: Record) -> Traffic:
        self.records.extend(records)
        return self


def deliver_to_log_group(
    logs: Any,
    group: str,
    records: Iterable[Record],
    *,
    account: str,
    fields: Sequence[str] = V2_FIELDS,
    stream: str | None = None,
) -> int:
    """The records as log events of one stream (created, and the group, when missing)."""
    found = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    if not any(g["logGroupName"] == group for g in found):
        logs.create_log_group(logGroupName=group)
    stream = stream or f"eni-{uuid.uuid4().hex[:17]}-all"
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    timed = sorted(((r.start + r.delay) * 1000, r.line(fields, account)) for r in records)
    events = [{"timestamp": t, "message": m} for t, m in timed]
    for i in range(0, len(events), 5000):
        logs.put_log_events(
            logGroupName=group, logStreamName=stream, logEvents=events[i : i + 5000]
        )
    return len(events)


def deliver_to_bucket(
    s3: Any,
    bucket: str,
    flow_log_id: str,
    records: Iterable[Record],
    *,
    account: str,
    region: str,
    fields: Sequence[str] = V2_FIELDS,
    prefix: str = "",
) -> list[str]:
    """The records as gzip objects with a header line, one per 5 minutes of delivery, named
    and placed as VPC Flow Logs name and place them; their keys."""
    by_file: dict[int, list[Record]] = {}
    for r in records:
        t = r.start + r.delay
        by_file.setdefault(t - t % 300 + 300, []).append(r)
    keys = []
    for written, rs in sorted(by_file.items()):
        at = datetime.fromtimestamp(written, UTC)
        name = (
            f"{account}_vpcflowlogs_{region}_{flow_log_id}_{at:%Y%m%dT%H%MZ}_"
            f"{uuid.uuid4().hex[:8]}.log.gz"
        )
        key = f"{prefix}AWSLogs/{account}/vpcflowlogs/{region}/{at:%Y/%m/%d}/{name}"
        text = " ".join(fields) + "\n" + "".join(r.line(fields, account) + "\n" for r in rs)
        s3.put_object(Bucket=bucket, Key=key, Body=gzip.compress(text.encode()))
        keys.append(key)
    return keys
