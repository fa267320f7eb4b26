"""An independent, deliberately naive evaluator of `peerguard path`, for the property test.

It shares nothing with `peerguard.domain.reachability` or `peerguard.domain.paths` but the
Snapshot's data: it finds tables, ACLs, interfaces and groups from the raw fields itself,
and judges every concrete address of an end one at a time (longest-prefix match per
address, first matching ACL entry per address and port, every security-group rule per
address). The reply legs are judged on every client port 32768-65535 at once, as a set of
ports held in a bit mask, so "every port" really is every port. The hop order is the
documented one; only what it evaluates is written again.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from peerguard.domain.model import (
    NetworkAcl,
    NetworkAclEntry,
    NetworkInterface,
    RouteTable,
    SecurityGroupRule,
    Snapshot,
    Subnet,
)

Hop = tuple[str, str | None, str, str]  # (component, id, direction, verdict)
NUMBERS = {"-1": -1, "tcp": 6, "udp": 17, "icmp": 1, "6": 6, "17": 17, "1": 1, "58": 58}
CLIENT_LO, CLIENT_HI = 32768, 65535
CLIENT_MASK = ((1 << (CLIENT_HI + 1)) - 1) ^ ((1 << CLIENT_LO) - 1)


def proto_of(value: str) -> int:
    return NUMBERS.get(str(value).lower(), -2)


@dataclass
class Side:
    vpc: str
    owner: str
    region: str
    addresses: list[int]  # every concrete address (IPv4 ints)
    subnet: Subnet | None
    eni: NetworkInterface | None


def _ip(text: str) -> int:
    return int(ipaddress.ip_address(text))


def _in(address: int, cidr: str) -> bool:
    n = ipaddress.ip_network(cidr, strict=False)
    return n.version == 4 and int(n.network_address) <= address <= int(n.broadcast_address)


def _addresses(cidr: str) -> list[int]:
    n = ipaddress.ip_network(cidr, strict=False)
    return list(range(int(n.network_address), int(n.broadcast_address) + 1))


def find(snap: Snapshot, host: str) -> Side:
    enis = snap.network_interfaces or {}

    def owner_region(vpc_id: str) -> tuple[str, str]:
        v = snap.vpcs[vpc_id]
        return v.owner_id, v.region

    if host.startswith("subnet-"):
        s = snap.subnets[host]
        assert s.cidr_block
        return Side(s.vpc_id, *owner_region(s.vpc_id), _addresses(s.cidr_block), s, None)
    if host.startswith("eni-"):
        e = enis[host]
        s = snap.subnets[e.subnet_id]
        return Side(s.vpc_id, *owner_region(s.vpc_id), [_ip(e.private_ips[0])], s, e)
    for eni_id in sorted(enis):
        e = enis[eni_id]
        if host in e.private_ips:
            s = snap.subnets[e.subnet_id]
            return Side(s.vpc_id, *owner_region(s.vpc_id), [_ip(host)], s, e)
    a = _ip(host)
    for sid in sorted(snap.subnets):
        s = snap.subnets[sid]
        if s.cidr_block and _in(a, s.cidr_block):
            return Side(s.vpc_id, *owner_region(s.vpc_id), [a], s, None)
    for pid in sorted(snap.peerings):
        p = snap.peerings[pid]
        for side in (p.requester, p.accepter):
            if side.vpc_id not in snap.vpcs and any(_in(a, c) for c in side.cidr_blocks):
                return Side(side.vpc_id, side.owner_id, side.region, [a], None, None)
    raise LookupError(host)


def table_of(snap: Snapshot, subnet: Subnet) -> RouteTable | None:
    for t in snap.route_tables.values():
        if subnet.subnet_id in t.subnet_ids:
            return t
    mains = [t for t in snap.route_tables.values() if t.vpc_id == subnet.vpc_id and t.is_main]
    return mains[0] if mains else None


def acl_of(snap: Snapshot, subnet: Subnet) -> NetworkAcl | None:
    acls = snap.network_acls or {}
    for a in acls.values():
        if subnet.subnet_id in a.subnet_ids:
            return a
    defaults = [a for a in acls.values() if a.vpc_id == subnet.vpc_id and a.is_default]
    return defaults[0] if defaults else None


def route_for(t: RouteTable, address: int) -> tuple[str, str] | None:
    """(target, state) of the most specific route containing `address`."""
    best, best_len = None, -1
    for r in t.routes:
        if r.destination.startswith("pl-") or ":" in r.destination:
            continue
        n = ipaddress.ip_network(r.destination, strict=False)
        if _in(address, r.destination) and n.prefixlen > best_len:
            best, best_len = (r.target, r.state), n.prefixlen
    return best


def route_verdict(
    t: RouteTable, addresses: list[int], expect: set[str] | None
) -> tuple[str, str | None]:
    """(verdict, the one target) for routing every address. `expect`: targets that allow
    (None: the forward rules: a pcx, or local when `local_ok`)."""
    found = [route_for(t, a) for a in addresses]
    if any(f is None or f[1] == "blackhole" for f in found):
        return "deny", None
    targets = {f[0] for f in found if f}
    if len(targets) != 1:
        return "deny", None
    (target,) = targets
    return ("allow" if expect is None or target in expect else "deny"), target


def acl_allows_port(
    entries: list[NetworkAclEntry], address: int, proto: int, port: int | None
) -> bool:
    for e in entries:
        if not _in(address, e.cidr):
            continue
        ep = proto_of(e.protocol)
        if ep != -1 and ep != proto:
            continue
        if ep in (6, 17) and port is not None:
            assert e.from_port is not None and e.to_port is not None
            if not e.from_port <= port <= e.to_port:
                continue
        return e.action == "allow"
    return False  # the * rule


def acl_allows_client_ports(entries: list[NetworkAclEntry], address: int, proto: int) -> bool:
    """Every port 32768-65535 allowed, each decided by its first matching entry."""
    undecided, allowed = CLIENT_MASK, 0
    for e in entries:
        if not _in(address, e.cidr):
            continue
        ep = proto_of(e.protocol)
        if ep != -1 and ep != proto:
            continue
        if ep in (6, 17):
            assert e.from_port is not None and e.to_port is not None
            mask = ((1 << (e.to_port + 1)) - 1) ^ ((1 << e.from_port) - 1)
        else:
            mask = CLIENT_MASK
        hit = undecided & mask
        if e.action == "allow":
            allowed |= hit
        undecided &= ~hit
    return allowed == CLIENT_MASK


def acl_hop(
    snap: Snapshot, subnet: Subnet, egress: bool, other: list[int], proto: int, port: int | None,
    reply: bool, direction: str,
) -> Hop:  # fmt: skip
    acl = acl_of(snap, subnet)
    if acl is None:
        return ("network-acl", None, direction, "unknown")
    entries = sorted((e for e in acl.entries if e.egress == egress), key=lambda e: e.rule_number)
    for a in other:
        if reply and proto in (6, 17):
            ok = acl_allows_client_ports(entries, a, proto)
        else:
            ok = acl_allows_port(entries, a, proto, None if proto not in (6, 17) else port)
        if not ok:
            return ("network-acl", acl.acl_id, direction, "deny")
    return ("network-acl", acl.acl_id, direction, "allow")


def rule_lets(r: SecurityGroupRule, proto: int, port: int | None) -> bool:
    rp = proto_of(r.protocol)
    if rp == -1:
        return True
    if rp != proto:
        return False
    if proto in (6, 17) and port is not None:
        assert r.from_port is not None and r.to_port is not None
        return r.from_port <= port <= r.to_port
    return True


def sg_hop(
    snap: Snapshot, me: Side, other: Side, proto: int, port: int | None, egress: bool
) -> Hop:
    assert me.eni is not None
    first = me.eni.group_ids[0] if me.eni.group_ids else None
    groups = [(snap.security_groups or {}).get(g) for g in me.eni.group_ids]
    if any(g is None for g in groups):
        return ("security-group", first, "forward", "unknown")
    theirs = set(other.eni.group_ids) if other.eni else set()
    for a in other.addresses:
        ok = False
        for g in groups:
            assert g is not None
            for r in g.rules:
                if r.egress != egress or not rule_lets(r, proto, port):
                    continue
                if r.cidr and _in(a, r.cidr):
                    ok = True
                if r.referenced_group_id in theirs and me.region == other.region:
                    ok = True
        if not ok:
            return ("security-group", first, "forward", "deny")
    return ("security-group", first, "forward", "allow")


def peer_blocks(snap: Snapshot, pcx_id: str, vpc_id: str) -> list[str]:
    p = snap.peerings[pcx_id]
    other = p.accepter if p.requester.vpc_id == vpc_id else p.requester
    v = snap.vpcs.get(other.vpc_id)
    return list(v.cidr_blocks) if v and v.cidr_blocks else list(other.cidr_blocks)


def evaluate(
    snap: Snapshot, source: str, destination: str, proto: int, port: int | None
) -> list[Hop]:
    src, dst = find(snap, source), find(snap, destination)
    assert src.subnet is not None
    crosses = dst.subnet is None or dst.subnet.subnet_id != src.subnet.subnet_id
    hops: list[Hop] = []
    if src.eni:
        hops.append(sg_hop(snap, src, dst, proto, port, egress=True))
    if crosses:
        hops.append(acl_hop(snap, src.subnet, True, dst.addresses, proto, port, False, "forward"))
    table = table_of(snap, src.subnet)
    assert table is not None
    verdict, target = route_verdict(table, dst.addresses, None)
    pcx = None
    if verdict == "allow":
        assert target is not None
        if target.startswith("pcx-"):
            pcx = target
        elif target == "local":
            verdict = "allow" if dst.vpc == src.vpc else "deny"
        elif target.startswith(("igw-", "nat-", "eigw-")):
            verdict = "deny"
        else:
            verdict = "unknown"
    hops.append(("route-table", table.route_table_id, "forward", verdict))
    if pcx is not None:
        p = snap.peerings.get(pcx)
        joins = p is not None and src.vpc in (p.requester.vpc_id, p.accepter.vpc_id)
        if p is None or not joins or p.status != "active":
            v = "deny"
        else:
            blocks = peer_blocks(snap, pcx, src.vpc)
            v = "allow" if all(any(_in(a, b) for b in blocks) for a in dst.addresses) else "deny"
        hops.append(("peering-connection", pcx, "forward", v))
    if dst.subnet is None:
        hops += [
            ("network-acl", None, "forward", "unknown"),
            ("security-group", None, "forward", "unknown"),
            ("network-acl", None, "return", "unknown"),
            ("route-table", None, "return", "unknown"),
        ]
    else:
        if crosses:
            hops.append(
                acl_hop(snap, dst.subnet, False, src.addresses, proto, port, False, "forward")
            )
        if dst.eni:
            hops.append(sg_hop(snap, dst, src, proto, port, egress=False))
        if crosses:
            hops.append(acl_hop(snap, dst.subnet, True, src.addresses, proto, port, True, "return"))
        back = table_of(snap, dst.subnet)
        assert back is not None
        if src.vpc == dst.vpc:
            expect = {"local"}
        elif pcx is not None:
            expect = {pcx}
        else:
            expect = {
                p.pcx_id
                for p in snap.peerings.values()
                if {p.requester.vpc_id, p.accepter.vpc_id} == {src.vpc, dst.vpc}
            }
        verdict, _ = route_verdict(back, src.addresses, expect)
        hops.append(("route-table", back.route_table_id, "return", verdict))
    if crosses:
        hops.append(acl_hop(snap, src.subnet, False, dst.addresses, proto, port, True, "return"))
    return hops


def reachable(hops: list[Hop]) -> bool | None:
    verdicts = [h[3] for h in hops]
    if "deny" in verdicts:
        return False
    return None if "unknown" in verdicts else True


def blocking(hops: list[Hop]) -> Hop | None:
    return next((h for h in hops if h[3] == "deny"), None)


def addresses_of(cidr: str) -> Iterator[str]:
    for a in _addresses(cidr):
        yield str(ipaddress.ip_address(a))
