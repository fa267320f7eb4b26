"""nacl.blocks_peer and the ACL evaluation under it (`peerguard.domain.paths`), pure."""

from __future__ import annotations

import pytest

from peerguard.domain.model import TCP, NetworkAclEntry, span
from peerguard.domain.paths import (
    EPHEMERAL,
    allowed_ports,
    blocked,
    decide,
    denied_ports,
    every_protocol,
)
from tests.unit.netbuilder import Net, run

ALL_IN = (100, "in", "allow", "0.0.0.0/0")
ALL_OUT = (100, "out", "allow", "0.0.0.0/0")


def entry(
    number: int, action: str, cidr: str, proto: str = "-1", ports: tuple[int, int] | None = None
) -> NetworkAclEntry:
    lo, hi = ports or (None, None)
    return NetworkAclEntry(
        rule_number=number,
        egress=False,
        action=action,
        cidr=cidr,
        protocol=proto,
        from_port=lo,
        to_port=hi,
    )


# -- evaluation, as AWS does it ------------------------------------------------------------------


def test_lowest_rule_number_first_and_the_first_match_decides() -> None:
    entries = sorted(
        [entry(200, "allow", "10.1.0.0/16"), entry(100, "deny", "10.1.1.0/24")],
        key=lambda e: e.rule_number,
    )
    inside = span("10.1.1.7/32")
    assert decide(entries, 4, inside.first, TCP, 443) == entries[0]  # rule 100: deny
    assert decide(entries, 4, span("10.1.2.7/32").first, TCP, 443) == entries[1]
    assert decide(entries, 4, span("10.9.0.1/32").first, TCP, 443) is None  # the * rule


def test_a_range_is_blocked_only_where_everything_is_denied() -> None:
    entries = [entry(100, "deny", "10.1.1.0/25"), entry(110, "allow", "10.1.0.0/16")]

    parts = blocked(entries, span("10.1.1.0/24"), every_protocol(entries))

    assert [(p.text, p.by) for p in parts] == [("10.1.1.0/25", frozenset({100}))]


def test_a_single_allowed_port_is_enough_not_to_block_everything() -> None:
    entries = [entry(100, "allow", "10.1.0.0/16", "6", (5432, 5432))]
    assert blocked(entries, span("10.1.0.0/16"), every_protocol(entries)) == []
    # ... but the rest of the ephemeral range is denied, by the * rule
    (part,) = denied_ports(entries, span("10.1.0.0/16"), TCP, EPHEMERAL)
    assert (part.text, part.ports, part.by) == (
        "10.1.0.0/16",
        ((1024, 5431), (5433, 65535)),
        frozenset({None}),
    )


def test_reply_rules_are_not_counted_as_ways_to_open_connections() -> None:
    entries = [
        entry(100, "allow", "10.1.0.0/16", "6", (5432, 5432)),
        entry(110, "allow", "10.1.0.0/16", "6", (32768, 65535)),
    ]
    everything = allowed_ports(entries, span("10.1.0.0/16"), TCP, (0, 65535))
    requests = allowed_ports(entries, span("10.1.0.0/16"), TCP, (0, 65535), requests_only=True)
    assert everything == [(5432, 5432), (32768, 65535)] and requests == [(5432, 5432)]


def test_an_entry_for_one_protocol_does_not_allow_the_others() -> None:
    entries = [entry(100, "allow", "0.0.0.0/0", "17")]  # udp only
    assert blocked(entries, span("10.1.0.0/16"), [(TCP, (0, 65535))])
    assert not blocked(entries, span("10.1.0.0/16"), every_protocol(entries))


def test_entries_of_the_other_ip_version_never_match() -> None:
    entries = [entry(100, "allow", "::/0")]
    (part,) = blocked(entries, span("10.1.0.0/16"), every_protocol(entries))
    assert part.text == "10.1.0.0/16" and part.by == frozenset({None})


def test_allowed_ports_are_the_union_over_the_range() -> None:
    entries = [
        entry(100, "allow", "10.1.1.0/24", "6", (443, 443)),
        entry(110, "deny", "10.1.0.0/16", "6", (0, 1023)),
        entry(120, "allow", "10.1.0.0/16", "6", (0, 65535)),
    ]
    assert allowed_ports(entries, span("10.1.0.0/16"), TCP, (0, 65535)) == [
        (443, 443),
        (1024, 65535),
    ]


# -- the check -----------------------------------------------------------------------------------


