"""Which flows cross a peering: the CIDR blocks on each side of every active peering.

A flow crosses peering P when its source is in one side's blocks and its destination in
the other side's (secondary and IPv6 blocks included). The engines filter on the ranges
computed here; addresses are compared as integers in one encoding, shared by the SQL
(`peerguard.aws.flows.sql`) and by `address_key` below:

- IPv4: the address as an integer, 0 .. 2**32 - 1;
- IPv6: the upper 64 bits minus 2**63, so it fits a signed BIGINT (Athena has no
  unsigned or 128-bit integer). VPC IPv6 blocks are /44 to /64, so the upper half is all a
  membership test needs; a longer block (never seen on a VPC) is widened to its /64.

Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

from peerguard.domain.model import ACTIVE, PeeringConnection, PeeringSide, Snapshot, net

V6_OFFSET = 1 << 63
# Hash-join buckets: every block falls in exactly one bucket of this prefix length (or
# shorter, when a block is shorter), so the engines join on equality, then check ranges.
V4_BUCKET = 16
V6_BUCKET = 44


class Direction(StrEnum):
    REQUESTER_TO_ACCEPTER = "requester-to-accepter"
    ACCEPTER_TO_REQUESTER = "accepter-to-requester"


@dataclass(frozen=True)
class Side:
    vpc_id: str
    owner_id: str
    region: str
    cidrs: tuple[str, ...]


@dataclass(frozen=True)
class Crossing:
    """One active peering as the flow engines see it."""

    peering_id: str
    requester: Side
    accepter: Side
    # The side findings are filed under (this account's; the accepter when both are).
    home: Side

    def side(self, direction: Direction, *, source: bool) -> Side:
        req_first = direction is Direction.REQUESTER_TO_ACCEPTER
        return self.requester if req_first == source else self.accepter

    @property
    def vpc_ids(self) -> tuple[str, str]:
        return (self.requester.vpc_id, self.accepter.vpc_id)


def _side(snap: Snapshot, side: PeeringSide) -> Side:
    return Side(side.vpc_id, side.owner_id, side.region, tuple(snap.vpc_cidrs(side)))


def _home(snap: Snapshot, pcx: PeeringConnection) -> PeeringSide:
    for side in (pcx.accepter, pcx.requester):
        if side.owner_id == snap.account_id:
            return side
    return pcx.requester


def crossings(snap: Snapshot) -> tuple[Crossing, ...]:
    """The active peerings of the snapshot, with every CIDR block of both VPCs.

    The live VPC's blocks are preferred (they include every associated secondary block);
    the peering's own CidrBlockSet is the fallback for a peer VPC that was not read.
    """
    out = []
    for pcx in sorted(snap.peerings.values(), key=lambda p: p.pcx_id):
        if pcx.status != ACTIVE:
            continue
        home = _home(snap, pcx)
        out.append(
            Crossing(
                pcx.pcx_id,
                _side(snap, pcx.requester),
                _side(snap, pcx.accepter),
                _side(snap, home),
            )
        )
    return tuple(out)


# -- the address encoding ------------------------------------------------------------------


@lru_cache(maxsize=65536)
def address_key(text: str) -> tuple[int, int] | None:
    """(family, number) of an address in the engines' encoding; None if not an address."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if ip.version == 4:
        return 4, int(ip)
    return 6, (int(ip) >> 64) - V6_OFFSET


@dataclass(frozen=True)
class Block:
    family: int
    lo: int
    hi: int
    prefixlen: int  # in the encoding: at most 32 for IPv4, 64 for IPv6


@lru_cache(maxsize=16384)
def block(cidr: str) -> Block:
    n = net(cidr)
    if n.version == 4:
        return Block(4, int(n.network_address), int(n.broadcast_address), n.prefixlen)
    lo = (int(n.network_address) >> 64) - V6_OFFSET
    hi = (int(n.broadcast_address) >> 64) - V6_OFFSET
    return Block(6, lo, hi, min(n.prefixlen, 64))


@dataclass(frozen=True)
class Range:
    """A flow from [src_lo, src_hi] to [dst_lo, dst_hi] crosses `peering_id` this way."""

    peering_id: str
    direction: Direction
    family: int
    src_lo: int
    src_hi: int
    dst_lo: int
    dst_hi: int
    src_vpc: str
    dst_vpc: str


def ranges(cs: Iterable[Crossing]) -> list[Range]:
    """Every (source block, destination block) pair of the same family, both directions."""
    out: list[Range] = []
    for c in cs:
        for direction in Direction:
            src, dst = c.side(direction, source=True), c.side(direction, source=False)
            for s in src.cidrs:
                for d in dst.cidrs:
                    a, b = block(s), block(d)
                    if a.family == b.family:
                        out.append(
                            Range(
                                c.peering_id,
                                direction,
                                a.family,
                                a.lo,
                                a.hi,
                                b.lo,
                                b.hi,
                                src.vpc_id,
                                dst.vpc_id,
                            )
                        )
    return out


def bucket_bits(cs: Iterable[Crossing]) -> dict[int, int]:
    """Per family, the bucket prefix length: `V4_BUCKET`/`V6_BUCKET`, or the shortest block."""
    bits = {4: V4_BUCKET, 6: V6_BUCKET}
    for c in cs:
        for cidr in c.requester.cidrs + c.accepter.cidrs:
            b = block(cidr)
            bits[b.family] = min(bits[b.family], b.prefixlen)
    return bits


def bucket(number: int, family: int, bits: int) -> int:
    """The bucket a number falls in: the number with its low (width - bits) bits cleared."""
    width = 32 if family == 4 else 64
    size = 1 << (width - bits)
    return number - number % size  # Python's % is a floor modulo, as the SQL's is written


class Classifier:
    """Labels flows with the peerings they cross, in Python.

    Used where the engine cannot label rows itself (Logs Insights results). A flow crosses
    one peering, or more only when two peerings of one VPC lead to overlapping ranges.
    """

    def __init__(self, cs: Iterable[Crossing]) -> None:
        self.crossings = {c.peering_id: c for c in cs}
        self.ranges = ranges(self.crossings.values())

    def __call__(self, src: str, dst: str) -> Iterator[Range]:
        s, d = address_key(src), address_key(dst)
        if s is None or d is None or s[0] != d[0]:
            return
        for r in self.ranges:
            if r.family == s[0] and r.src_lo <= s[1] <= r.src_hi and r.dst_lo <= d[1] <= r.dst_hi:
                yield r
