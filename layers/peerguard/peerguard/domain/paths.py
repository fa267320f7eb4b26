"""Reachability through network ACLs and security groups, over whole ranges. Pure.

A network ACL is evaluated as AWS evaluates it: per direction, lowest rule number first,
the first entry that matches a packet decides, and a packet no entry matches is denied (the
`*` rule). The questions here are about ranges (a peer subnet, tcp 1024-65535), not single
packets: the range is cut wherever an entry's CIDR or port range starts or ends, so every
cell is decided by one entry, and each cell is judged at its first address and port.
Entries of the other IP version never match.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from peerguard.domain.model import (
    ALL_PORTS,
    ALL_PROTOCOLS,
    ICMP,
    ICMPV6,
    PORTED,
    TCP,
    UDP,
    NetworkAclEntry,
    SecurityGroupRule,
    Span,
    span,
)

# (protocol, destination ports) a question is about; ports None for protocols without.
Probe = tuple[int, tuple[int, int] | None]
EPHEMERAL = (1024, 65535)  # the reply ports AWS advises ACLs to allow (NAT gateways use all)
# Where clients' ports are in practice: Linux 32768-60999, Windows and IANA 49152-65535. A
# reply leg that denies some of these drops replies; one that denies only lower ports (an
# inbound deny of 3389 from anywhere, say) does not, for those clients.
CLIENT_PORTS = (32768, 65535)


@dataclass(frozen=True)
class Blocked:
    """Addresses [first, last] of a range, for which what was asked about is denied: every
    probe (`ports` empty), or the tcp ports `ports`."""

    version: int
    first: int
    last: int
    by: frozenset[int | None]  # rule numbers of the deciding entries (None: the * rule)
    ports: tuple[tuple[int, int], ...] = ()

    @property
    def text(self) -> str:
        return range_text(self.version, self.first, self.last)

    @property
    def ports_text(self) -> str:
        return ", ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in self.ports)


def range_text(version: int, first: int, last: int) -> str:
    """An address range as CIDR blocks (a few), or as first-last."""
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    nets = list(ipaddress.summarize_address_range(make(first), make(last)))
    if len(nets) <= 3:
        return ", ".join(str(n) for n in nets)
    return f"{make(first)}-{make(last)}"


def decide(
    entries: Sequence[NetworkAclEntry], version: int, address: int, proto: int, port: int | None
) -> NetworkAclEntry | None:
    """The entry that decides a packet (entries in rule-number order); None = the * rule."""
    return next((e for e in entries if e.matches(version, address, proto, port)), None)


def _address_cells(entries: Sequence[NetworkAclEntry], rng: Span) -> list[tuple[int, int]]:
    cuts = {rng.first}
    for e in entries:
        s = span(e.cidr)
        if s.version != rng.version:
            continue
        for point in (s.first, s.last + 1):
            if rng.first < point <= rng.last:
                cuts.add(point)
    starts = sorted(cuts)
    return [(a, b - 1) for a, b in zip(starts, [*starts[1:], rng.last + 1], strict=True)]


def _port_cells(
    entries: Sequence[NetworkAclEntry], proto: int, ports: tuple[int, int] | None
) -> list[tuple[int, int] | None]:
    if ports is None:
        return [None]
    lo, hi = ports
    cuts = {lo}
    for e in entries:
        if e.proto == proto and proto in PORTED:
            for point in (e.ports[0], e.ports[1] + 1):
                if lo < point <= hi:
                    cuts.add(point)
    starts = sorted(cuts)
    return [(a, b - 1) for a, b in zip(starts, [*starts[1:], hi + 1], strict=True)]


def decisions(
    entries: Sequence[NetworkAclEntry], rng: Span, proto: int, ports: tuple[int, int] | None
) -> list[tuple[tuple[int, int], tuple[int, int] | None, NetworkAclEntry | None]]:
    """((first, last) addresses, port cell, deciding entry) over the whole of `rng` and
    `ports`: each cell is decided by one entry (None: the * rule, a deny)."""
    out = []
    for first, last in _address_cells(entries, rng):
        for cell in _port_cells(entries, proto, ports):
            entry = decide(entries, rng.version, first, proto, cell[0] if cell else None)
            out.append(((first, last), cell, entry))
    return out


def every_protocol(entries: Iterable[NetworkAclEntry]) -> list[Probe]:
    """Probes standing for all traffic: tcp and udp on every port, icmp, icmpv6, every
    protocol an entry names, and one protocol no entry names."""
    named = {e.proto for e in entries} - {ALL_PROTOCOLS}
    unnamed = next(p for p in (253, 254, 47, 50, 132) if p not in named)
    others = sorted((named | {ICMP, ICMPV6, unnamed}) - set(PORTED))
    return [(TCP, ALL_PORTS), (UDP, ALL_PORTS), *((p, None) for p in others)]


def blocked(
    entries: Sequence[NetworkAclEntry], rng: Span, probes: Sequence[Probe]
) -> list[Blocked]:
    """The parts of `rng` for which every probe (protocol and every port of its range) is
    denied, adjacent parts merged. Empty: some of each part gets through."""
    out: list[Blocked] = []
    for first, last in _address_cells(entries, rng):
        by: set[int | None] = set()
        through = False
        for proto, ports in probes:
            for cell in _port_cells(entries, proto, ports):
                entry = decide(entries, rng.version, first, proto, cell[0] if cell else None)
                if entry is not None and entry.allow:
                    through = True
                    break
                by.add(entry.rule_number if entry else None)
            if through:
                break
        if through:
            continue
        if out and out[-1].last + 1 == first:
            prev = out[-1]
            out[-1] = Blocked(rng.version, prev.first, last, prev.by | by)
        else:
            out.append(Blocked(rng.version, first, last, frozenset(by)))
    return out


def denied_ports(
    entries: Sequence[NetworkAclEntry], rng: Span, proto: int, ports: tuple[int, int]
) -> list[Blocked]:
    """The parts of `rng` for which some of `ports` are denied, with those ports; adjacent
    parts with the same denied ports merged."""
    out: list[Blocked] = []
    for first, last in _address_cells(entries, rng):
        denied: list[tuple[int, int]] = []
        by: set[int | None] = set()
        for cell in _port_cells(entries, proto, ports):
            assert cell is not None
            entry = decide(entries, rng.version, first, proto, cell[0])
            if entry is None or not entry.allow:
                denied.append(cell)
                by.add(entry.rule_number if entry else None)
        if not denied:
            continue
        merged = tuple(merge(denied))
        if out and out[-1].last + 1 == first and out[-1].ports == merged:
            prev = out[-1]
            out[-1] = Blocked(rng.version, prev.first, last, prev.by | by, merged)
        else:
            out.append(Blocked(rng.version, first, last, frozenset(by), merged))
    return out


def is_reply_rule(entry: NetworkAclEntry) -> bool:
    """An allow of tcp N-65535 with N >= 1024 (1024-65535, 32768-65535, 49152-65535): the
    rule ACLs carry for replies, not a way to open connections."""
    lo, hi = entry.ports
    return entry.proto == TCP and hi == 65535 and lo >= EPHEMERAL[0]


def allowed_ports(
    entries: Sequence[NetworkAclEntry],
    rng: Span,
    proto: int,
    ports: tuple[int, int],
    *,
    requests_only: bool = False,
) -> list[tuple[int, int]]:
    """The ports (of `ports`) that some address of `rng` may use, as merged intervals;
    `requests_only`: not counting what only a reply rule (`is_reply_rule`) allows."""
    allowed: list[tuple[int, int]] = []
    for first, _ in _address_cells(entries, rng):
        for cell in _port_cells(entries, proto, ports):
            assert cell is not None
            entry = decide(entries, rng.version, first, proto, cell[0])
            if entry is not None and entry.allow and not (requests_only and is_reply_rule(entry)):
                allowed.append(cell)
    return merge(allowed)


def merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def intersect(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    pairs = ((max(x[0], y[0]), min(x[1], y[1])) for x in a for y in b)
    return merge((lo, hi) for lo, hi in pairs if lo <= hi)


def uncovered(outer: Span, inner: Iterable[Span]) -> int:
    """How many addresses of `outer` lie in none of `inner` (of the same IP version)."""
    parts = merge(
        (max(s.first, outer.first), min(s.last, outer.last))
        for s in inner
        if s.version == outer.version and s.overlaps(outer)
    )
    return (outer.last - outer.first + 1) - sum(hi - lo + 1 for lo, hi in parts)


# -- security groups -------------------------------------------------------------------


def ingress_allows(
    rules: Iterable[SecurityGroupRule], source: str, proto: int, port: int | None
) -> bool:
    """Would a group with `rules` let `proto`/`port` traffic in from `source` (an address
    or CIDR, or a security group id)? Security groups only allow: any matching rule does."""
    is_group = source.startswith("sg-")
    src = None if is_group else span(source)
    for r in rules:
        if r.egress or not r.allows(proto, port):
            continue
        if is_group and r.referenced_group_id == source:
            return True
        if src is not None and r.cidr and src.within(span(r.cidr)):
            return True
    return False