def pair(*, web_acl: tuple = (), db_acl: tuple = ()) -> tuple[Net, str, str, str]:
    """web 10.0/16 <-> db 10.1/16, routed both ways; each subnet on its own ACL (allow all
    unless given)."""
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    db = net.vpc("db", "10.1.0.0/16")
    w = net.subnet(web, "10.0.1.0/24")
    d = net.subnet(db, "10.1.1.0/24")
    pcx = net.peer_routed(web, db)
    net.allow_all_acls()
    net.acl(web, *(web_acl or (ALL_IN, ALL_OUT)), subnets=(w,), acl_id="acl-web")
    net.acl(db, *(db_acl or (ALL_IN, ALL_OUT)), subnets=(d,), acl_id="acl-db")
    return net, web, db, pcx


def test_allow_all_acls_block_nothing() -> None:
    assert run("nacl.blocks_peer", pair()[0].snapshot()) == []


def test_a_deny_of_the_peers_range_blocks_the_peering() -> None:
    net, _, db, pcx = pair(db_acl=((90, "in", "deny", "10.0.0.0/16"), ALL_IN, ALL_OUT))

    (f,) = run("nacl.blocks_peer", net.snapshot())

    assert (f.resource_id, f.resource_type, f.vpc_id) == ("acl-db", "AWS::EC2::NetworkAcl", db)
    assert (f.severity.value, f.peering_connection_id) == ("medium", pcx)
    assert f.extra == {"direction": "inbound", "blocked": "all", "peer_ranges": ["10.0.1.0/24"]}
    assert "rule 90 (deny all traffic 10.0.0.0/16)" in f.detail
    assert "subnet-web-1" in f.detail and "subnet-db-1" in f.detail


def test_an_acl_with_no_allow_for_the_peer_is_denied_by_the_star_rule() -> None:
    net, _, _, _ = pair(web_acl=(ALL_IN, (100, "out", "allow", "192.168.0.0/16")))

    (f,) = run("nacl.blocks_peer", net.snapshot())

    assert (f.resource_id, f.extra["direction"]) == ("acl-web", "outbound")
    assert "the * rule denies it" in f.detail


def test_a_deny_below_an_allow_is_never_reached() -> None:
    net, _, _, _ = pair(db_acl=(ALL_IN, (200, "in", "deny", "10.0.0.0/16"), ALL_OUT))
    assert run("nacl.blocks_peer", net.snapshot()) == []


def test_a_deny_of_part_of_the_peer_subnet_names_that_part() -> None:
    net, _, _, _ = pair(db_acl=((90, "in", "deny", "10.0.1.128/25"), ALL_IN, ALL_OUT))

    (f,) = run("nacl.blocks_peer", net.snapshot())

    assert f.extra["peer_ranges"] == ["10.0.1.128/25"]


def test_replies_need_the_ephemeral_range_back() -> None:
    # db lets postgres in from web, and lets only postgres out: replies to web's
    # ephemeral ports are dropped. (And db, which may open postgres connections to web
    # with that rule, gets no replies either: the second finding.)
    pg = (100, "in", "allow", "10.0.0.0/16", "6", (5432, 5432))
    out_pg = (100, "out", "allow", "10.0.0.0/16", "6", (5432, 5432))
    net, _, _, pcx = pair(db_acl=(pg, out_pg))

    found = run("nacl.blocks_peer", net.snapshot())

    assert sorted(f.extra["direction"] for f in found) == ["inbound", "outbound"]
    (f,) = [f for f in found if f.extra["direction"] == "outbound"]

    assert (f.resource_id, f.peering_connection_id) == ("acl-db", pcx)
    assert f.extra == {
        "direction": "outbound",
        "blocked": "replies",
        "peer_ranges": ["10.0.1.0/24"],
    }
    assert "denies outbound tcp 1024-5431, 5433-65535 to 10.0.1.0/24" in f.detail
    assert "connections that 10.0.1.0/24 (subnet-web-1) opens to these subnets" in f.detail


def test_a_tight_acl_with_its_reply_rule_is_clean() -> None:
    # db lets postgres in and the replies out: web -> db works. db's reply rule (tcp
    # 1024-65535 out) is not a way for db to open connections, so no reply is owed to it.
    pg = (100, "in", "allow", "10.0.0.0/16", "6", (5432, 5432))
    replies = (100, "out", "allow", "10.0.0.0/16", "6", (1024, 65535))
    net, _, _, _ = pair(db_acl=(pg, replies))
    assert run("nacl.blocks_peer", net.snapshot()) == []


