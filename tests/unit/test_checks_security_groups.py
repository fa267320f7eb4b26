"""The security-group checks, pure: hand-built snapshots, no moto."""

from __future__ import annotations

import pytest

from peerguard.domain.checks import CheckContext
from peerguard.domain.findings import Finding
from tests.unit.netbuilder import OTHER_ACCOUNT, Net, allowed, allowing, run

THIRD_ACCOUNT = "333333333333"


def peered(*, status: str = "active") -> tuple[Net, str, str, str]:
    """web 10.0.0.0/16 peered with db 10.1.0.0/16 (routed both ways), one subnet each."""
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    db = net.vpc("db", "10.1.0.0/16")
    net.subnet(web, "10.0.1.0/24")
    net.subnet(db, "10.1.1.0/24")
    pcx = net.peer_routed(web, db, status=status)
    return net, web, db, pcx


def ids(found: list[Finding]) -> list[tuple[str, str | None]]:
    return sorted((f.resource_id, f.extra.get("rule_id")) for f in found)


# -- sg.peer_all_traffic ----------------------------------------------------------------------


def test_all_traffic_from_the_whole_peer_vpc_is_high_and_names_group_rule_and_peering() -> None:
    net, web, db, pcx = peered()
    sg = net.group(web, "app")
    rule = net.ingress(sg, "10.1.0.0/16", description="everything from db")
    net.ingress(sg, "10.1.0.0/16", "tcp", (443, 443))  # a sibling that is fine

    (f,) = run("sg.peer_all_traffic", net.snapshot())

    assert (f.severity.value, f.resource_id, f.resource_type) == (
        "high",
        sg,
        "AWS::EC2::SecurityGroup",
    )
    assert (f.vpc_id, f.peering_connection_id, f.extra["rule_id"]) == (web, pcx, rule)
    assert f.extra["peer_vpc_ids"] == [db] and f.extra["peering_connection_ids"] == [pcx]
    assert rule in f.detail and "all traffic from 10.1.0.0/16" in f.detail and db in f.detail
    assert f.remediation is not None and not f.remediation.automatic
    assert f.remediation.parameters == {"GroupId": sg, "SecurityGroupRuleIds": [rule]}
    assert f.to_json()["rule_id"] == rule  # a top-level field of the public JSON


def test_every_port_of_tcp_and_of_udp_in_two_rules_is_all_traffic_too() -> None:
    net, web, _, _ = peered()
    sg = net.group(web, "app")
    tcp = net.ingress(sg, "10.1.0.0/16", "tcp", (0, 65535))
    udp = net.ingress(sg, "10.0.0.0/8", "udp", (0, 65535))  # a wider source covers it too

    found = run("sg.peer_all_traffic", net.snapshot())

    assert ids(found) == [(sg, tcp), (sg, udp)]
    by_rule = {f.extra["rule_id"]: f for f in found}
    assert udp in by_rule[tcp].detail and tcp in by_rule[udp].detail


@pytest.mark.parametrize(
    ("source", "proto", "ports"),
    [
        ("10.1.0.0/16", "tcp", (0, 65535)),  # every tcp port alone: not all traffic
        ("10.1.0.0/16", "tcp", (1, 65535)),
        ("10.1.1.0/24", "-1", None),  # one peer subnet, not the whole VPC
        ("10.7.0.0/16", "-1", None),  # not a peer at all
        ("0.0.0.0/0", "-1", None),  # the whole internet: sg.open_to_world says so
    ],
)
def test_narrower_rules_are_not_peer_all_traffic(
    source: str, proto: str, ports: tuple[int, int] | None
) -> None:
    net, web, _, _ = peered()
    net.ingress(net.group(web, "app"), source, proto, ports)
    assert run("sg.peer_all_traffic", net.snapshot()) == []


