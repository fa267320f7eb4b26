"""`peerguard path --format json` and `peerguard peerings` against moto, through the CLI
with an injected session, on a network built with boto3 that the code has never seen:

    app 10.0.0.0/16 --active-- db 10.1.0.0/16 --active-- far 10.3.0.0/16
        |  \\--active-- cache 10.2.0.0/16   (cache's ACL: redis in, redis out only)
        |  \\--active-- logs 10.7.0.0/16    (logs routes nothing back)
        |  \\--active-- quiet 10.8.0.0/16   (app routes nothing to it)
        |  \\--pending-acceptance-- new 10.4.0.0/16
        |  \\--rejected-- spurned 10.5.0.0/16
        |  \\--deleted-- old 10.6.0.0/16
        \\--active, cross-region-- west 10.9.0.0/16 (us-west-2)

Every peering in every state moto reaches (pending-acceptance, active, rejected, deleted)
is routed from app. Security groups: db lets postgres in from app's group (a reference)
and ssh from nobody; cache lets redis in from app's subnet (a CIDR). App runs one instance
in its group and one interface in a batch group.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from peerguard import cli
from peerguard.aws.clients import Clients
from peerguard.usecases.path import trace_path
from tests.integration import awsnet

REGION, WEST = "us-east-1", "us-west-2"


@dataclass
class World:
    vpc: dict[str, awsnet.Vpc] = field(default_factory=dict)
    subnet: dict[str, str] = field(default_factory=dict)
    pcx: dict[str, str] = field(default_factory=dict)
    sg: dict[str, str] = field(default_factory=dict)
    eni: dict[str, str] = field(default_factory=dict)
    instance: str = ""
    acl: str = ""


def group(ec2: Any, w: World, name: str, vpc: str) -> str:
    w.sg[name] = ec2.create_security_group(
        GroupName=name, Description=name, VpcId=w.vpc[vpc].vpc_id
    )["GroupId"]
    return w.sg[name]


def interface(ec2: Any, w: World, name: str, vpc: str, ip: str, *groups: str) -> str:
    eni = ec2.create_network_interface(
        SubnetId=w.subnet[vpc], PrivateIpAddress=ip, Groups=list(groups)
    )["NetworkInterface"]["NetworkInterfaceId"]
    w.eni[name] = eni
    return str(eni)


def build(ec2: Any) -> World:
    w = World()
    west = boto3.client("ec2", region_name=WEST)
    names = {"app": 0, "db": 1, "cache": 2, "far": 3, "new": 4, "spurned": 5, "old": 6}
    names |= {"logs": 7, "quiet": 8}
    for name, i in names.items():
        w.vpc[name] = awsnet.vpc(ec2, f"10.{i}.0.0/16")
        ec2.create_tags(Resources=[w.vpc[name].vpc_id], Tags=[{"Key": "Name", "Value": name}])
        w.subnet[name] = awsnet.subnet(ec2, w.vpc[name], f"10.{i}.1.0/24")
    w.vpc["west"] = awsnet.vpc(west, "10.9.0.0/16")
    w.subnet["west"] = awsnet.subnet(west, w.vpc["west"], "10.9.1.0/24")
    app = w.vpc["app"]
    for peer in ("db", "cache", "logs", "quiet"):
        w.pcx[peer] = awsnet.peer(ec2, app, w.vpc[peer])
        if peer != "quiet":
            awsnet.route(ec2, app.main_table, w.vpc[peer].cidr, w.pcx[peer])
        if peer not in ("logs", "quiet"):
            awsnet.route(ec2, w.vpc[peer].main_table, app.cidr, w.pcx[peer])
    w.pcx["far"] = awsnet.peer(ec2, w.vpc["db"], w.vpc["far"])
    awsnet.route(ec2, app.main_table, "10.3.0.0/16", w.pcx["db"])  # "through db"
    awsnet.route(ec2, w.vpc["far"].main_table, app.cidr, w.pcx["far"])
    w.pcx["west"] = awsnet.peer(ec2, app, w.vpc["west"], west)
    awsnet.route(ec2, app.main_table, "10.9.0.0/16", w.pcx["west"])
    for peer, then in (("new", None), ("spurned", "reject"), ("old", "delete")):
        w.pcx[peer] = ec2.create_vpc_peering_connection(
            VpcId=app.vpc_id, PeerVpcId=w.vpc[peer].vpc_id
        )["VpcPeeringConnection"]["VpcPeeringConnectionId"]
        awsnet.route(ec2, app.main_table, w.vpc[peer].cidr, w.pcx[peer])
        if then:
            getattr(ec2, f"{then}_vpc_peering_connection")(VpcPeeringConnectionId=w.pcx[peer])

    sg_app, sg_batch = group(ec2, w, "app", "app"), group(ec2, w, "batch", "app")
    sg_db, sg_cache = group(ec2, w, "db", "db"), group(ec2, w, "cache", "cache")
    ec2.authorize_security_group_ingress(
        GroupId=sg_db,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                        "UserIdGroupPairs": [{"GroupId": sg_app}]}],
    )  # fmt: skip
    ec2.authorize_security_group_ingress(
        GroupId=sg_cache,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379,
                        "IpRanges": [{"CidrIp": "10.0.1.0/24"}]}],
    )  # fmt: skip
    w.instance = ec2.run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=w.subnet["app"],
        PrivateIpAddress="10.0.1.10", SecurityGroupIds=[sg_app],
    )["Instances"][0]["InstanceId"]  # fmt: skip
    interface(ec2, w, "batch", "app", "10.0.1.11", sg_batch)
    interface(ec2, w, "db", "db", "10.1.1.20", sg_db)
    interface(ec2, w, "cache", "cache", "10.2.1.30", sg_cache)

    # cache's subnet: redis in from app, and only redis out (replies to app are dropped).
    w.acl = ec2.create_network_acl(VpcId=w.vpc["cache"].vpc_id)["NetworkAcl"]["NetworkAclId"]
    for egress in (False, True):
        ec2.create_network_acl_entry(
            NetworkAclId=w.acl, RuleNumber=100, Protocol="6", RuleAction="allow",
            Egress=egress, CidrBlock="10.0.0.0/16", PortRange={"From": 6379, "To": 6379},
        )  # fmt: skip
    (assoc,) = [
        a["NetworkAclAssociationId"]
        for acl in ec2.describe_network_acls()["NetworkAcls"]
        for a in acl["Associations"]
        if a["SubnetId"] == w.subnet["cache"]
    ]
    ec2.replace_network_acl_association(AssociationId=assoc, NetworkAclId=w.acl)
    return w


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args), session=boto3.Session(region_name=REGION))
    out, err = capsys.readouterr()
    return code, out, err


def path_json(
    capsys: pytest.CaptureFixture[str], src: str, dst: str, *regions: str
) -> tuple[int, dict[str, Any]]:
    region_args = [a for r in (regions or (REGION,)) for a in ("--region", r)]
    code, out, err = run(
        capsys, "path", "--from", src, "--to", dst, *region_args, "--format", "json"
    )
    assert code != cli.EXIT_ERROR, err
    return code, json.loads(out)


def blocked(body: dict[str, Any]) -> tuple[str, str, str] | None:
    b = body["blocked_by"]
    return None if b is None else (b["component"], b["id"], b["direction"])


def test_path_gives_the_right_verdict_and_blocking_hop(
    ec2: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    w = build(ec2)
    db_acl = ec2.describe_network_acls(
        Filters=[{"Name": "vpc-id", "Values": [w.vpc["db"].vpc_id]}]
    )["NetworkAcls"][0]["NetworkAclId"]
    cases = [
        # (from, to, reachable, blocking hop)
        (w.instance, "10.1.1.20:5432", True, None),  # by group reference
        ("10.0.1.10", w.eni["db"] + ":5432", True, None),
        (w.instance, "10.1.1.20:22", False, ("security-group", w.sg["db"], "forward")),
        (w.eni["batch"], "10.1.1.20:5432", False, ("security-group", w.sg["db"], "forward")),
        (w.subnet["app"], "10.2.1.30:6379", False,
         ("network-acl", w.acl, "return")),  # by CIDR; the reply is dropped
        (w.instance, "10.3.1.5:443", False, ("peering-connection", w.pcx["db"], "forward")),
        (w.instance, "10.4.1.5:443", False, ("peering-connection", w.pcx["new"], "forward")),
        (w.instance, "10.5.1.5:443", False, ("peering-connection", w.pcx["spurned"], "forward")),
        (w.instance, "10.6.1.5:443", False, ("peering-connection", w.pcx["old"], "forward")),
        (w.instance, "10.7.1.5:443", False,
         ("route-table", w.vpc["logs"].main_table, "return")),
        (w.instance, "10.8.1.5:443", False, ("route-table", w.vpc["app"].main_table, "forward")),
        (w.subnet["db"], "10.0.1.10/icmp", False,  # app's group lets nothing in
         ("security-group", w.sg["app"], "forward")),
    ]  # fmt: skip
    for src, dst, reachable, blocking in cases:
        code, body = path_json(capsys, src, dst)
        assert (body["reachable"], blocked(body)) == (reachable, blocking), (src, dst, body)
        assert code == (cli.EXIT_OK if reachable else cli.EXIT_FINDINGS)
        for hop in body["hops"]:
            assert set(hop) == {"component", "id", "direction", "verdict", "matched", "explanation"}
            assert hop["verdict"] in ("allow", "deny", "unknown") and hop["explanation"]
    _, body = path_json(capsys, w.instance, "10.1.1.20:5432")
    assert [h["component"] for h in body["hops"]] == [
        "security-group", "network-acl", "route-table", "peering-connection", "network-acl",
        "security-group", "network-acl", "route-table", "network-acl",
    ]  # fmt: skip
    assert body["hops"][4]["id"] == db_acl


def test_a_region_not_read_is_unknown_and_reading_it_answers(
    ec2: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    w = build(ec2)
    code, body = path_json(capsys, w.instance, "10.9.1.5:443")
    assert body["reachable"] is None and body["blocked_by"] is None and code == cli.EXIT_UNKNOWN
    assert any("us-west-2" in h["explanation"] for h in body["hops"] if h["verdict"] == "unknown")
    # with us-west-2 read: west routes nothing back
    _, body = path_json(capsys, w.instance, "10.9.1.5:443", REGION, WEST)
    assert blocked(body) == ("route-table", w.vpc["west"].main_table, "return")


def test_the_table_names_the_fix(ec2: Any, capsys: pytest.CaptureFixture[str]) -> None:
    w = build(ec2)
    code, out, _ = run(capsys, "path", "--from", w.instance, "--to", "10.7.1.5:443")
    assert code == cli.EXIT_FINDINGS
    flat = " ".join(out.split())
    assert (
        f"fix: aws ec2 create-route --route-table-id {w.vpc['logs'].main_table} "
        f"--destination-cidr-block 10.0.0.0/16 --vpc-peering-connection-id {w.pcx['logs']}"
    ) in flat
    assert f"{w.vpc['app'].vpc_id} (app, 10.0.0.0/16)" in flat  # Name tags next to ids


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--from", "10.0.1.10", "--to", "10.1.1.20"], "name the port"),
        (["--from", "10.0.1.10", "--to", "10.1.1.20:5432/gre"], "bad protocol"),
        (["--from", "subnet-0000", "--to", "10.1.1.20:5432"], "was not found"),
        (["--from", "10.0.1.10"], "required: --to"),
    ],
)
def test_bad_path_input_is_one_line_and_exit_2(
    ec2: Any, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    build(ec2)
    code, out, err = run(capsys, "path", *args)
    assert code == cli.EXIT_ERROR and out == ""
    assert len(err.strip().splitlines()) == 1 and says in err, err


def test_peerings_lists_every_peering_with_both_sides(
    ec2: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    w = build(ec2)
    code, out, err = run(capsys, "peerings", "--format", "json")
    assert code == cli.EXIT_OK, err
    views = {v["peering_connection_id"]: v for v in json.loads(out)}
    assert set(views) == set(w.pcx.values())
    status = {name: views[pcx]["status"] for name, pcx in w.pcx.items()}
    assert status == {
        "db": "active", "cache": "active", "logs": "active", "quiet": "active",
        "far": "active", "west": "active", "new": "pending-acceptance",
        "spurned": "rejected", "old": "deleted",
    }  # fmt: skip
    db = views[w.pcx["db"]]
    req, acc = db["requester"], db["accepter"]
    assert (req["name"], req["cidr_blocks"], req["region"]) == ("app", ["10.0.0.0/16"], REGION)
    assert (acc["name"], acc["routes"], acc["sg_exposure"]) == ("db", "all subnets", "scoped ports")
    assert views[w.pcx["quiet"]]["requester"]["routes"] == "none"
    assert views[w.pcx["new"]]["requester"]["routes"] == (
        "all subnets (carrying nothing: pending-acceptance)"
    )
    assert views[w.pcx["logs"]]["accepter"]["routes"] == "none"
    assert views[w.pcx["cache"]]["accepter"]["nacl"] == "restricted"
    assert views[w.pcx["west"]]["accepter"]["readable"] is False
    assert views[w.pcx["west"]]["accepter"]["routes"] == "unknown"
    assert views[w.pcx["logs"]]["findings"]["high"] >= 1  # route.missing_reciprocal
    code, out, _ = run(capsys, "peerings")
    assert out.splitlines()[0] == "9 peerings"
    assert all(pcx in out for pcx in w.pcx.values())


def test_a_query_reads_around_its_ends_not_the_whole_account(ec2: Any, clients: Clients) -> None:
    w = build(ec2)

    def calls() -> tuple[int, set[str]]:
        before = clients.total_calls
        result, snap = trace_path(clients, [REGION], w.instance, "10.1.1.20:5432")
        assert result.reachable is True
        return clients.total_calls - before, set(snap.vpcs)

    calls()  # the account id, asked once
    first, read = calls()
    # app, db, and the VPCs peered with either (what a transitive attempt is judged by)
    assert read == {w.vpc[n].vpc_id for n in ("app", "db", "cache", "far", "logs", "quiet",
                                                "new", "spurned", "old")}  # fmt: skip
    others = set()
    for i in range(20, 30):  # ten more peered VPCs elsewhere in the account
        a, b, _ = awsnet.peered_pair(ec2, f"10.{i}.0.0/16", f"10.{i + 100}.0.0/16")
        others |= {a.vpc_id, b.vpc_id}
    again, read_again = calls()
    assert again == first and read_again == read and not read_again & others
