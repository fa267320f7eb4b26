"""flowlogs.disabled, pure."""

from __future__ import annotations

import pytest

from peerguard.domain.checks import CheckContext
from tests.unit.netbuilder import OTHER_ACCOUNT, Net, run

STACK_GROUP = "/peerguard/stack/vpc-flow-logs"
ROLE = "arn:aws:iam::111111111111:role/flow-logs"


def pair(status: str = "active") -> tuple[Net, str, str, str]:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    db = net.vpc("db", "10.1.0.0/16")
    net.table(web)
    net.subnet(web, "10.0.1.0/24", table="rtb-web-1")
    net.subnet(web, "10.0.2.0/24")  # on the main table
    net.subnet(db, "10.1.1.0/24")
    pcx = net.peer(web, db, status=status)
    net.route_to_peer("rtb-web-1", pcx)  # only web's first subnet routes to db
    net.route_to_peer("rtb-db-main", pcx)
    net.read_flow_logs()
    return net, web, db, pcx


def test_a_peered_vpc_with_no_flow_log_is_medium_and_names_the_vpc_and_peering() -> None:
    net, web, db, pcx = pair()
    net.flow_log(db)

    (f,) = run("flowlogs.disabled", net.snapshot())

    assert (f.severity.value, f.resource_id, f.resource_type) == ("medium", web, "AWS::EC2::VPC")
    assert (f.vpc_id, f.peering_connection_id) == (web, pcx)
    assert "no flow log at all" in f.detail
    assert f.remediation is not None and f.remediation.action == "CreateFlowLogs"
    assert not f.remediation.automatic and "FixFlowLogs" in f.remediation.reason
    assert f.remediation.parameters == {
        "ResourceIds": [web],
        "ResourceType": "VPC",
        "TrafficType": "ALL",
    }


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"traffic": "REJECT"}, "records REJECT traffic only"),
        ({"traffic": "ACCEPT"}, "records ACCEPT traffic only"),
        ({"deliver": "FAILED"}, "delivers nothing (DeliverLogsStatus FAILED: Access error)"),
        ({"status": "DELETING"}, "is DELETING"),
    ],
)
def test_a_flow_log_that_does_not_record_everything_does_not_count(
    kwargs: dict[str, str], says: str
) -> None:
    net, web, db, _ = pair()
    net.flow_log(db)
    fl = net.flow_log(web, **kwargs)

    (f,) = run("flowlogs.disabled", net.snapshot())

    assert f.resource_id == web and f"{fl} {says}" in f.detail


def test_a_vpc_wide_all_log_or_one_on_every_subnet_routing_to_the_peer_counts() -> None:
    net, _, db, _ = pair()
    net.flow_log(db)
    net.flow_log("subnet-web-1")  # the only subnet of web that routes to db
    assert run("flowlogs.disabled", net.snapshot()) == []


def test_subnet_logs_that_miss_a_routing_subnet_do_not_count() -> None:
    net, _, db, pcx = pair()
    net.flow_log(db)
    net.flow_log("subnet-web-2")  # on the main table, which does not route to db
    net.route_to_peer("rtb-web-main", pcx)  # ... now it does, and subnet-web-1 has no log
    (f,) = run("flowlogs.disabled", net.snapshot())
    assert "without an ALL log: subnet-web-1" in f.detail


@pytest.mark.parametrize("status", ["pending-acceptance", "deleted", "failed"])
def test_only_vpcs_with_an_active_peering_need_one(status: str) -> None:
    net, _, _, _ = pair(status)
    assert run("flowlogs.disabled", net.snapshot()) == []


def test_flow_logs_not_read_or_denied_are_not_missing() -> None:
    net, _, _, _ = pair()
    net.partial.add(("us-east-1", "flow_logs"))
    assert run("flowlogs.disabled", net.snapshot()) == []
    net, _, _, _ = pair()
    net.flow_logs = None  # e.g. a snapshot from route recordings
    assert run("flowlogs.disabled", net.snapshot()) == []


def test_another_accounts_vpc_read_through_the_member_role_is_judged_as_theirs() -> None:
    # The far side of a cross-account peering, read through the member role: its missing
    # flow log is reported, as that account's (the executor never creates it: another account)
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    theirs = net.vpc("theirs", "10.1.0.0/16", owner=OTHER_ACCOUNT)
    net.readable.add((OTHER_ACCOUNT, "us-east-1"))
    net.peer_routed(web, theirs)
    net.flow_log(web)
    [f] = run("flowlogs.disabled", net.snapshot())
    assert (f.resource_id, f.account_id) == (theirs, OTHER_ACCOUNT)


def test_another_accounts_vpc_that_was_not_read_is_not_judged() -> None:
    net = Net()
    web = net.vpc("web", "10.0.0.0/16")
    theirs = net.vpc("theirs", "10.1.0.0/16", owner=OTHER_ACCOUNT)
    net.peer_routed(web, theirs)
    net.flow_log(web)
    assert run("flowlogs.disabled", net.snapshot()) == []


def test_with_the_stacks_log_group_the_call_is_complete_and_automatic() -> None:
    net, web, db, _ = pair()
    net.flow_log(db)
    ctx = CheckContext(flow_log_group=STACK_GROUP, flow_log_role_arn=ROLE)

    (f,) = run("flowlogs.disabled", net.snapshot(), ctx)

    assert f.remediation is not None and f.remediation.automatic
    assert f.remediation.parameters == {
        "ResourceIds": [web],
        "ResourceType": "VPC",
        "TrafficType": "ALL",
        "LogDestinationType": "cloud-watch-logs",
        "LogGroupName": STACK_GROUP,
        "DeliverLogsPermissionArn": ROLE,
    }
