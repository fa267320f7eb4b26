"""`peerguard path`: can SRC reach DST:PORT through the peerings, and if not, what stops it?
Pure: a walk over the Snapshot, hop by hop, as AWS evaluates a packet and its reply.

    forward  security-group (the source's, egress)     only when the source is an interface
             network-acl    (the source subnet's, outbound)
             route-table    (the source subnet's effective table, longest prefix)
             peering-connection (active, joins the source VPC, destination inside the
                                 peer VPC's own blocks: no transit, no edge-to-edge)
             network-acl    (the destination subnet's, inbound)
             security-group (the destination's, ingress)  only when it is an interface
    return   network-acl    (the destination subnet's, outbound, to the client's ports)
             route-table    (the destination subnet's table, back through the same peering)
             network-acl    (the source subnet's, inbound, to the client's ports)

Security groups are stateful (replies pass them); ACLs are stateless, so the reply legs
are judged on the ports clients use (`paths.CLIENT_PORTS`, as the nacl check does). ACLs do
not filter traffic inside one subnet. A subnet as an end means every address in it: a hop
allows only when it allows all of them (and says which part it denies). Every hop is judged,
including after a deny, so one run shows every fix; the first deny is the one `blocked_by`
names. What PeerGuard did not read (another account, a region not asked for, a describe
call denied) is "unknown", never a guess: `reachable` is then None, unless some hop denies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from peerguard.domain.findings import Call
from peerguard.domain.model import (
    ACTIVE,
    ICMP,
    ICMPV6,
    PENDING_ACCEPTANCE,
    PORTED,
    TCP,
    UDP,
    NetworkAcl,
    NetworkAclEntry,
    NetworkInterface,
    PeeringConnection,
    RouteTable,
    SecurityGroup,
    SecurityGroupRule,
    Snapshot,
    Subnet,
    protocol_name,
    span,
    within,
)
from peerguard.domain.paths import CLIENT_PORTS, EPHEMERAL, decisions, merge, range_text, uncovered

ROUTE, PEERING, ACL, SG = "route-table", "peering-connection", "network-acl", "security-group"
FORWARD, RETURN = "forward", "return"
ALLOW, DENY, UNKNOWN = "allow", "deny", "unknown"
_PROTOCOLS = {"tcp": TCP, "udp": UDP, "icmp": ICMP}
# Targets that cannot carry a private address of a peer VPC (no edge-to-edge routing).
_NOWHERE = ("igw-", "eigw-", "nat-")


# -- the question ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """What is sent: a protocol and, for tcp/udp, the destination port."""

    proto: int
    port: int | None = None

    @property
    def ported(self) -> bool:
        return self.proto in PORTED

    @property
    def text(self) -> str:
        name = protocol_name(self.proto)
        return f"{name} port {self.port}" if self.port is not None else name

    def reply(self) -> tuple[int, tuple[int, int] | None]:
        """The reply's protocol and destination ports (the client's)."""
        if self.proto == ICMP:
            return ICMP, None
        return (self.proto, CLIENT_PORTS) if self.ported else (self.proto, None)


@dataclass(frozen=True)
class Target:
    """An end as the user wrote it: a host (address, eni-, i- or subnet-id) and, for the
    destination, a port and protocol."""

    host: str
    probe: Probe | None = None


def parse_end(text: str, *, destination: bool) -> Target:
    """'10.1.2.3', 'eni-1', 'i-1', 'subnet-1'; a destination adds ':PORT' and/or '/tcp|udp|icmp'.

    Raises ValueError with a one-line reason."""
    raw = text.strip()
    host, _, proto_name = raw.partition("/")
    port_text = ""
    if host.count(":") == 1:  # an IPv6 address has more than one colon and takes no port
        host, _, port_text = host.partition(":")
    what = "destination" if destination else "source"
    if not host:
        raise ValueError(f"no {what} given in {text!r}")
    if not host.startswith(("eni-", "i-", "subnet-")):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(
                f"bad {what} {host!r} (expected a private IP, an eni-, i- or subnet- id)"
            ) from None
    if not destination:
        if port_text or proto_name:
            raise ValueError(f"the source takes no port or protocol: {text!r}")
        return Target(host)
    proto_name = proto_name.lower()
    if proto_name and proto_name not in _PROTOCOLS:
        raise ValueError(f"bad protocol {proto_name!r} in {text!r} (expected tcp, udp or icmp)")
    if port_text and not (port_text.isdigit() and 0 <= int(port_text) <= 65535):
        raise ValueError(f"bad port {port_text!r} in {text!r} (expected 0-65535)")
    proto = _PROTOCOLS[proto_name or "tcp"]
    if proto == ICMP:
        if port_text:
            raise ValueError(f"icmp has no port: {text!r}")
        return Target(host, Probe(ICMP))
    if not port_text:
        raise ValueError(f"name the port ({host}:5432, {host}:53/udp) or use {host}/icmp")
    return Target(host, Probe(proto, int(port_text)))


@dataclass(frozen=True)
class End:
    """A resolved end: where it sits and which addresses it stands for."""

    name: str  # as given
    vpc_id: str
    owner_id: str
    region: str
    cidr: str  # the address as a /32 (/128), or the subnet's block
    subnet: Subnet | None = None  # None: in a VPC PeerGuard did not read
    interface: NetworkInterface | None = None

    @property
    def readable(self) -> bool:
        return self.subnet is not None

    @property
    def text(self) -> str:
        where = (
            [self.interface.eni_id] if self.interface and self.name != self.interface.eni_id else []
        )
        if self.subnet and self.name != self.subnet.subnet_id:
            where.append(self.subnet.subnet_id)
        where.append(self.vpc_id)
        shown = self.cidr if self.name.startswith(("subnet-", "eni-", "i-")) else ""
        return f"{self.name}{' ' + shown if shown else ''} ({', '.join(where)})"


def _host_cidr(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


def resolve(snap: Snapshot, host: str) -> End:
    """Where `host` sits. Raises ValueError when it is nowhere PeerGuard read."""
    regions = ", ".join(sorted({r for _, r in snap.readable})) or "none"
    enis = snap.network_interfaces or {}
    if host.startswith("subnet-"):
        s = snap.subnets.get(host)
        if s is None:
            raise ValueError(f"{host} was not found in the regions read ({regions}); add --region")
        cidr = s.cidr_block or (s.ipv6_cidr_blocks[0] if s.ipv6_cidr_blocks else "")
        if not cidr:
            raise ValueError(f"{host} has no CIDR block")
        return _end(snap, host, s, cidr, None)
    if host.startswith(("eni-", "i-")):
        if host.startswith("eni-"):
            eni = enis.get(host)
        else:
            attached = sorted(
                (e for e in enis.values() if e.instance_id == host),
                key=lambda e: (e.device_index if e.device_index is not None else 99, e.eni_id),
            )
            eni = attached[0] if attached else None
        if eni is None or eni.address is None:
            raise ValueError(f"{host} was not found in the regions read ({regions}); add --region")
        return _interface_end(snap, host, eni, eni.address)
    for eni in sorted(enis.values(), key=lambda e: e.eni_id):
        if host in eni.private_ips:
            return _interface_end(snap, host, eni, host)
    cidr = _host_cidr(host)
    for s in sorted(snap.subnets.values(), key=lambda s: s.subnet_id):
        if any(within(cidr, c) for c in s.all_cidrs):
            return _end(snap, host, s, cidr, None)
    # In a peer VPC that was not read: the peering still says whose blocks these are.
    for pcx in sorted(snap.peerings.values(), key=lambda p: p.pcx_id):
        for side in pcx.sides:
            if side.vpc_id not in snap.vpcs and any(within(cidr, c) for c in side.all_cidrs):
                return End(host, side.vpc_id, side.owner_id, side.region, cidr)
    raise ValueError(
        f"{host} is in no subnet read ({regions}) and in no peer VPC's CIDR blocks; add --region"
    )


def _interface_end(snap: Snapshot, name: str, eni: NetworkInterface, address: str) -> End:
    s = snap.subnets.get(eni.subnet_id)
    if s is None:
        raise ValueError(f"{name}: its subnet {eni.subnet_id} was not read")
    return _end(snap, name, s, _host_cidr(address), eni)


def _end(snap: Snapshot, name: str, s: Subnet, cidr: str, eni: NetworkInterface | None) -> End:
    vpc = snap.vpcs.get(s.vpc_id)
    owner = vpc.owner_id if vpc else snap.account_id
    return End(name, s.vpc_id, owner, vpc.region if vpc else "", cidr, s, eni)


# -- the answer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    component: str
    id: str | None
    direction: str
    verdict: str
    matched: str | None
    explanation: str
    fix: Call | None = None  # the call that removes this block (deny hops)

    def to_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "id": self.id,
            "direction": self.direction,
            "verdict": self.verdict,
            "matched": self.matched,
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class PathResult:
    source: End
    destination: End
    probe: Probe
    hops: tuple[Hop, ...]

    @property
    def blocked_by(self) -> Hop | None:
        return next((h for h in self.hops if h.verdict == DENY), None)

    @property
    def reachable(self) -> bool | None:
        """True, False, or None: nothing denies, but some hop could not be judged."""
        if self.blocked_by is not None:
            return False
        return None if any(h.verdict == UNKNOWN for h in self.hops) else True

    def to_json(self) -> dict[str, Any]:
        b = self.blocked_by
        return {
            "reachable": self.reachable,
            "hops": [h.to_json() for h in self.hops],
            "blocked_by": None
            if b is None
            else {
                "component": b.component,
                "id": b.id,
                "direction": b.direction,
                "explanation": b.explanation,
            },
        }


def trace(snap: Snapshot, src: End, dst: End, probe: Probe) -> PathResult:
    """Every hop from `src` to `dst` and back (see the module docstring for the order)."""
    if not src.readable:
        raise ValueError(f"the source {src.name} must be in a VPC PeerGuard reads")
    assert src.subnet is not None
    crosses = dst.subnet is None or dst.subnet.subnet_id != src.subnet.subnet_id
    hops: list[Hop] = []
    if src.interface is not None:
        hops.append(_sg_hop(snap, src, dst, probe, egress=True))
    if crosses:
        hops.append(_acl_hop(snap, src.subnet, dst, probe, egress=True, reply=False))
    route, pcx_id = _forward_route(snap, src, dst)
    hops.append(route)
    if pcx_id is not None:
        hops.append(_peering_hop(snap, pcx_id, src, dst))
    if dst.subnet is None:
        why = _unread(snap, dst)
        hops += [
            Hop(ACL, None, FORWARD, UNKNOWN, None, f"{dst.vpc_id}'s network ACLs: {why}"),
            Hop(SG, None, FORWARD, UNKNOWN, None, f"{dst.name}'s security groups: {why}"),
            Hop(ACL, None, RETURN, UNKNOWN, None, f"{dst.vpc_id}'s network ACLs: {why}"),
            Hop(ROUTE, None, RETURN, UNKNOWN, None, f"{dst.vpc_id}'s route tables: {why}"),
        ]
    else:
        if crosses:
            hops.append(_acl_hop(snap, dst.subnet, src, probe, egress=False, reply=False))
        if dst.interface is not None:
            hops.append(_sg_hop(snap, dst, src, probe, egress=False))
        if crosses:
            hops.append(_acl_hop(snap, dst.subnet, src, probe, egress=True, reply=True))
        hops.append(_return_route(snap, src, dst, pcx_id))
    if crosses:
        hops.append(_acl_hop(snap, src.subnet, dst, probe, egress=False, reply=True))
    return PathResult(src, dst, probe, tuple(hops))


def _unread(snap: Snapshot, end: End) -> str:
    if end.owner_id == snap.account_id:
        return (
            f"{end.vpc_id} is in region {end.region}, which was not read "
            f"(add --region {end.region})"
        )
    return (
        f"{end.vpc_id} is in account {end.owner_id} ({end.region}), which PeerGuard cannot "
        "read with these credentials (run it there, or with a role in that account)"
    )


# -- route tables ------------------------------------------------------------------------------


def _table(snap: Snapshot, subnet: Subnet, direction: str) -> RouteTable | Hop:
    rt = snap.effective_table(subnet)
    region = snap.region_of(subnet.vpc_id)
    if rt is None or (region, "route_tables") in snap.partial:
        why = "route tables were not read" if rt is not None else "no route table was read"
        return Hop(ROUTE, None, direction, UNKNOWN, None, f"{subnet.subnet_id}: {why}")
    return rt


def _lookup(rt: RouteTable, cidr: str) -> tuple[str | None, str, str]:
    """(target every address of `cidr` goes to, or None; the route(s) matched; why not)."""
    match = rt.lookup(cidr)
    diverted = [
        r
        for r in rt.more_specific_than(cidr)
        if match is None or r.target != match.target or r.state == "blackhole"
    ]
    if diverted:
        parts = ", ".join(f"{r.destination} -> {r.target}" for r in diverted)
        matched = f"{match.destination} -> {match.target}" if match else "no route for the rest"
        return (
            None,
            f"{matched}; {parts}",
            f"more specific routes send part of it elsewhere ({parts})",
        )
    if match is None:
        return None, "", "no route matches it"
    text = f"{match.destination} -> {match.target}"
    if match.state == "blackhole":
        return None, text, f"the route {text} is a blackhole"
    return match.target, text, ""


def _forward_route(snap: Snapshot, src: End, dst: End) -> tuple[Hop, str | None]:
    assert src.subnet is not None
    rt = _table(snap, src.subnet, FORWARD)
    if isinstance(rt, Hop):
        return rt, None
    target, matched, why = _lookup(rt, dst.cidr)
    where = f"{rt.route_table_id} (used by {src.subnet.subnet_id})"
    live = _live_peering(snap, src.vpc_id, dst.vpc_id)
    hop = partial(Hop, ROUTE, rt.route_table_id, FORWARD)
    if target is None:
        return hop(
            DENY,
            matched or None,
            f"{where} has no route sending {dst.cidr} through a peering: {why}.",
            _route_fix(snap, rt, dst, live),
        ), None
    if target.startswith("pcx-"):
        return hop(
            ALLOW,
            matched,
            f"{where} sends {dst.cidr} to {target} (longest prefix {matched}).",
        ), target
    if target == "local":
        if dst.vpc_id == src.vpc_id:
            return hop(
                ALLOW,
                matched,
                f"{dst.cidr} is in {src.vpc_id} itself: the local route carries it.",
            ), None
        return hop(
            DENY,
            matched,
            f"{where} keeps {dst.cidr} inside {src.vpc_id} (local route {matched}), but it "
            f"is in {dst.vpc_id}: the two VPCs' ranges overlap, which peering cannot carry.",
        ), None
    if target.startswith(_NOWHERE):
        return hop(
            DENY,
            matched,
            f"{where} sends {dst.cidr} to {target}, not through a peering: a peer VPC's "
            "private address is reached only through the peering connection.",
            _route_fix(snap, rt, dst, live),
        ), None
    return hop(
        UNKNOWN,
        matched,
        f"{where} sends {dst.cidr} to {target}: PeerGuard follows peering connections and "
        f"does not evaluate what {target} does with it.",
    ), None


def _return_route(snap: Snapshot, src: End, dst: End, pcx_id: str | None) -> Hop:
    assert dst.subnet is not None
    rt = _table(snap, dst.subnet, RETURN)
    if isinstance(rt, Hop):
        return rt
    target, matched, why = _lookup(rt, src.cidr)
    where = f"{rt.route_table_id} (used by {dst.subnet.subnet_id})"
    if src.vpc_id == dst.vpc_id:
        expected = {"local"}
    elif pcx_id is not None:
        expected = {pcx_id}
    else:
        expected = {p.pcx_id for p in snap.peerings_between(src.vpc_id, dst.vpc_id)}
    back = " or ".join(sorted(expected)) or "a peering to " + src.vpc_id
    if target is not None and target in expected:
        return Hop(
            ROUTE,
            rt.route_table_id,
            RETURN,
            ALLOW,
            matched,
            f"{where} sends the replies to {src.cidr} back through {target} ({matched}).",
        )
    if target is not None:
        why = f"it sends them to {target} ({matched})"
    live = _live_peering(snap, dst.vpc_id, src.vpc_id)
    via = pcx_id if pcx_id in expected and pcx_id in snap.peerings else live
    return Hop(
        ROUTE,
        rt.route_table_id,
        RETURN,
        DENY,
        matched or None,
        f"{where} has no route sending the replies to {src.cidr} back through {back}: "
        f"{why}, so the replies are dropped.",
        _route_fix(snap, rt, src, via),
    )


def _live_peering(snap: Snapshot, a: str, b: str) -> str | None:
    live = [p.pcx_id for p in snap.peerings_between(a, b) if p.status == ACTIVE]
    return live[0] if live else None


def _route_fix(snap: Snapshot, rt: RouteTable, to: End, pcx_id: str | None) -> Call | None:
    """The route to `to`'s VPC block via `pcx_id` (ReplaceRoute where that destination is
    already routed elsewhere), or the peering to create when there is none."""
    if pcx_id is None:
        return _peering_request(snap, rt.vpc_id, to)
    blocks = (
        snap.vpc_cidrs(snap.peerings[pcx_id].other(rt.vpc_id)) if pcx_id in snap.peerings else ()
    )
    dest = next((b for b in blocks if within(to.cidr, b)), to.cidr)
    kwarg = "DestinationIpv6CidrBlock" if ":" in dest else "DestinationCidrBlock"
    exists = any(r.destination == dest for r in rt.routes)
    params = {"RouteTableId": rt.route_table_id, kwarg: dest, "VpcPeeringConnectionId": pcx_id}
    return Call("ReplaceRoute" if exists else "CreateRoute", params)


def _peering_request(snap: Snapshot, vpc_id: str, to: End) -> Call:
    vpc = snap.vpcs.get(vpc_id)
    params: dict[str, Any] = {"VpcId": vpc_id, "PeerVpcId": to.vpc_id}
    if vpc is not None and to.owner_id and to.owner_id != vpc.owner_id:
        params["PeerOwnerId"] = to.owner_id
    if vpc is not None and to.region and to.region != vpc.region:
        params["PeerRegion"] = to.region
    return Call("CreateVpcPeeringConnection", params)


# -- the peering -------------------------------------------------------------------------------


def _peering_hop(snap: Snapshot, pcx_id: str, src: End, dst: End) -> Hop:
    pcx = snap.peerings.get(pcx_id)
    hop = partial(Hop, PEERING, pcx_id, FORWARD)
    if pcx is None:
        if (src.region, "peerings") in snap.partial:
            return hop(
                UNKNOWN,
                None,
                f"{pcx_id} could not be looked up (peerings were not read in {src.region}).",
            )
        return hop(
            DENY,
            None,
            f"{pcx_id} does not exist any more: the route to it is a blackhole.",
            _peering_request(snap, src.vpc_id, dst),
        )
    joined = _joined_text(snap, pcx)
    if pcx.side_of(src.vpc_id) is None:
        return hop(
            DENY,
            joined,
            f"{pcx_id} does not connect {src.vpc_id} ({joined}).",
            _peering_request(snap, src.vpc_id, dst),
        )
    if pcx.status != ACTIVE:
        fix: Call | None = None
        if pcx.status == PENDING_ACCEPTANCE:
            how = f"{pcx.accepter.owner_id} must accept it"
            fix = Call("AcceptVpcPeeringConnection", {"VpcPeeringConnectionId": pcx_id})
        elif pcx.status in ("initiating-request", "provisioning"):
            how = "wait for it to become active"
        else:
            how = "request a new peering and route through it"
            fix = _peering_request(snap, src.vpc_id, dst)
        return hop(
            DENY,
            joined,
            f"{pcx_id} is {pcx.status}, not active: it carries nothing ({how}).",
            fix,
        )
    peer = pcx.other(src.vpc_id)
    blocks = snap.peer_cidrs(pcx, src.vpc_id)
    if not any(within(dst.cidr, b) for b in blocks):
        where = f"in {dst.vpc_id}" if dst.vpc_id != peer.vpc_id else "outside it"
        return hop(
            DENY,
            joined,
            f"{dst.cidr} is {where}, not inside {peer.vpc_id}'s blocks "
            f"({', '.join(blocks) or 'unknown'}): peering is not transitive and has no "
            "edge-to-edge routing, so the peer drops it.",
            None if dst.vpc_id == peer.vpc_id else _peering_request(snap, src.vpc_id, dst),
        )
    here = pcx.side_of(src.vpc_id)
    assert here is not None
    cross = []
    if here.region != peer.region:
        cross.append(f"cross-region {here.region} -> {peer.region}")
    if here.owner_id != peer.owner_id:
        cross.append(f"cross-account {here.owner_id} -> {peer.owner_id}")
    extra = f" ({'; '.join(cross)})" if cross else ""
    return hop(
        ALLOW,
        joined,
        f"{pcx_id} is active and {dst.cidr} is inside {peer.vpc_id}'s blocks{extra}.",
    )


def _joined_text(snap: Snapshot, pcx: PeeringConnection) -> str:
    sides = " <-> ".join(f"{s.vpc_id} ({', '.join(snap.vpc_cidrs(s)) or '?'})" for s in pcx.sides)
    return f"{pcx.pcx_id} [{pcx.status}]: {sides}"


# -- network ACLs ------------------------------------------------------------------------------


def _acl_hop(
    snap: Snapshot, subnet: Subnet, other: End, probe: Probe, *, egress: bool, reply: bool
) -> Hop:
    """The ACL of `subnet`, one direction, for traffic to or from `other`'s range: the
    request (probe) or, with `reply`, the replies (to the client's ports)."""
    direction = RETURN if reply else FORWARD
    region = snap.region_of(subnet.vpc_id)
    acl = snap.acl_of(subnet) if snap.network_acls is not None else None
    if acl is None or (region, "network_acls") in snap.partial:
        return Hop(
            ACL,
            acl.acl_id if acl else None,
            direction,
            UNKNOWN,
            None,
            f"{subnet.subnet_id}'s network ACL was not read.",
        )
    proto, ports = (
        probe.reply()
        if reply
        else (
            probe.proto,
            (probe.port, probe.port) if probe.ported and probe.port is not None else None,
        )
    )
    entries = acl.direction(egress)
    cells = decisions(entries, span(other.cidr), proto, ports)
    denied = [(a, p, e) for a, p, e in cells if e is None or not e.allow]
    way, to = ("outbound", "to") if egress else ("inbound", "from")
    what = protocol_name(proto) + (f" {_ports_text(ports)}" if ports else "")
    deciders = _entries_text(e for _, _, e in (denied or cells))
    if not denied:
        return Hop(
            ACL,
            acl.acl_id,
            direction,
            ALLOW,
            deciders,
            f"{acl.acl_id} (on {subnet.subnet_id}) allows {way} {what} {to} {other.cidr}.",
        )
    version = span(other.cidr).version
    addrs = ", ".join(range_text(version, lo, hi) for lo, hi in merge(a for a, _, _ in denied))
    denied_ports = merge(p for _, p, _ in denied if p is not None)
    what_denied = protocol_name(proto) + (f" {_ports_text(*denied_ports)}" if denied_ports else "")
    lead = (
        f"{acl.acl_id} (on {subnet.subnet_id}) denies {way} {what_denied} {to} {addrs} ({deciders})"
    )
    if reply:
        tail = (
            "the replies go to the client's ports (32768-65535 in practice; AWS advises "
            "allowing 1024-65535) and ACLs are stateless, so they are dropped"
        )
    else:
        tail = "the request is dropped"
    return Hop(
        ACL,
        acl.acl_id,
        direction,
        DENY,
        deciders,
        f"{lead}: {tail}.",
        _acl_fix(acl, entries, egress, other.cidr, proto, reply, denied),
    )


def _ports_text(*ports: tuple[int, int]) -> str:
    parts = [f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in ports]
    return ("port " if len(parts) == 1 and "-" not in parts[0] else "ports ") + ", ".join(parts)


def _entries_text(entries: Iterable[NetworkAclEntry | None]) -> str:
    seen: dict[int, str] = {}
    star = False
    for e in entries:
        if e is None:
            star = True
        else:
            seen.setdefault(e.rule_number, e.text)
    parts = [seen[n] for n in sorted(seen)]
    if star:
        parts.append("rule * (deny all: no rule matches)")
    return "; ".join(parts)


def _acl_fix(
    acl: NetworkAcl,
    entries: list[NetworkAclEntry],
    egress: bool,
    cidr: str,
    proto: int,
    reply: bool,
    denied: list[tuple[tuple[int, int], tuple[int, int] | None, NetworkAclEntry | None]],
) -> Call:
    """An allow entry numbered just below the first deny that decides: it wins."""
    first = min((e.rule_number for _, _, e in denied if e is not None), default=32767)
    used = {e.rule_number for e in entries}
    number = next((n for n in range(first - 1, 0, -1) if n not in used), max(first - 1, 1))
    params: dict[str, Any] = {
        "NetworkAclId": acl.acl_id,
        "RuleNumber": number,
        "Protocol": str(proto),
        "RuleAction": "allow",
        "Egress": egress,
        "Ipv6CidrBlock" if ":" in cidr else "CidrBlock": cidr,
    }
    ports = merge(p for _, p, _ in denied if p is not None)
    if proto in PORTED and ports:
        lo, hi = EPHEMERAL if reply else (ports[0][0], ports[-1][1])
        params["PortRange"] = {"From": lo, "To": hi}
    elif proto in (ICMP, ICMPV6):
        params["IcmpTypeCode"] = {"Type": -1, "Code": -1}
    return Call("CreateNetworkAclEntry", params)


# -- security groups ---------------------------------------------------------------------------


@dataclass
class _Groups:
    groups: list[SecurityGroup] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def _groups(snap: Snapshot, eni: NetworkInterface) -> _Groups:
    out = _Groups()
    for gid in eni.group_ids:
        g = (snap.security_groups or {}).get(gid)
        if g is None or (g.region, "security_groups") in snap.partial:
            out.missing.append(gid)
        else:
            out.groups.append(g)
    return out


def _sg_hop(snap: Snapshot, end: End, other: End, probe: Probe, *, egress: bool) -> Hop:
    """The security groups of `end` (an interface): egress to `other` or ingress from it."""
    assert end.interface is not None
    found = _groups(snap, end.interface)
    first = end.interface.group_ids[0] if end.interface.group_ids else None
    hop = partial(Hop, SG, first, FORWARD)
    ids = ", ".join(end.interface.group_ids)
    if not ids:
        return hop(
            DENY, None, f"{end.interface.eni_id} is in no security group: nothing is allowed."
        )
    if found.missing:
        return hop(
            UNKNOWN,
            None,
            f"{end.interface.eni_id}'s groups {', '.join(found.missing)} were not read.",
        )
    way, to = ("egress", "to") if egress else ("ingress", "from")
    rules = [
        r
        for g in found.groups
        for r in g.rules
        if r.egress == egress and r.allows(probe.proto, probe.port)
    ]
    rng = span(other.cidr)
    by_cidr = [r for r in rules if r.cidr and span(r.cidr).overlaps(rng)]
    # A group reference matches the other end's interface, in a VPC of the same region
    # (AWS does not resolve references across an inter-region peering).
    theirs = set(other.interface.group_ids) if other.interface is not None else set()
    by_group = [r for r in rules if r.referenced_group_id in theirs and other.region == end.region]
    covered = uncovered(rng, [span(r.cidr or "") for r in by_cidr]) == 0
    if by_group or covered:
        used = by_group or by_cidr
        return hop(
            ALLOW,
            "; ".join(_rule_text(r) for r in used),
            f"{ids} of {end.interface.eni_id} allow{'s' if len(found.groups) == 1 else ''} "
            f"{way} {probe.text} {to} {other.cidr}"
            + (f" (a member of {used[0].referenced_group_id})" if by_group else "")
            + ".",
        )
    if any(r.prefix_list_id for r in rules):
        pl = ", ".join(sorted({r.prefix_list_id for r in rules if r.prefix_list_id}))
        return hop(
            UNKNOWN,
            None,
            f"{ids}: only a rule from prefix list {pl} may allow it, and PeerGuard does "
            "not read prefix lists' entries.",
        )
    others = [r for r in rules if r.referenced_group_id]
    if others:
        named = ", ".join(sorted({r.referenced_group_id or "" for r in others}))
        but = (
            f"; rules allow it only from members of {named}, and {other.name} is not one"
            if not egress
            else f"; rules allow it only to members of {named}"
        )
    else:
        but = ""
    part = f" (only part of {other.cidr} is allowed)" if by_cidr else ""
    return hop(
        DENY,
        None,
        f"no {way} rule of {ids} on {end.interface.eni_id} allows {probe.text} {to} "
        f"{other.cidr}{part}{but}.",
        _sg_fix(end, other, probe, egress, found.groups),
    )


def _rule_text(r: SecurityGroupRule) -> str:
    way, to = ("egress", "to") if r.egress else ("ingress", "from")
    return f"{r.group_id} {way} rule {r.name}: {r.what} {to} {r.source}"


def _sg_fix(
    end: End, other: End, probe: Probe, egress: bool, groups: list[SecurityGroup]
) -> Call | None:
    if not groups:
        return None
    g = groups[0]
    perm: dict[str, Any] = {
        "IpProtocol": {TCP: "tcp", UDP: "udp", ICMP: "icmp"}.get(probe.proto, str(probe.proto))
    }
    if probe.ported and probe.port is not None:
        perm |= {"FromPort": probe.port, "ToPort": probe.port}
    elif probe.proto == ICMP:
        perm |= {"FromPort": -1, "ToPort": -1}
    peer_groups = other.interface.group_ids if other.interface is not None else ()
    if peer_groups and other.region == end.region:
        pair: dict[str, Any] = {"GroupId": peer_groups[0]}
        if other.owner_id and other.owner_id != g.owner_id:
            pair["UserId"] = other.owner_id
        perm["UserIdGroupPairs"] = [pair]
    elif ":" in other.cidr:
        perm["Ipv6Ranges"] = [{"CidrIpv6": other.cidr}]
    else:
        perm["IpRanges"] = [{"CidrIp": other.cidr}]
    action = "AuthorizeSecurityGroupEgress" if egress else "AuthorizeSecurityGroupIngress"
    return Call(action, {"GroupId": g.group_id, "IpPermissions": [perm]})


def path(snap: Snapshot, source: str, destination: str) -> PathResult:
    """Parse both ends, find them in the snapshot, trace. ValueError: bad input, or an end
    that is nowhere read."""
    src = parse_end(source, destination=False)
    dst = parse_end(destination, destination=True)
    assert dst.probe is not None
    return trace(snap, resolve(snap, src.host), resolve(snap, dst.host), dst.probe)