@pytest.mark.parametrize("status", ["pending-acceptance", "deleted", "rejected"])
def test_only_vpcs_with_an_active_peering_are_judged(status: str) -> None:
    net, web, _, _ = peered(status=status)
    net.ingress(net.group(web, "app"), "10.1.0.0/16")
    assert run("sg.peer_all_traffic", net.snapshot()) == []


def test_a_secondary_block_of_the_peer_counts_as_a_whole_block() -> None:
    net, web, db, _ = peered()
    net.add_cidr(db, "100.64.0.0/16")
    net.peerings = {
        k: p.model_copy(update={"accepter": p.accepter.model_copy(update={"cidr_blocks": ()})})
        for k, p in net.peerings.items()
    }  # the live VPC's blocks are what counts, not the peering's CidrBlockSet
    sg = net.group(web, "app")
    rule = net.ingress(sg, "100.64.0.0/16")

    (f,) = run("sg.peer_all_traffic", net.snapshot())

    assert f.extra["rule_id"] == rule and "100.64.0.0/16" in f.detail


def test_a_rule_read_without_its_id_is_reported_and_revoked_by_permission_by_hand() -> None:
    net, web, _, _ = peered()
    sg = net.group(web, "app")
    net.ingress(sg, "10.1.0.0/16", rule_id=None, description="db")

    (f,) = run("sg.peer_all_traffic", net.snapshot())

    assert f.extra["rule_id"] is None and f.key  # still one stable finding
    assert f.remediation is not None and not f.remediation.automatic
    assert f.remediation.parameters == {
        "GroupId": sg,
        "IpPermissions": [
            {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "10.1.0.0/16", "Description": "db"}]}
        ],
    }


def test_groups_not_read_or_denied_are_not_judged() -> None:
    net, web, _, _ = peered()
    net.ingress(net.group(web, "app"), "10.1.0.0/16")
    net.partial.add(("us-east-1", "security_groups"))
    assert run("sg.peer_all_traffic", net.snapshot()) == []
    assert run("sg.peer_all_traffic", peered()[0].snapshot()) == []  # groups never read


# -- sg.peer_supernet ----------------------------------------------------------------------------


def test_a_supernet_of_the_peer_is_medium_and_says_how_much_more_it_admits() -> None:
    net, web, db, pcx = peered()
    sg = net.group(web, "app")
    rule = net.ingress(sg, "10.0.0.0/8", "tcp", (443, 443))

    (f,) = run("sg.peer_supernet", net.snapshot())

    assert (f.severity.value, f.resource_id, f.extra["rule_id"]) == ("medium", sg, rule)
    assert f.peering_connection_id == pcx
    # 10/8 less web's and db's /16s
    assert f"{2**24 - 2 * 2**16:,} more addresses" in f.detail and db in f.detail
    assert run("sg.peer_all_traffic", net.snapshot()) == []  # one port only


def test_all_traffic_from_a_supernet_is_both_findings() -> None:
    net, web, _, _ = peered()
    rule = net.ingress(net.group(web, "app"), "10.0.0.0/8")
    snap = net.snapshot()
    assert [f.extra["rule_id"] for f in run("sg.peer_supernet", snap)] == [rule]
    assert [f.extra["rule_id"] for f in run("sg.peer_all_traffic", snap)] == [rule]


@pytest.mark.parametrize(
    "source",
    [
        "10.1.0.0/16",  # exactly the peer
        "10.1.0.0/17",  # part of it
        "10.0.0.0/15",  # exactly this VPC and its peer: nothing more
        "0.0.0.0/0",  # the internet: sg.open_to_world
        "172.16.0.0/12",  # no peer inside
    ],
)
def test_sources_that_are_not_a_supernet_of_a_peer(source: str) -> None:
    net, web, _, _ = peered()
    net.ingress(net.group(web, "app"), source, "tcp", (443, 443))
    assert run("sg.peer_supernet", net.snapshot()) == []


