"""`peerguard path` on hand-made networks: each component that can block, the call that
fixes it, transitive attempts, the stateless ACL trap, group references, what PeerGuard
cannot read, and the ends and options it takes."""

from __future__ import annotations

import pytest

from peerguard.domain.reachability import PathResult, parse_end, path
from peerguard.render import path_table
from tests.unit.netbuilder import OTHER_ACCOUNT, OTHER_REGION, Net


def app_db(**peer: object) -> tuple[Net, dict[str, str]]:
    """app 10.0.0.0/16 (subnet 10.0.1.0/24, eni 10.0.1.10 in sg-app) peered with db
    10.1.0.0/16 (subnet 10.1.1.0/24, eni 10.1.1.20 in sg-db: postgres from sg-app),
    routed both ways, default ACLs. Everything allows."""
    n = Net()
    ids: dict[str, str] = {}
    ids["app"], ids["db"] = n.vpc("app", "10.0.0.0/16"), n.vpc("db", "10.1.0.0/16")
    ids["app_subnet"] = n.subnet(ids["app"], "10.0.1.0/24")
    ids["db_subnet"] = n.subnet(ids["db"], "10.1.1.0/24")
    ids["pcx"] = n.peer_routed(ids["app"], ids["db"], **peer)
    n.allow_all_acls()
    ids["sg_app"] = n.group(ids["app"], "app")
    n.egress(ids["sg_app"], "0.0.0.0/0")
    ids["sg_db"] = n.group(ids["db"], "db")
    n.egress(ids["sg_db"], "0.0.0.0/0")
    n.ingress(ids["sg_db"], ids["sg_app"], "tcp", (5432, 5432))
    ids["app_eni"] = n.interface(ids["app_subnet"], "10.0.1.10", ids["sg_app"])
    ids["db_eni"] = n.interface(ids["db_subnet"], "10.1.1.20", ids["sg_db"], instance="i-db")
    return n, ids


def hops(r: PathResult) -> list[tuple[str, str | None, str, str]]:
    return [(h.component, h.id, h.direction, h.verdict) for h in r.hops]


def blocked(r: PathResult) -> tuple[str, str | None, str]:
    b = r.blocked_by
    assert b is not None, hops(r)
    return b.component, b.id, b.direction


def test_a_healthy_path_allows_every_hop_both_ways() -> None:
    n, ids = app_db()
    r = path(n.snapshot(), "10.0.1.10", "10.1.1.20:5432")
    assert r.reachable is True and r.blocked_by is None
    assert hops(r) == [
        ("security-group", "sg-app", "forward", "allow"),
        ("network-acl", "acl-app-default", "forward", "allow"),
        ("route-table", "rtb-app-main", "forward", "allow"),
        ("peering-connection", ids["pcx"], "forward", "allow"),
        ("network-acl", "acl-db-default", "forward", "allow"),
        ("security-group", "sg-db", "forward", "allow"),
        ("network-acl", "acl-db-default", "return", "allow"),
        ("route-table", "rtb-db-main", "return", "allow"),
        ("network-acl", "acl-app-default", "return", "allow"),
    ]
    assert r.to_json()["blocked_by"] is None
    assert set(r.to_json()["hops"][0]) == {
        "component", "id", "direction", "verdict", "matched", "explanation"
    }  # fmt: skip


@pytest.mark.parametrize(
    "src", ["10.0.1.10", "eni-app-1-1", "subnet-app-1"], ids=["ip", "eni", "subnet"]
)
@pytest.mark.parametrize("dst", ["10.1.1.20", "eni-db-1-2", "i-db"], ids=["ip", "eni", "instance"])
def test_every_kind_of_end_resolves(src: str, dst: str) -> None:
    n, _ = app_db()
    r = path(n.snapshot(), src, f"{dst}:5432")
    # A subnet has no security groups, so only sg-db judges it: a subnet is not sg-app.
    assert r.reachable is (src != "subnet-app-1")
    assert hops(r)[0][0] == ("security-group" if src != "subnet-app-1" else "network-acl")


