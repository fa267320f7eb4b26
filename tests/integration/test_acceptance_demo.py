"""The demo's auto-accept act: in the loopback emulator, across three accounts."""

from __future__ import annotations

from peerguard_lab.demo.acceptance import render_acceptance, run_acceptance_demo
from peerguard_lab.emulator import Emulator


def test_the_allowlisted_request_is_accepted_and_routed_the_unknown_one_alerted() -> None:
    with Emulator() as emu:
        demo = run_acceptance_demo(emu.clients())
        ec2 = emu.clients().client("ec2")
        found = ec2.describe_vpc_peering_connections(
            VpcPeeringConnectionIds=[demo.vendor_pcx, demo.unknown_pcx]
        )["VpcPeeringConnections"]
        tagged = demo.scenario.named["rt-analytics-app"]
        routes = ec2.describe_route_tables(RouteTableIds=[tagged])["RouteTables"][0]["Routes"]

    status = {p["VpcPeeringConnectionId"]: p["Status"]["Code"] for p in found}
    assert status == {demo.vendor_pcx: "active", demo.unknown_pcx: "pending-acceptance"}
    assert {(r["DestinationCidrBlock"], r.get("VpcPeeringConnectionId")) for r in routes} >= {
        ("10.30.0.0/16", demo.vendor_pcx)
    }
    assert demo.ok
    text = "\n".join(render_acceptance(demo))
    assert "allowlisted request accepted and routed, unknown one alerted: as expected" in text
    assert (
        f"aws ec2 accept-vpc-peering-connection --vpc-peering-connection-id {demo.vendor_pcx}"
        in text
    )