def test_one_supernet_over_two_peers_is_one_finding_naming_both() -> None:
    net, web, db, pcx = peered()
    cache = net.vpc("cache", "10.2.0.0/16")
    pcx2 = net.peer_routed(web, cache)
    rule = net.ingress(net.group(web, "app"), "10.0.0.0/12", "tcp", (6379, 6379))

    (f,) = run("sg.peer_supernet", net.snapshot())

    assert f.extra["rule_id"] == rule
    assert f.extra["peer_vpc_ids"] == sorted([db, cache])
    assert f.extra["peering_connection_ids"] == sorted([pcx, pcx2])
    assert f"{2**20 - 3 * 2**16:,} more" in f.detail


def test_ipv6_supernet_of_the_peers_block() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16", ipv6=("2600:1f18:aa::/56",))
    db = net.vpc("db", "10.1.0.0/16", ipv6=("2600:1f18:bb::/56",))
    net.peer_routed(web, db)
    rule = net.ingress(net.group(web, "app"), "2600:1f18::/32", "tcp", (443, 443))
    net.ingress(net.group(web, "other"), "::/0", "tcp", (443, 443))  # the world is not a supernet

    (f,) = run("sg.peer_supernet", net.snapshot())

    assert f.extra["rule_id"] == rule and "2600:1f18:bb::/56" in f.detail


# -- sg.open_to_world ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "proto", "ports", "says"),
    [
        ("0.0.0.0/0", "tcp", (22, 22), "admin port 22"),
        ("::/0", "tcp", (3389, 3389), "admin port 3389"),
        ("0.0.0.0/0", "udp", (3389, 3389), "admin port 3389"),  # RDP uses udp too
        ("0.0.0.0/0", "tcp", (5432, 5432), "database port 5432"),
        ("0.0.0.0/0", "tcp", (1000, 4000), "the admin port 3389 and the database ports 1433, 3306"),
        ("0.0.0.0/0", "-1", None, "all traffic"),
        ("0.0.0.0/0", "tcp", (0, 65535), "admin ports 22, 3389 and the database ports 1433"),
    ],
)
def test_the_internet_on_all_traffic_admin_or_database_ports_is_high_and_auto_revoked(
    source: str, proto: str, ports: tuple[int, int] | None, says: str
) -> None:
    net, web, _, pcx = peered()
    sg = net.group(web, "app")
    rule = net.ingress(sg, source, proto, ports)

    (f,) = run("sg.open_to_world", net.snapshot())

    assert (f.severity.value, f.resource_id, f.extra["rule_id"]) == ("high", sg, rule)
    assert says in f.detail and source in f.detail
    assert f.peering_connection_id is None and f.extra["peering_connection_ids"] == [pcx]
    assert f.remediation is not None and f.remediation.automatic
    assert f.remediation.action == "RevokeSecurityGroupIngress"
    assert f.remediation.parameters == {"GroupId": sg, "SecurityGroupRuleIds": [rule]}


@pytest.mark.parametrize(
    ("source", "proto", "ports"),
    [
        ("0.0.0.0/0", "tcp", (443, 443)),
        ("0.0.0.0/0", "tcp", (80, 80)),
        ("0.0.0.0/0", "udp", (22, 22)),  # SSH is tcp
        ("0.0.0.0/0", "udp", (5432, 5432)),  # so are the databases
        ("0.0.0.0/0", "icmp", (-1, -1)),
        ("0.0.0.1/32", "tcp", (22, 22)),  # one address, not the internet
        ("pl-0123", "tcp", (22, 22)),
    ],
)
def test_harmless_or_not_world_open_rules_are_not_reported(
    source: str, proto: str, ports: tuple[int, int]
) -> None:
    net, web, _, _ = peered()
    net.ingress(net.group(web, "app"), source, proto, ports)
    assert run("sg.open_to_world", net.snapshot()) == []


def test_egress_to_the_world_is_not_open_to_the_world() -> None:
    net, web, _, _ = peered()
    net.egress(net.group(web, "app"), "0.0.0.0/0")
    assert run("sg.open_to_world", net.snapshot()) == []


