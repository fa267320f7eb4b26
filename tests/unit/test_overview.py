"""`peerguard peerings`: each side summarised from the snapshot and the audit's findings."""

from __future__ import annotations

from peerguard.domain.checks import CheckContext, run_checks
from peerguard.domain.overview import summarise
from tests.unit.netbuilder import OTHER_ACCOUNT, Net


def test_each_side_says_routes_exposure_acls_dns_flow_logs_and_findings() -> None:
    n = Net()
    app, db = n.vpc("app", "10.0.0.0/16"), n.vpc("db", "10.1.0.0/16")
    n.subnet(app, "10.0.1.0/24")
    n.subnet(app, "10.0.2.0/24", table=n.table(app))  # its own table, no peer route
    n.subnet(db, "10.1.1.0/24")
    pcx = n.peer(app, db, dns=(True, False))
    n.route_to_peer(n.main(app), pcx)
    n.route_to_peer(n.main(db), pcx)
    n.allow_all_acls()
    n.acl(db, (90, "in", "deny", "10.0.0.0/16"), (100, "in", "allow", "0.0.0.0/0"),
          (100, "out", "allow", "0.0.0.0/0"), subnets=("subnet-db-1",))  # fmt: skip
    web, pg = n.group(app, "web"), n.group(db, "pg")
    n.ingress(web, "10.1.1.0/24", "tcp", (443, 443))
    n.ingress(pg, "10.0.0.0/16")  # all traffic from the whole peer
    n.flow_log(app)
    snap = n.snapshot()
    findings = run_checks(snap, CheckContext())
    (view,) = summarise(snap, findings)
    req, acc = view.requester, view.accepter
    assert view.peering_connection_id == pcx and view.status == "active"
    assert (req.routes, acc.routes) == ("1 of 2 subnets", "all subnets")
    assert (req.sg_exposure, acc.sg_exposure) == ("scoped ports", "all traffic")
    assert (req.nacl, acc.nacl) == ("allows all", "blocks all")
    assert (req.dns_resolution_from_remote, acc.dns_resolution_from_remote) == (True, False)
    assert (req.flow_logs, acc.flow_logs) == ("all traffic", "none")
    mine = [f for f in findings if f.peering_connection_id == pcx]
    assert sum(view.findings.values()) == len(mine) > 0
    assert view.findings["high"] == sum(1 for f in mine if f.severity.value == "high")
    assert view.to_json()["accepter"]["cidr_blocks"] == ["10.1.0.0/16"]


def test_a_side_that_cannot_be_read_is_unknown() -> None:
    n = Net()
    app, other = n.vpc("app", "10.0.0.0/16"), n.vpc("other", "10.1.0.0/16", owner=OTHER_ACCOUNT)
    n.subnet(app, "10.0.1.0/24")
    n.peer_routed(app, other)
    n.allow_all_acls()
    (view,) = summarise(n.snapshot(), [])
    acc = view.accepter
    assert acc.readable is False and acc.account_id == OTHER_ACCOUNT
    assert {acc.routes, acc.sg_exposure, acc.nacl, acc.flow_logs} == {"unknown"}
    assert acc.cidr_blocks == ("10.1.0.0/16",)  # from the peering itself
    assert view.requester.routes == "all subnets"