def test_missing_forward_route_names_the_create_route() -> None:
    n, ids = app_db()
    n.unroute("rtb-app-main", "10.1.0.0/16")
    r = path(n.snapshot(), "10.0.1.10", "10.1.1.20:5432")
    assert blocked(r) == ("route-table", "rtb-app-main", "forward")
    assert "peering-connection" not in [h[0] for h in hops(r)]  # no route, no peering hop
    fix = r.blocked_by.fix  # type: ignore[union-attr]
    assert fix is not None and fix.cli() == (
        "aws ec2 create-route --route-table-id rtb-app-main --destination-cidr-block "
        f"10.1.0.0/16 --vpc-peering-connection-id {ids['pcx']}"
    )


def test_missing_return_route_blocks_the_replies() -> None:
    n, ids = app_db()
    n.unroute("rtb-db-main", "10.0.0.0/16")
    r = path(n.snapshot(), "10.0.1.10", "10.1.1.20:5432")
    assert blocked(r) == ("route-table", "rtb-db-main", "return")
    assert [h for h in hops(r) if h[3] == "deny"] == [
        ("route-table", "rtb-db-main", "return", "deny")
    ]
    assert r.blocked_by.fix.parameters == {  # type: ignore[union-attr]
        "RouteTableId": "rtb-db-main",
        "DestinationCidrBlock": "10.0.0.0/16",
        "VpcPeeringConnectionId": ids["pcx"],
    }


def test_a_route_to_the_internet_gateway_is_not_a_path_and_a_transit_gateway_is_unknown() -> None:
    n, _ = app_db()
    n.unroute("rtb-app-main", "10.1.0.0/16")
    n.route("rtb-app-main", "0.0.0.0/0", "igw-1")
    r = path(n.snapshot(), "10.0.1.10", "10.1.1.20:5432")
    assert blocked(r) == ("route-table", "rtb-app-main", "forward")
    n.route("rtb-app-main", "10.1.0.0/16", "tgw-1")
    r = path(n.snapshot(), "10.0.1.10", "10.1.1.20:5432")
    assert (
        r.reachable is None and r.hops[2].verdict == "unknown" and "tgw-1" in r.hops[2].explanation
    )


def test_a_more_specific_route_elsewhere_takes_part_of_a_subnet() -> None:
    n, _ = app_db()
    n.route("rtb-app-main", "10.1.1.128/25", "igw-1")
    assert path(n.snapshot(), "10.0.1.10", "10.1.1.20:5432").reachable is True  # .20: the pcx
    r = path(n.snapshot(), "10.0.1.10", "subnet-db-1:5432")
    assert blocked(r) == ("route-table", "rtb-app-main", "forward")
    assert "10.1.1.128/25 -> igw-1" in r.blocked_by.explanation  # type: ignore[union-attr]


def test_a_blackhole_inside_the_range_blocks_even_with_the_same_target() -> None:
    n, ids = app_db()
    n.route("rtb-app-main", "10.1.1.128/25", ids["pcx"], state="blackhole")
    snap = n.snapshot()
    assert path(snap, "10.0.1.10", "10.1.1.20:5432").reachable is True  # .20: not in it
    r = path(snap, "subnet-app-1", "subnet-db-1:5432")
    assert blocked(r) == ("route-table", "rtb-app-main", "forward")
    assert "10.1.1.128/25" in r.blocked_by.explanation  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("pending-acceptance", "AcceptVpcPeeringConnection"),
        ("provisioning", None),
        ("deleted", "CreateVpcPeeringConnection"),
        ("rejected", "CreateVpcPeeringConnection"),
        ("expired", "CreateVpcPeeringConnection"),
        ("failed", "CreateVpcPeeringConnection"),
    ],
)
def test_a_peering_that_is_not_active_carries_nothing(status: str, action: str | None) -> None:
    n, ids = app_db(status=status)
    r = path(n.snapshot(), "10.0.1.10", "10.1.1.20:5432")
    assert blocked(r) == ("peering-connection", ids["pcx"], "forward")
    assert status in r.blocked_by.explanation  # type: ignore[union-attr]
    fix = r.blocked_by.fix  # type: ignore[union-attr]
    assert (fix.action if fix else None) == action


def test_a_route_to_a_peering_that_is_gone_is_a_blackhole() -> None:
    n, _ = app_db()
    n.unroute("rtb-app-main", "10.1.0.0/16")
    n.route("rtb-app-main", "10.1.0.0/16", "pcx-gone")
    r = path(n.snapshot(), "10.0.1.10", "10.1.1.20:5432")
    assert blocked(r) == ("peering-connection", "pcx-gone", "forward")
    assert "does not exist" in r.blocked_by.explanation  # type: ignore[union-attr]


