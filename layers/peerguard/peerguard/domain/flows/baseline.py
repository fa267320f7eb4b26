"""What normal looks like on each peering, learned window by window. Pure.

A `Baseline` is small and serialisable (a pydantic model: `model_dump_json` and back), of
bounded size per peering: at most `Limits.pairs` client/server pairs and `Limits.ports`
accepted service ports are kept, the least recently seen dropped first. Rates are means
per window: exact while a peering has been seen for fewer than 1 / `Limits.alpha` windows,
exponentially weighted after that, so the baseline follows slow change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from peerguard.domain.flows.aggregates import FlowAggregate, WindowAggregates, iter_windows

V = TypeVar("V")


@dataclass(frozen=True)
class Limits:
    pairs: int = 1000  # client/server pairs kept per peering
    ports: int = 256  # accepted (protocol, port) kept per peering
    alpha: float = 0.05  # weight of the newest window once the mean is warm


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PairStats(_Frozen):
    bytes_per_window: float = 0.0  # mean over the windows in which the pair talked
    windows: int = 0
    last_seen: int = 0  # window start


class PeeringBaseline(_Frozen):
    windows: int = 0  # windows learned, with or without traffic
    last_window: int | None = None
    reject_packets_per_window: float = 0.0
    # "client server" -> stats (the pair that started the conversation)
    pairs: dict[str, PairStats] = Field(default_factory=dict)
    # "protocol/port" of accepted requests -> last window seen
    ports: dict[str, int] = Field(default_factory=dict)


class Baseline(_Frozen):
    peerings: dict[str, PeeringBaseline] = Field(default_factory=dict)

    def of(self, peering_id: str) -> PeeringBaseline:
        return self.peerings.get(peering_id, PeeringBaseline())

    def learned(self, aggregates: WindowAggregates, limits: Limits = Limits()) -> Baseline:
        """This baseline with every window of `aggregates` folded in (in time order)."""
        peerings = dict(self.peerings)
        for crossing, start, flows in sorted(
            iter_windows(aggregates), key=lambda x: (x[1], x[0].peering_id)
        ):
            before = peerings.get(crossing.peering_id, PeeringBaseline())
            if before.last_window is not None and start <= before.last_window:
                continue  # already learned (a window read twice is not counted twice)
            peerings[crossing.peering_id] = learn(before, start, flows, limits)
        return Baseline(peerings=peerings)


def pair_key(pair: tuple[str, str]) -> str:
    return f"{pair[0]} {pair[1]}"


def port_key(protocol: int | None, port: int | None) -> str:
    return f"{'-' if protocol is None else protocol}/{'-' if port is None else port}"


def _mean(old: float, new: float, n: int, alpha: float) -> float:
    """Running mean over n values (the n-th is `new`), exponential once n > 1/alpha."""
    weight = max(1.0 / n, alpha)
    return old + weight * (new - old)


def learn(
    before: PeeringBaseline, start: int, flows: Iterable[FlowAggregate], limits: Limits
) -> PeeringBaseline:
    flows = list(flows)
    windows = before.windows + 1
    rejected = sum(f.packets for f in flows if f.rejected)
    pair_bytes: dict[str, int] = {}
    for f in flows:
        k = pair_key(f.pair)
        pair_bytes[k] = pair_bytes.get(k, 0) + f.bytes
    pairs = dict(before.pairs)
    for k, b in pair_bytes.items():
        old = pairs.get(k, PairStats())
        n = old.windows + 1
        pairs[k] = PairStats(
            bytes_per_window=_mean(old.bytes_per_window, b, n, limits.alpha),
            windows=n,
            last_seen=start,
        )
    ports = dict(before.ports)
    for f in flows:
        if f.accepted and not f.reply:
            ports[port_key(f.protocol, f.port)] = start
    return PeeringBaseline(
        windows=windows,
        last_window=start,
        reject_packets_per_window=_mean(
            before.reject_packets_per_window, rejected, windows, limits.alpha
        ),
        pairs=_newest(pairs, limits.pairs, lambda v: (v.last_seen, v.bytes_per_window)),
        ports=_newest(ports, limits.ports, lambda v: (v, 0.0)),
    )


def _newest(
    items: dict[str, V], limit: int, recency: Callable[[V], tuple[int, float]]
) -> dict[str, V]:
    """At most `limit` items, the most recent (then the biggest) kept; in key order."""
    if len(items) <= limit:
        return items
    kept = sorted(items.items(), key=lambda kv: (recency(kv[1]), kv[0]), reverse=True)[:limit]
    return dict(sorted(kept))
