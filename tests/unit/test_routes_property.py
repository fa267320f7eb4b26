"""Property: symmetric routing has no route finding; removing one return route gives one.

Random topologies: 2-5 VPCs (10.i.0.0/16, some with a secondary 100.(64+i).0.0/16),
1-3 subnets each (in either block), each subnet on the main table or its own table, and
a random non-empty set of peerings between pairs. Routing is symmetric: every table used
by a subnet of a peered VPC routes each peer VPC block through that peering.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peerguard.domain.checks import CheckContext, run_checks
from peerguard.domain.model import within
from tests.unit.netbuilder import Net, run


@dataclass(frozen=True)
class Topology:
    secondary: tuple[bool, ...]  # per VPC
    subnets: tuple[tuple[tuple[bool, bool], ...], ...]  # per VPC: (in secondary, own table)
    peerings: tuple[tuple[int, int], ...]


@st.composite
def topologies(draw: st.DrawFn) -> Topology:
    n = draw(st.integers(2, 5))
    secondary = tuple(draw(st.booleans()) for _ in range(n))
    subnets = tuple(
        tuple(
            (secondary[v] and draw(st.booleans()), draw(st.booleans()))
            for _ in range(draw(st.integers(1, 3)))
        )
        for v in range(n)
    )
    pairs = list(combinations(range(n), 2))
    chosen = draw(st.lists(st.sampled_from(pairs), min_size=1, unique=True))
    return Topology(secondary, subnets, tuple(sorted(chosen)))


def build(t: Topology) -> tuple[Net, dict[str, list[str]]]:
    """The network, and for each VPC id the tables its subnets use."""
    net = Net()
    used: dict[str, list[str]] = {}
    vpcs = []
    for i, has_secondary in enumerate(t.secondary):
        cidrs = [f"10.{i}.0.0/16"] + ([f"100.{64 + i}.0.0/16"] if has_secondary else [])
        vpc = net.vpc(f"v{i}", *cidrs)
        vpcs.append(vpc)
        for j, (in_secondary, own_table) in enumerate(t.subnets[i], start=1):
            table = net.table(vpc) if own_table else net.main(vpc)
            block = f"100.{64 + i}" if in_secondary else f"10.{i}"
            net.subnet(vpc, f"{block}.{j}.0/24", table=table if own_table else None)
            used.setdefault(vpc, [])
            if table not in used[vpc]:
                used[vpc].append(table)
    for a, b in t.peerings:
        pcx = net.peer(vpcs[a], vpcs[b])
        for vpc in (vpcs[a], vpcs[b]):
            for table in used[vpc]:
                net.route_to_peer(table, pcx)
    return net, used


def removable(net: Net, used: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """Peering routes (table, destination, pcx) whose removal must give exactly one finding.

    Removing block D (of peer VPC Y) from table T of VPC X breaks replies only if
    - T is used by at least one subnet of X (a table nobody uses carries no traffic), and
    - Y has a subnet inside D: Y's subnets route all of X through the peering (symmetric),
      so that subnet sends to T's subnets and its replies now find no route back.
    The removal affects nothing else: T's subnets no longer send to D, so no other table
    owes them a reply, and every other table still routes symmetrically. One finding, on T,
    for block D.
    """
    snap = net.snapshot()
    out = []
    for vpc, tables in used.items():
        for table in tables:
            for r in snap.route_tables[table].routes:
                pcx = snap.peerings.get(r.target)
                if pcx is None:
                    continue
                peer = pcx.other(vpc).vpc_id
                if any(
                    s.cidr_block and within(s.cidr_block, r.destination)
                    for s in snap.subnets_in(peer)
                ):
                    out.append((table, r.destination, pcx.pcx_id))
    return out


PROPERTY = settings(
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(topologies())
def test_symmetric_routing_has_no_route_finding(t: Topology) -> None:
    net, _ = build(t)
    found = run_checks(net.snapshot(), CheckContext())
    assert [f for f in found if f.check_id.startswith("route.")] == []


@PROPERTY
@given(topologies(), st.data())
def test_removing_one_return_route_gives_exactly_one_finding_on_that_table(
    t: Topology, data: st.DataObject
) -> None:
    # Given a symmetric network and one peering route whose absence breaks replies
    net, used = build(t)
    candidates = removable(net, used)
    assert candidates, "every peering has subnets on both sides, so some route qualifies"
    table, destination, pcx = data.draw(st.sampled_from(candidates))

    # When that route is removed
    net.unroute(table, destination)
    found = run_checks(net.snapshot(), CheckContext())

    # Then exactly one route finding names that table, block and peering
    route_findings = [f for f in found if f.check_id.startswith("route.")]
    assert [(f.check_id, f.resource_id, f.peering_connection_id) for f in route_findings] == [
        ("route.missing_reciprocal", table, pcx)
    ]
    [f] = route_findings
    assert f.remediation is not None and f.remediation.automatic
    assert f.remediation.parameters == {
        "RouteTableId": table,
        "DestinationCidrBlock": destination,
        "VpcPeeringConnectionId": pcx,
    }
    assert run("route.missing_reciprocal", net.snapshot()) == route_findings
