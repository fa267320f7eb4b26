"""What the flow engines produce: per-window aggregates of the flows that cross a peering.

One `FlowAggregate` per (peering, direction, window, source, destination, port, protocol,
action, reply). `port` is the service port: the destination port of a request, the source
port of a reply (a server answering a client's ephemeral port). Keeping replies under
their service port is what keeps the number of aggregates bounded by who talks to what,
not by how many connections were made, and what stops every ephemeral port from looking
like a new one. Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import NamedTuple

from peerguard.domain.flows.crossing import Crossing, Direction

ACCEPT = "ACCEPT"
REJECT = "REJECT"
DEFAULT_WINDOW_SECONDS = 900
# Linux's default ephemeral range starts here (Windows' at 49152): a flow from a port
# below it to a port at or above it is taken as a server's reply when TCP flags are absent.
DEFAULT_EPHEMERAL_FROM = 32768


@dataclass(frozen=True)
class Window:
    """The time the aggregates cover: [since, until), cut into windows of `seconds`."""

    seconds: int = DEFAULT_WINDOW_SECONDS
    since: int | None = None  # epoch seconds; None = unbounded
    until: int | None = None

    def __post_init__(self) -> None:
        if self.seconds <= 0:
            raise ValueError("window length must be positive")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("window end must be after its start")

    def start_of(self, t: int) -> int:
        return t - t % self.seconds

    def starts(self) -> list[int]:
        """Every window start in [since, until) (empty when unbounded)."""
        if self.since is None or self.until is None:
            return []
        return list(range(self.start_of(self.since), self.until, self.seconds))

    @classmethod
    def between(
        cls, since: datetime, until: datetime, seconds: int = DEFAULT_WINDOW_SECONDS
    ) -> Window:
        return cls(seconds, int(since.timestamp()), int(until.timestamp()))


def iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FlowAggregate(NamedTuple):
    """One aggregate. A NamedTuple: the engines build hundreds of thousands of them."""

    peering_id: str
    direction: Direction
    window_start: int
    src: str
    dst: str
    port: int | None
    protocol: int | None
    action: str | None
    reply: bool
    packets: int
    bytes: int
    records: int

    @property
    def key(self) -> tuple[object, ...]:
        return self[:9]

    @property
    def pair(self) -> tuple[str, str]:
        """(client, server): who started the conversation, whichever way this flow went."""
        return (self.dst, self.src) if self.reply else (self.src, self.dst)

    @property
    def accepted(self) -> bool:
        return self.action == ACCEPT

    @property
    def rejected(self) -> bool:
        return self.action == REJECT


@dataclass(frozen=True)
class Counts:
    """What happened to every line read (header and blank lines are not counted)."""

    flows: int = 0  # records that cross a peering (in the aggregates)
    not_crossing: int = 0  # valid records between addresses of no peering (or seen twice)
    nodata: int = 0
    skipdata: int = 0
    malformed: int = 0  # wrong number of fields, or a field that is not what it should be
    unaddressed: int = 0  # OK records without addresses (the format has none, or `-`)
    untimed: int = 0  # records with neither start nor end: they fit no window
    outside_window: int = 0
    seen_twice: int = 0  # source-side copies of flows the destination's log also has

    @property
    def lines(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    @classmethod
    def of(cls, counted: dict[str, int]) -> Counts:
        names = {f.name for f in fields(cls)}
        unknown = set(counted) - names
        if unknown:
            raise ValueError(f"unknown record kinds {sorted(unknown)}")
        return cls(**counted)

    def to_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"lines": self.lines}


@dataclass(frozen=True)
class WindowAggregates:
    window: Window
    crossings: tuple[Crossing, ...]
    flows: tuple[FlowAggregate, ...] = ()
    counts: Counts = field(default_factory=Counts)
    # How the aggregates were computed: "duckdb", "athena", "logs-insights".
    engine: str = ""
    truncated: bool = False  # the pushed-down engine cut its results short
    unreadable: tuple[str, ...] = ()  # files no reader could take, with the reason

    def crossing(self, peering_id: str) -> Crossing:
        return next(c for c in self.crossings if c.peering_id == peering_id)

    def window_starts(self) -> list[int]:
        """Every window covered, with or without traffic; unbounded: those with traffic."""
        starts = self.window.starts()
        return starts or sorted({f.window_start for f in self.flows})

    def by_window(self) -> dict[tuple[str, int], list[FlowAggregate]]:
        """(peering id, window start) -> its aggregates."""
        out: dict[tuple[str, int], list[FlowAggregate]] = defaultdict(list)
        for f in self.flows:
            out[(f.peering_id, f.window_start)].append(f)
        return out

    def totals(self) -> tuple[int, int, int]:
        return (
            sum(f.packets for f in self.flows),
            sum(f.bytes for f in self.flows),
            sum(f.records for f in self.flows),
        )


def combine(flows: Iterable[FlowAggregate]) -> tuple[FlowAggregate, ...]:
    """Sum aggregates with the same key (from several batches or queries); order kept."""
    acc: dict[tuple[object, ...], FlowAggregate] = {}
    for f in flows:
        key = f[:9]
        seen = acc.get(key)
        acc[key] = (
            f
            if seen is None
            else seen._replace(
                packets=seen.packets + f.packets,
                bytes=seen.bytes + f.bytes,
                records=seen.records + f.records,
            )
        )
    return tuple(acc.values())


SRC, DST = "src", "dst"


def seen_once(
    seen: Iterable[tuple[FlowAggregate, str | None]],
    cs: Iterable[Crossing],
    observed: Iterable[str],
) -> tuple[tuple[FlowAggregate, ...], int]:
    """Each flow once, and how many records were copies (pure).

    A flow between two VPCs whose flow logs are both read is in both: egress in the
    source's, ingress in the destination's. The destination's copy counts (it is where a
    security group or NACL refuses traffic), the source's only when the destination's
    log is not among `observed`. `seen` pairs each aggregate with the side whose log it
    came from (SRC, DST, or None when unknown: kept).
    """
    by_id = {c.peering_id: c for c in cs}
    observed = frozenset(observed)
    kept: list[FlowAggregate] = []
    copies = 0
    for f, at in seen:
        if at == SRC and by_id[f.peering_id].side(f.direction, source=False).vpc_id in observed:
            copies += f.records
            continue
        kept.append(f)
    return combine(kept), copies


def ordered(flows: Iterable[FlowAggregate]) -> list[FlowAggregate]:
    """Aggregates in a stable order (engines return them in none)."""
    return sorted(flows, key=lambda f: tuple("" if v is None else str(v) for v in f[:9]))


def iter_windows(aggs: WindowAggregates) -> Iterator[tuple[Crossing, int, list[FlowAggregate]]]:
    """Every (peering, window) the aggregates cover, with its flows (maybe none)."""
    grouped = aggs.by_window()
    for c in aggs.crossings:
        for start in aggs.window_starts():
            yield c, start, grouped.get((c.peering_id, start), [])