def test_the_database_ports_are_a_setting() -> None:
    net, web, _, _ = peered()
    sg = net.group(web, "search")
    net.ingress(sg, "0.0.0.0/0", "tcp", (5432, 5432))
    elastic = net.ingress(sg, "0.0.0.0/0", "tcp", (9200, 9200))

    found = run("sg.open_to_world", net.snapshot(), CheckContext(database_ports=(9200,)))

    assert [f.extra["rule_id"] for f in found] == [elastic]


def test_an_unpeered_vpc_open_to_the_world_is_not_this_tools_business() -> None:
    net = Net()
    alone = net.vpc("alone", "10.9.0.0/16")
    net.ingress(net.group(alone, "bastion"), "0.0.0.0/0", "tcp", (22, 22))
    assert run("sg.open_to_world", net.snapshot()) == []


# -- sg.stale_peer_reference -------------------------------------------------------------------


def test_a_reference_across_a_deleted_peering_is_stale_and_auto_revoked() -> None:
    net, web, db, _ = peered(status="deleted")
    sg, peer_sg = net.group(web, "app"), net.group(db, "db")
    rule = net.ingress(sg, peer_sg, "tcp", (5432, 5432), vpc=db)

    (f,) = run("sg.stale_peer_reference", net.snapshot())

    assert (f.severity.value, f.resource_id, f.extra["rule_id"]) == ("low", sg, rule)
    assert f.peering_connection_id == "pcx-web-db" and "is deleted" in f.detail
    assert f.extra["referenced_group_id"] == peer_sg
    assert f.remediation is not None and f.remediation.automatic
    assert f.remediation.parameters == {"GroupId": sg, "SecurityGroupRuleIds": [rule]}


def test_references_across_a_live_peering_or_inside_the_vpc_are_not_stale() -> None:
    net, web, db, _ = peered()
    sg = net.group(web, "app")
    net.ingress(sg, net.group(db, "db"), "tcp", (5432, 5432))
    net.ingress(sg, net.group(web, "lb"), "tcp", (443, 443))
    net.ingress(sg, sg, "tcp", (8080, 8080))  # itself
    assert run("sg.stale_peer_reference", net.snapshot()) == []


def test_a_reference_to_a_vpc_never_peered_is_stale() -> None:
    net, web, _, _ = peered()
    other = net.vpc("other", "10.5.0.0/16")
    sg = net.group(web, "app")
    rule = net.ingress(sg, net.group(other, "x"), "tcp", (22, 22))

    (f,) = run("sg.stale_peer_reference", net.snapshot())

    assert f.extra["rule_id"] == rule and "no peering joins" in f.detail


def test_a_reference_to_a_group_of_this_account_that_is_gone_is_stale() -> None:
    net, web, _, _ = peered()
    sg = net.group(web, "app")
    rule = net.ingress(sg, "sg-deleted", "tcp", (22, 22))

    (f,) = run("sg.stale_peer_reference", net.snapshot())

    assert f.extra["rule_id"] == rule and "sg-deleted no longer exists" in f.detail
    # ... but not when the region's groups could not be read in full
    net.partial.add(("us-east-1", "security_groups"))
    assert run("sg.stale_peer_reference", net.snapshot()) == []


def test_another_accounts_group_is_stale_only_when_ec2_says_so() -> None:
    net, web, _, _ = peered()
    sg = net.group(web, "app")
    rule = net.ingress(sg, "sg-theirs", "tcp", (443, 443), owner=OTHER_ACCOUNT)
    assert run("sg.stale_peer_reference", net.snapshot()) == []  # cannot be told

    net.stale_reported(
        sg,
        "sg-theirs",
        protocol="tcp",
        from_port=443,
        to_port=443,
        peering_id="pcx-gone",
        peering_status="deleted",
    )
    (f,) = run("sg.stale_peer_reference", net.snapshot())

    assert f.extra["rule_id"] == rule and f.peering_connection_id == "pcx-gone"
    assert "EC2 reports the reference stale: peering pcx-gone is deleted" in f.detail


