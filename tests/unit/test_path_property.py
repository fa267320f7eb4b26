"""Property: `peerguard path` and a naive brute-force evaluator agree on every query.

Random topologies: 2-4 VPCs (10.i.0.0/26), 1-2 subnets each (/29: eight addresses), a
main table and sometimes a second; peerings between random pairs in every state; random
routes (peer blocks, subnets, quarter subnets, supernets, the default route) to live,
dead, pending and vanished peerings, an internet gateway or a transit gateway, some
blackholes, plus, most of the time, the right routes for active peerings; default and
custom network ACLs with random entries; security groups with random CIDR and group
rules; interfaces in random groups. Sometimes one VPC belongs to an account PeerGuard
cannot read. Queries: subnets, interfaces, their addresses and bare addresses, to tcp
5432, tcp 22, udp 53 or icmp. Both evaluators give the same hops (component, id,
direction, verdict) in the same order, so the same verdict and the same blocking hop.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from peerguard.domain.reachability import path
from tests.unit import bruteforce_path as brute
from tests.unit.netbuilder import OTHER_ACCOUNT, OTHER_REGION, Net

STATES = ["active"] * 4 + [
    "pending-acceptance",
    "deleted",
    "rejected",
    "expired",
    "failed",
    "provisioning",
]
PORTS = [(5432, 5432), (22, 22), (53, 53), (1024, 65535), (32768, 65535), (0, 1023), (40000, 65535)]
PROBES = [("5432", 6, 5432), ("22", 6, 22), ("53/udp", 17, 53), ("icmp", 1, None)]


def _ports(draw: st.DrawFn, proto: str) -> tuple[int, int] | None:
    return draw(st.sampled_from(PORTS)) if proto in ("6", "17", "tcp", "udp") else None


def build(draw: st.DrawFn) -> tuple[Net, list[str], list[str]]:
    """The network; the hosts a query may start from; the hosts it may go to."""
    net = Net()
    n = draw(st.integers(2, 4))
    hidden = n - 1 if draw(st.integers(0, 2)) == 0 else None  # another account's VPC
    vpcs, subnets, blocks = [], [], []
    far = 1 if draw(st.integers(0, 3)) == 0 else None  # a readable VPC in another region
    if far is not None:
        net.readable.add((net.account, OTHER_REGION))
    for i in range(n):
        owner = OTHER_ACCOUNT if i == hidden else None
        region = OTHER_REGION if i == far and i != hidden else None
        vpcs.append(net.vpc(f"v{i}", f"10.{i}.0.0/26", owner=owner, region=region))
        blocks.append(f"10.{i}.0.0/26")
    tables: dict[str, list[str]] = {v: [net.main(v)] for v in vpcs}
    for i, v in enumerate(vpcs):
        if draw(st.booleans()):
            tables[v].append(net.table(v))
        for j in range(draw(st.integers(1, 2))):
            table = draw(st.sampled_from(tables[v]))
            explicit = table if table != net.main(v) else None
            subnets.append(net.subnet(v, f"10.{i}.0.{8 * j}/29", table=explicit))
    cidrs = [
        *blocks,
        *(net.subnets[s].cidr_block or "" for s in subnets),
        *(f"10.{i}.0.4/30" for i in range(n)),
        "10.0.0.0/8",
        "0.0.0.0/0",
    ]
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), min_size=1, max_size=len(pairs), unique=True))
    pcx_ids = []
    for a, b in chosen:
        pcx = net.peer(vpcs[a], vpcs[b], status=draw(st.sampled_from(STATES)))
        pcx_ids.append(pcx)
        if net.peerings[pcx].status == "active" and draw(st.integers(0, 9)) < 7:
            for t in tables[vpcs[a]] + tables[vpcs[b]]:
                net.route_to_peer(t, pcx)
    targets = [*pcx_ids, "pcx-gone", "igw-1", "tgw-1"]
    for v in vpcs:
        for t in tables[v]:
            have = {r.destination for r in net.tables[t].routes}
            for _ in range(draw(st.integers(0, 3))):
                dest = draw(st.sampled_from(cidrs))
                if dest in have:
                    continue
                have.add(dest)
                state = "blackhole" if draw(st.integers(0, 9)) == 0 else "active"
                net.route(t, dest, draw(st.sampled_from(targets)), state=state)

    def entries(k: int) -> list[tuple]:  # type: ignore[type-arg]
        out: list[tuple] = []  # type: ignore[type-arg]
        for way in ("in", "out"):
            numbers = draw(st.lists(st.sampled_from([50, 90, 100, 110, 200]), unique=True))
            for number in numbers[:k]:
                proto = draw(st.sampled_from(["-1", "6", "17", "1"]))
                entry = (number, way, draw(st.sampled_from(["allow", "deny"])),
                         draw(st.sampled_from(cidrs)), proto)  # fmt: skip
                ports = _ports(draw, proto)
                out.append((*entry, ports) if ports else entry)
        return out

    for v in vpcs:
        kind = draw(st.integers(0, 9))
        if kind < 5:
            net.acl(v, (100, "in", "allow", "0.0.0.0/0"), (100, "out", "allow", "0.0.0.0/0"),
                    default=True)  # fmt: skip
        elif kind < 7:  # the stateless trap: requests in, only some ports out
            ports = draw(st.sampled_from(PORTS))
            way = draw(st.sampled_from(["in", "out"]))
            other = "out" if way == "in" else "in"
            net.acl(v, (100, way, "allow", "0.0.0.0/0"),
                    (100, other, "allow", "0.0.0.0/0", "6", ports),
                    (110, other, "allow", "0.0.0.0/0", "1"), default=True)  # fmt: skip
        else:
            net.acl(v, *entries(4), default=True)
    own = [s for s in subnets if draw(st.integers(0, 3)) == 0]
    for s in own:
        net.acl(net.subnets[s].vpc_id, *entries(3), subnets=(s,))

    groups: dict[str, list[str]] = {}
    for i, v in enumerate(vpcs):
        groups[v] = [net.group(v, f"g{i}-{k}") for k in range(draw(st.integers(1, 2)))]
    every_group = [g for gs in groups.values() for g in gs]
    for g in every_group:
        if draw(st.integers(0, 9)) < 7:
            net.egress(g, "0.0.0.0/0")
        for egress in (False, True):
            for _ in range(draw(st.integers(0, 2))):
                proto = draw(st.sampled_from(["-1", "tcp", "udp", "icmp"]))
                ports = _ports(draw, proto) or ((-1, -1) if proto == "icmp" else None)
                source = draw(st.sampled_from([*cidrs, *every_group]))
                (net.egress if egress else net.ingress)(g, source, proto, ports)
    sources: list[str] = []
    dests: list[str] = []
    for s in subnets:
        sub = net.subnets[s]
        readable = sub.vpc_id != (vpcs[hidden] if hidden is not None else None)
        base = int((sub.cidr_block or "").split(".")[3].split("/")[0])
        prefix = ".".join((sub.cidr_block or "").split(".")[:3])
        hosts = [f"{prefix}.{base + 1 + k}" for k in range(draw(st.integers(0, 2)))]
        for k, ip in enumerate(hosts):
            if k == 0 or draw(st.booleans()):
                mine = draw(st.lists(st.sampled_from(groups[sub.vpc_id]), min_size=1, unique=True))
                eni = net.interface(s, ip, *mine)
                if readable:
                    sources.append(eni)
                    dests.append(eni)
        bare = f"{prefix}.{base + 6}"
        dests.append(bare)
        if readable:
            sources += [s, bare, *hosts]
            dests += [s, *hosts]
    return net, sources, dests


@given(st.data())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_path_agrees_with_a_brute_force_evaluator_on_every_query(data: st.DataObject) -> None:
    net, sources, dests = build(data.draw)
    snap = net.snapshot()
    for _ in range(4):
        src = data.draw(st.sampled_from(sources), label="from")
        dst = data.draw(st.sampled_from(dests), label="to")
        suffix, proto, port = data.draw(st.sampled_from(PROBES), label="probe")
        target = f"{dst}/icmp" if suffix == "icmp" else f"{dst}:{suffix}"
        try:
            want = brute.evaluate(snap, src, dst, proto, port)
        except LookupError:  # an address in no VPC read and no peer's blocks
            with pytest.raises(ValueError, match="in no subnet read"):
                path(snap, src, target)
            continue
        got = path(snap, src, target)
        assert [(h.component, h.id, h.direction, h.verdict) for h in got.hops] == want
        assert got.reachable == brute.reachable(want)
        b = got.blocked_by
        event(f"reachable={got.reachable}")
        event(f"blocked by {b.component} {b.direction}" if b else "not blocked")
        assert (None if b is None else (b.component, b.id, b.direction, "deny")) == brute.blocking(
            want
        )
