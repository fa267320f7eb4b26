"""What crosses a peering: the CIDR ranges of active peerings and the address encoding."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from peerguard.domain.flows.crossing import (
    V6_OFFSET,
    Classifier,
    Direction,
    address_key,
    block,
    bucket,
    bucket_bits,
    crossings,
    ranges,
)
from tests.flowdata import crossing, side
from tests.unit.netbuilder import OTHER_ACCOUNT, Net


def test_only_active_peerings_with_every_block_of_both_vpcs() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16", ipv6=("2600:1f18:a:100::/56",))
    db = net.vpc("db", "10.1.0.0/16")
    net.add_cidr(db, "10.2.0.0/20")
    old = net.vpc("old", "10.9.0.0/16")
    theirs = net.vpc("theirs", "10.5.0.0/16", owner=OTHER_ACCOUNT)
    net.peer(web, db)
    net.peer(web, old, status="deleted")
    net.peer(web, theirs, status="pending-acceptance")
    net.peer(theirs, db)
    cs = {c.peering_id: c for c in crossings(net.snapshot())}
    assert set(cs) == {"pcx-web-db", "pcx-theirs-db"}
    c = cs["pcx-web-db"]
    assert c.requester.cidrs == ("10.0.0.0/16", "2600:1f18:a:100::/56")
    assert c.accepter.cidrs == ("10.1.0.0/16", "10.2.0.0/20")  # the secondary block too
    assert c.home.vpc_id == "vpc-db"  # the accepter, when both sides are ours
    # The other account's VPC was not read: the peering's own CIDR set is used.
    other = cs["pcx-theirs-db"]
    assert other.requester.cidrs == ("10.5.0.0/16",) and other.home.vpc_id == "vpc-db"


def test_addresses_encode_as_integers_that_fit_a_signed_bigint() -> None:
    assert address_key("10.0.0.1") == (4, 167772161)
    assert address_key("::") == (6, -V6_OFFSET)
    assert address_key("ffff:ffff:ffff:ffff::") == (6, (1 << 63) - 1)
    assert address_key("not an address") is None
    b = block("2600:1f18:a:100::/56")
    assert b.family == 6 and b.prefixlen == 56
    assert b.lo <= address_key("2600:1f18:a:1ff:ffff::1")[1] <= b.hi  # type: ignore[index]
    # A block longer than /64 is widened to its /64 (the encoding keeps 64 bits).
    assert block("2600:1f18:a:100::/80").prefixlen == 64


@given(st.ip_addresses(v=6), st.integers(min_value=0, max_value=64))
def test_membership_in_the_encoding_matches_ipaddress_for_short_ipv6_blocks(
    ip: ipaddress.IPv6Address, prefixlen: int
) -> None:
    n = ipaddress.ip_network(f"{ip}/{prefixlen}", strict=False)
    b = block(str(n))
    probe = ipaddress.IPv6Address(int(n.network_address) + (1 << 40) % n.num_addresses)
    key = address_key(str(probe))
    assert key is not None and (b.lo <= key[1] <= b.hi) == (probe in n)


def test_ranges_cover_both_directions_and_same_family_pairs_only() -> None:
    c = crossing(
        "pcx-1",
        side("a", "10.0.0.0/16", "2600:1f18:a:100::/56"),
        side("b", "10.1.0.0/16", "10.2.0.0/16"),
    )
    rs = ranges([c])
    assert len(rs) == 2 * 2  # (a4 x b4, a4 x b4') per direction; the IPv6 block has no pair
    assert {r.direction for r in rs} == set(Direction)
    r2a = [r for r in rs if r.direction is Direction.REQUESTER_TO_ACCEPTER]
    assert {(r.src_vpc, r.dst_vpc) for r in r2a} == {("vpc-a", "vpc-b")}


def test_buckets_never_split_a_block() -> None:
    c = crossing("pcx-1", side("a", "10.0.0.0/16"), side("b", "10.8.0.0/13", "10.1.2.0/24"))
    bits = bucket_bits([c])
    assert bits[4] == 13  # the shortest block decides
    lo, hi = block("10.8.0.0/13").lo, block("10.8.0.0/13").hi
    assert bucket(lo, 4, bits[4]) == bucket(hi, 4, bits[4])
    small = block("10.1.2.0/24")
    assert bucket(small.lo, 4, bits[4]) == bucket(small.hi, 4, bits[4]) != bucket(lo, 4, bits[4])


def test_the_classifier_labels_flows_with_peering_and_direction() -> None:
    a, b = side("a", "10.0.0.0/16"), side("b", "10.1.0.0/16")
    c = side("c", "10.1.0.0/16")  # overlaps b: both peer with a
    classify = Classifier([crossing("pcx-ab", a, b), crossing("pcx-ca", c, a)])
    got = {(r.peering_id, r.direction) for r in classify("10.0.0.5", "10.1.0.5")}
    assert got == {
        ("pcx-ab", Direction.REQUESTER_TO_ACCEPTER),
        ("pcx-ca", Direction.ACCEPTER_TO_REQUESTER),
    }
    assert list(classify("10.0.0.5", "10.0.0.6")) == []
    assert list(classify("10.0.0.5", "::1")) == []
    assert list(classify("garbage", "10.1.0.5")) == []