def test_ec2s_stale_list_names_the_rule_by_its_ports() -> None:
    net, web, _, _ = peered()
    sg = net.group(web, "app")
    net.ingress(sg, "sg-theirs", "tcp", (443, 443), owner=OTHER_ACCOUNT)
    stale = net.ingress(sg, "sg-theirs", "tcp", (22, 22), owner=OTHER_ACCOUNT)
    net.stale_reported(sg, "sg-theirs", protocol="tcp", from_port=22, to_port=22)

    assert [f.extra["rule_id"] for f in run("sg.stale_peer_reference", net.snapshot())] == [stale]


def test_a_stale_egress_rule_is_reported_but_only_revoked_by_a_person() -> None:
    net, web, db, _ = peered(status="expired")
    sg = net.group(web, "app")
    rule = net.egress(sg, net.group(db, "db"), "tcp", (5432, 5432))

    (f,) = run("sg.stale_peer_reference", net.snapshot())

    assert f.extra["rule_id"] == rule and "egress rule" in f.detail
    assert f.remediation is not None and f.remediation.action == "RevokeSecurityGroupEgress"
    assert not f.remediation.automatic and "ingress rules only" in f.remediation.reason


def test_unknown_peerings_are_not_stale_peerings() -> None:
    net, web, db, _ = peered(status="deleted")
    net.ingress(net.group(web, "app"), net.group(db, "db"), "tcp", (5432, 5432))
    net.partial.add(("us-east-1", "peerings"))
    assert run("sg.stale_peer_reference", net.snapshot()) == []


# -- sg.unallowlisted_reference ----------------------------------------------------------------


def test_a_reference_to_an_account_not_on_the_allowlist() -> None:
    net, web, _, pcx = peered()
    sg = net.group(web, "app")
    trusted = net.ingress(sg, "sg-partner", "tcp", (443, 443), owner=OTHER_ACCOUNT)
    unknown = net.ingress(sg, "sg-stranger", "tcp", (443, 443), owner=THIRD_ACCOUNT, pcx=pcx)
    net.ingress(sg, net.group(web, "lb"), "tcp", (443, 443))  # this account's own group

    found = run("sg.unallowlisted_reference", net.snapshot(), allowing(allowed(OTHER_ACCOUNT)))

    assert [f.extra["rule_id"] for f in found] == [unknown] and trusted != unknown
    (f,) = found
    assert (f.severity.value, f.peering_connection_id) == ("medium", pcx)
    assert THIRD_ACCOUNT in f.detail and f.extra["referenced_owner_id"] == THIRD_ACCOUNT
    assert f.remediation is not None and not f.remediation.automatic


def test_without_an_allowlist_references_are_not_judged() -> None:
    net, web, _, _ = peered()
    net.ingress(net.group(web, "app"), "sg-stranger", "tcp", (443, 443), owner=THIRD_ACCOUNT)
    assert run("sg.unallowlisted_reference", net.snapshot()) == []


def test_an_allowlist_narrowed_to_a_vpc_judges_the_referenced_groups_vpc() -> None:
    net, web, _, _ = peered()
    sg = net.group(web, "app")
    net.ingress(sg, "sg-a", "tcp", (443, 443), owner=OTHER_ACCOUNT, vpc="vpc-theirs")
    elsewhere = net.ingress(sg, "sg-b", "tcp", (443, 443), owner=OTHER_ACCOUNT, vpc="vpc-else")
    ctx = allowing(allowed(OTHER_ACCOUNT, vpc_ids=frozenset({"vpc-theirs"})))

    found = run("sg.unallowlisted_reference", net.snapshot(), ctx)

    assert [f.extra["rule_id"] for f in found] == [elsewhere]