def test_transitive_attempt_through_a_middle_vpc_is_blocked_at_the_peering() -> None:
    n = Net()
    a, hub, c = n.vpc("a", "10.0.0.0/16"), n.vpc("hub", "10.9.0.0/16"), n.vpc("c", "10.2.0.0/16")
    sa, sc = n.subnet(a, "10.0.1.0/24"), n.subnet(c, "10.2.1.0/24")
    n.subnet(hub, "10.9.1.0/24")
    a_hub, hub_c = n.peer_routed(a, hub), n.peer_routed(hub, c)
    n.route(n.main(a), "10.2.0.0/16", a_hub)  # "through the hub"
    n.route(n.main(c), "10.0.0.0/16", hub_c)
    n.allow_all_acls()
    r = path(n.snapshot(), sa, "10.2.1.5:443")
    assert blocked(r) == ("peering-connection", a_hub, "forward")
    b = r.blocked_by
    assert (
        b is not None
        and "not transitive" in b.explanation
        and "10.2.1.5/32 is in vpc-c" in b.explanation
    )
    assert b.fix is not None and b.fix.action == "CreateVpcPeeringConnection"
    assert b.fix.parameters == {"VpcId": "vpc-a", "PeerVpcId": "vpc-c"}
    # and the way back does not come back through a_hub either
    assert ("route-table", "rtb-c-main", "return", "deny") in hops(r)
    del sc


def test_edge_to_edge_through_the_peer_is_blocked_at_the_peering() -> None:
    n, ids = app_db()
    n.route("rtb-app-main", "0.0.0.0/0", ids["pcx"])  # the peer's NAT, for the internet
    n.subnet(n.vpc("far", "172.16.0.0/16"), "172.16.0.0/24")
    r = path(n.snapshot(), "subnet-app-1", "172.16.0.9:443")
    assert blocked(r) == ("peering-connection", ids["pcx"], "forward")


def test_nacl_inbound_deny_names_the_rule_and_an_allow_above_it() -> None:
    n, _ = app_db()
    n.acl(
        "vpc-db",
        (90, "in", "deny", "10.0.0.0/16"),
        (100, "in", "allow", "0.0.0.0/0"),
        (100, "out", "allow", "0.0.0.0/0"),
        subnets=("subnet-db-1",),
    )
    r = path(n.snapshot(), "10.0.1.10", "10.1.1.20:5432")
    assert blocked(r) == ("network-acl", "acl-db-1", "forward")
    b = r.blocked_by
    assert b is not None and "rule 90 (deny all traffic 10.0.0.0/16)" in (b.matched or "")
    assert b.fix is not None and b.fix.parameters == {
        "NetworkAclId": "acl-db-1",
        "RuleNumber": 89,
        "Protocol": "6",
        "RuleAction": "allow",
        "Egress": False,
        "CidrBlock": "10.0.1.10/32",
        "PortRange": {"From": 5432, "To": 5432},
    }


def test_nacl_that_allows_the_request_but_not_the_ephemeral_reply() -> None:
    n, _ = app_db()
    n.acl(
        "vpc-db",
        (100, "in", "allow", "10.0.0.0/16", "6", (5432, 5432)),
        (100, "out", "allow", "10.0.0.0/16", "6", (5432, 5432)),  # the classic mistake
        subnets=("subnet-db-1",),
    )
    r = path(n.snapshot(), "10.0.1.10", "10.1.1.20:5432")
    assert ("network-acl", "acl-db-1", "forward", "allow") in hops(r)
    assert blocked(r) == ("network-acl", "acl-db-1", "return")
    b = r.blocked_by
    assert b is not None and "32768-65535" in b.explanation and "stateless" in b.explanation
    assert b.fix is not None and b.fix.parameters["Egress"] is True
    assert b.fix.parameters["PortRange"] == {"From": 1024, "To": 65535}
    # ping has no ports: the same ACL drops it on the way in
    assert blocked(path(n.snapshot(), "10.0.1.10", "10.1.1.20/icmp"))[2] == "forward"