def test_a_subnet_that_opens_connections_needs_the_replies_back() -> None:
    # db may open https to web (a request rule), but its ACL lets only postgres back in.
    pg = (100, "in", "allow", "10.0.0.0/16", "6", (5432, 5432))
    https_out = (100, "out", "allow", "10.0.0.0/16", "6", (443, 443))
    replies = (110, "out", "allow", "10.0.0.0/16", "6", (1024, 65535))
    net, _, _, _ = pair(db_acl=(pg, https_out, replies))

    (f,) = run("nacl.blocks_peer", net.snapshot())

    assert (f.resource_id, f.extra["direction"], f.extra["blocked"]) == (
        "acl-db",
        "inbound",
        "replies",
    )
    assert "connections that these subnets open to 10.0.1.0/24 (subnet-web-1)" in f.detail


def test_tight_acls_on_both_sides_with_their_replies_are_clean() -> None:
    pg_in = (100, "in", "allow", "10.0.0.0/16", "6", (5432, 5432))
    replies_out = (100, "out", "allow", "10.0.0.0/16", "6", (1024, 65535))
    pg_out = (100, "out", "allow", "10.1.0.0/16", "6", (5432, 5432))
    replies_in = (100, "in", "allow", "10.1.0.0/16", "6", (1024, 65535))
    net, _, _, _ = pair(db_acl=(pg_in, replies_out), web_acl=(pg_out, replies_in))
    assert run("nacl.blocks_peer", net.snapshot()) == []


def test_no_tcp_request_getting_through_means_no_reply_finding() -> None:
    udp_only = (100, "in", "allow", "10.0.0.0/16", "17", (53, 53))
    udp_out = (100, "out", "allow", "10.0.0.0/16", "17", (53, 53))
    net, _, _, _ = pair(db_acl=(udp_only, udp_out))
    assert [f.extra["blocked"] for f in run("nacl.blocks_peer", net.snapshot())] == []


def test_subnets_without_a_route_through_the_peering_are_not_judged() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    db = net.vpc("db", "10.1.0.0/16")
    net.subnet(web, "10.0.1.0/24")
    net.subnet(db, "10.1.1.0/24")
    net.peer(web, db)  # active, but no route uses it
    net.allow_all_acls()
    net.acl(db, (90, "in", "deny", "0.0.0.0/0"), subnets=("subnet-db-1",))
    assert run("nacl.blocks_peer", net.snapshot()) == []


def test_the_vpcs_default_acl_applies_to_subnets_without_an_association() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    db = net.vpc("db", "10.1.0.0/16")
    net.subnet(web, "10.0.1.0/24")
    net.subnet(db, "10.1.1.0/24")
    net.peer_routed(web, db)
    net.acl(web, ALL_IN, ALL_OUT, default=True)
    net.acl(db, (100, "in", "allow", "10.0.0.0/16"), default=True)  # nothing out

    (f,) = run("nacl.blocks_peer", net.snapshot())

    assert (f.resource_id, f.extra["direction"]) == ("acl-db-default", "outbound")


@pytest.mark.parametrize("broken", ["not read", "denied", "peer unreadable"])
def test_unknown_acls_are_not_a_block(broken: str) -> None:
    net, _, _, _ = pair(db_acl=((90, "in", "deny", "0.0.0.0/0"),))
    if broken == "not read":
        net.acls = None
    elif broken == "denied":
        net.partial.add(("us-east-1", "network_acls"))
    else:
        net.partial.add(("us-east-1", "route_tables"))  # the sides cannot be verified
    assert run("nacl.blocks_peer", net.snapshot()) == []


def test_one_finding_per_acl_direction_and_peering_whatever_the_number_of_subnets() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    db = net.vpc("db", "10.1.0.0/16")
    subs = [net.subnet(web, f"10.0.{i}.0/24") for i in (1, 2, 3)]
    d = net.subnet(db, "10.1.1.0/24")
    net.peer_routed(web, db)
    net.acl(web, ALL_IN, ALL_OUT, subnets=tuple(subs))
    net.acl(db, (90, "in", "deny", "10.0.0.0/16"), ALL_IN, ALL_OUT, subnets=(d,))

    (f,) = run("nacl.blocks_peer", net.snapshot())

    assert f.extra["peer_ranges"] == ["10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"]
