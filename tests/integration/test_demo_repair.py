"""The demo's repair act: fix mode repairs every safe route finding and touches nothing else."""

from __future__ import annotations

from peerguard_lab.demo import run_scenarios
from peerguard_lab.demo.repair import render_repair, run_repair_demo
from peerguard_lab.emulator import Emulator


def test_fix_mode_repairs_the_seed_scenarios_and_changes_no_other_table() -> None:
    with Emulator() as emu:
        # Given the six broken seed scenarios
        _, before = run_scenarios(emu)
        blackholes = {f.resource_id for f in before.findings if f.check_id == "route.blackhole"}

        # When PeerGuard runs in fix mode until a pass changes nothing
        demo = run_repair_demo(emu.clients())

    # Then no automatically fixable route finding is left...
    assert demo.left_fixable == []
    remaining = {f.check_id for f in demo.after.findings}
    assert not remaining & {"route.missing_reciprocal", "route.blackhole"}
    # ...the problems that need a person are still reported, not "fixed"
    assert {"peering.cidr_overlap", "route.outside_peer_cidr", "peering.no_routes"} <= remaining
    # ...the route left to the deleted peering went first, unblocking its mirror route
    first = {o.action.route_table_id for o in demo.passes[0].applied}
    assert blackholes <= first and len(demo.passes) >= 2
    # ...and the only tables whose routes changed are the ones PeerGuard fixed
    assert demo.changed_tables == demo.fixed_tables and demo.ok
    report = "\n".join(render_repair(demo))
    assert (
        f"Route tables changed: {len(demo.fixed_tables)}, all of them by the fixes above: yes"
        in (report)
    )