def test_source_nacl_inbound_must_let_the_replies_in() -> None:
    n, _ = app_db()
    n.acl(
        "vpc-app",
        (100, "in", "allow", "0.0.0.0/0", "6", (0, 1023)),
        (100, "out", "allow", "0.0.0.0/0"),
        subnets=("subnet-app-1",),
    )
    r = path(n.snapshot(), "10.0.1.10", "10.1.1.20:5432")
    assert blocked(r) == ("network-acl", "acl-app-1", "return")
    assert r.hops[-1].verdict == "deny"


def test_security_group_missing_proposes_the_group_reference() -> None:
    n, ids = app_db()
    r = path(n.snapshot(), "10.0.1.10", "10.1.1.20:6379")
    assert blocked(r) == ("security-group", "sg-db", "forward")
    fix = r.blocked_by.fix  # type: ignore[union-attr]
    assert fix is not None and fix.action == "AuthorizeSecurityGroupIngress"
    assert fix.parameters == {
        "GroupId": "sg-db",
        "IpPermissions": [
            {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
             "UserIdGroupPairs": [{"GroupId": ids["sg_app"]}]}
        ],
    }  # fmt: skip


def test_a_group_that_allows_only_another_group_lets_its_members_in_only() -> None:
    n, _ = app_db()
    other = n.group("vpc-app", "batch")
    n.egress(other, "0.0.0.0/0")
    n.interface("subnet-app-1", "10.0.1.11", other)
    snap = n.snapshot()
    assert path(snap, "10.0.1.10", "10.1.1.20:5432").reachable is True  # in sg-app
    r = path(snap, "10.0.1.11", "10.1.1.20:5432")  # in sg-batch only
    assert blocked(r) == ("security-group", "sg-db", "forward")
    assert "only from members of sg-app" in r.blocked_by.explanation  # type: ignore[union-attr]
    # an address without an interface has no groups: the rule does not match it either
    assert blocked(path(snap, "10.0.1.99", "10.1.1.20:5432"))[0] == "security-group"


def test_source_egress_is_judged_too() -> None:
    n, _ = app_db()
    tight = n.group("vpc-app", "tight")
    n.egress(tight, "10.0.0.0/16")  # its own VPC only
    n.interface("subnet-app-1", "10.0.1.12", tight)
    r = path(n.snapshot(), "10.0.1.12", "10.1.1.20:5432")
    assert blocked(r) == ("security-group", "sg-tight", "forward")
    assert r.blocked_by.fix.action == "AuthorizeSecurityGroupEgress"  # type: ignore[union-attr]


def test_cidr_rules_must_cover_the_whole_subnet() -> None:
    n, _ = app_db()
    n.ingress("sg-db", "10.0.1.0/25", "tcp", (22, 22))
    n.ingress("sg-db", "10.0.1.128/25", "tcp", (22, 22))
    snap = n.snapshot()
    assert path(snap, "subnet-app-1", "10.1.1.20:22").reachable is True  # two halves
    n.ingress("sg-db", "10.0.1.0/26", "tcp", (23, 23))
    r = path(n.snapshot(), "subnet-app-1", "10.1.1.20:23")
    assert blocked(r) == ("security-group", "sg-db", "forward")
    assert "only part of 10.0.1.0/24" in r.blocked_by.explanation  # type: ignore[union-attr]


def test_group_references_do_not_cross_regions() -> None:
    n = Net()
    n.readable.add((n.account, OTHER_REGION))
    a, b = n.vpc("a", "10.0.0.0/16"), n.vpc("b", "10.1.0.0/16", region=OTHER_REGION)
    sa, sb = n.subnet(a, "10.0.1.0/24"), n.subnet(b, "10.1.1.0/24")
    n.peer_routed(a, b)
    n.allow_all_acls()
    ga, gb = n.group(a, "ga"), n.group(b, "gb")
    n.egress(ga, "0.0.0.0/0")
    n.ingress(gb, ga, "tcp", (443, 443))
    n.interface(sa, "10.0.1.10", ga)
    n.interface(sb, "10.1.1.10", gb)
    r = path(n.snapshot(), "10.0.1.10", "10.1.1.10:443")
    assert blocked(r) == ("security-group", "sg-gb", "forward")
    assert "cross-region" in r.hops[3].explanation
    assert "IpRanges" in r.blocked_by.fix.parameters["IpPermissions"][0]  # type: ignore[union-attr]


def test_another_account_that_cannot_be_read_is_unknown_never_a_guess() -> None:
    n = Net()
    a, b = n.vpc("a", "10.0.0.0/16"), n.vpc("b", "10.1.0.0/16", owner=OTHER_ACCOUNT)
    sa = n.subnet(a, "10.0.1.0/24")
    pcx = n.peer_routed(a, b)
    n.allow_all_acls()
    r = path(n.snapshot(), sa, "10.1.1.20:5432")
    assert r.reachable is None and r.blocked_by is None
    assert r.to_json()["reachable"] is None
    unknown = [h for h in r.hops if h.verdict == "unknown"]
    assert [h.component for h in unknown] == [
        "network-acl",
        "security-group",
        "network-acl",
        "route-table",
    ]
    assert all(OTHER_ACCOUNT in h.explanation and "cannot read" in h.explanation for h in unknown)
    assert ("peering-connection", pcx, "forward", "allow") in hops(r)
    assert "Unknown:" in path_table(r)
    # a deny on the readable side is still certain
    n.unroute(n.main(a), "10.1.0.0/16")
    assert path(n.snapshot(), sa, "10.1.1.20:5432").reachable is False


def test_a_region_not_read_is_unknown() -> None:
    n = Net()
    a, b = n.vpc("a", "10.0.0.0/16"), n.vpc("b", "10.1.0.0/16", region=OTHER_REGION)
    sa = n.subnet(a, "10.0.1.0/24")
    n.peer_routed(a, b)
    n.allow_all_acls()
    r = path(n.snapshot(), sa, "10.1.1.20:5432")
    assert r.reachable is None
    assert f"add --region {OTHER_REGION}" in r.hops[-2].explanation


def test_within_one_vpc_the_local_route_carries_it_and_one_subnet_skips_the_acls() -> None:
    n, _ = app_db()
    n.subnet("vpc-app", "10.0.2.0/24")
    snap = n.snapshot()
    r = path(snap, "subnet-app-1", "10.0.2.7:80")
    assert r.reachable is True and "peering-connection" not in [h[0] for h in hops(r)]
    r = path(snap, "10.0.1.10", "10.0.1.11:80")
    assert [h[0] for h in hops(r)] == ["security-group", "route-table", "route-table"]


def test_table_reads_like_a_traceroute_with_the_fix_on_the_blocking_hop() -> None:
    n, ids = app_db()
    n.unroute("rtb-db-main", "10.0.0.0/16")
    snap = n.snapshot()
    text = path_table(path(snap, "10.0.1.10", "10.1.1.20:5432"), snap)
    lines = text.splitlines()
    assert lines[0].startswith("Path 10.0.1.10 (eni-app-1-1, subnet-app-1, vpc-app) -> 10.1.1.20")
    assert any(line.startswith("  8  return  route-table") and "DENY" in line for line in lines)
    assert (
        "fix: aws ec2 create-route --route-table-id rtb-db-main --destination-cidr-block "
        f"10.0.0.0/16 --vpc-peering-connection-id {ids['pcx']}"
    ) in " ".join(text.split())
    assert "Not reachable: blocked at hop 8, route-table rtb-db-main (return)." in text


@pytest.mark.parametrize(
    ("text", "destination", "says"),
    [
        ("10.1.1.20", True, "name the port"),
        ("10.1.1.20:99999", True, "bad port"),
        ("10.1.1.20:80/sctp", True, "bad protocol"),
        ("10.1.1.20:80/icmp", True, "icmp has no port"),
        ("db.internal:80", True, "bad destination"),
        ("10.0.1.10:22", False, "takes no port"),
        ("", False, "no source"),
    ],
)
def test_bad_ends_are_one_line_errors(text: str, destination: bool, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_end(text, destination=destination)


def test_ends_nowhere_read_are_errors_naming_the_regions() -> None:
    n, _ = app_db()
    snap = n.snapshot()
    with pytest.raises(
        ValueError, match=r"subnet-nope was not found in the regions read \(us-east-1\)"
    ):
        path(snap, "subnet-nope", "10.1.1.20:5432")
    with pytest.raises(ValueError, match="in no subnet read"):
        path(snap, "10.0.1.10", "192.168.1.1:5432")
