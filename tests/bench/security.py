"""Security-group scale: PeerGuard's full audit beside a bare script making the same describe
calls, API calls as groups grow, and the change auditor on one AuthorizeSecurityGroupIngress.

    python -m tests.bench.security [--size 200] [--groups 9] [--rules 10] [--repeats 5]
                                   [--change-sizes 10,200] [--output FILE]

The account is tests/bench/ring.py's ring of `--size` peerings (its planted route defects
included), and in each VPC `--groups` security groups besides the default one, each with
`--rules` ingress rules (plus moto's default egress rule): at 200 peerings, 9 groups and 10
rules, 2,000 groups and about 20,000 rules. Every VPC has a network ACL (the default, allow
all) and an ALL flow log (the ring's). Planted, one of each per 10 peerings: ssh open to
the internet, all traffic from a whole peer VPC, a 10.0.0.0/8 supernet, a VPC without a
flow log, and an ACL denying a peer. Every rule not planted is clean (https from anywhere,
single ports from a peer subnet, postgres from the VPC itself): PeerGuard must find each
planted defect and nothing else.

Wall times as in tests/bench/run.py: medians of `--repeats`, the two tools interleaved in
alternating order after a garbage collection, the server's state frozen out of the tools'
collections, and the ratio of the runs made side by side. API calls are counted on the
loopback moto server for both alike. The markdown is printed and written to
bench-results/security.md; exit 1 when a planted defect is missed or anything else found.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from peerguard.aws.clients import Clients
from peerguard.demo.emulator import REGION, Emulator
from peerguard.domain.checks import CheckContext, resolve
from peerguard.observability import logger, metrics
from peerguard.settings import ChangeAuditorSettings
from peerguard.usecases.change import on_change
from peerguard.usecases.pipeline import Runtime, audit
from tests.bench.counting import RequestCounter, WsgiApp
from tests.bench.ring import Ring, build_ring, cidr
from tests.bench.run import BARE, Row, Run
from tests.integration.securenet import Expected, found

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results" / "security.md"
SAMPLE = ROOT / "events" / "AuthorizeSecurityGroupIngress.json"
DESCRIBES = (
    ("describe_vpcs", "Vpcs", {}),
    ("describe_subnets", "Subnets", {}),
    ("describe_route_tables", "RouteTables", {}),
    ("describe_vpc_peering_connections", "VpcPeeringConnections", {}),
    ("describe_network_acls", "NetworkAcls", {}),
    ("describe_flow_logs", "FlowLogs", {}),
    ("describe_security_groups", "SecurityGroups", {}),
    ("describe_security_group_rules", "SecurityGroupRules", {}),
)


@dataclass
class SecurityRing:
    ring: Ring
    groups: list[list[str]] = field(default_factory=list)  # per VPC, the groups made
    rules: int = 0  # every rule of the account (the default groups' included)
    expected: set[Expected] = field(default_factory=set)


def _ingress(ec2: Any, group: str, perms: list[dict[str, Any]]) -> list[str]:
    resp = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=perms)
    return [r["SecurityGroupRuleId"] for r in resp.get("SecurityGroupRules", [])]


def _tcp(port: int, source: str) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": source}]}


def build(ec2: Any, size: int, groups: int, rules: int) -> SecurityRing:
    ring = build_ring(ec2, size)
    s = SecurityRing(ring)
    for i, vpc in enumerate(ring.vpcs):
        nxt = (i + 1) % size
        made = []
        for g in range(groups):
            gid = ec2.create_security_group(GroupName=f"v{i}-g{g}", Description="bench", VpcId=vpc)[
                "GroupId"
            ]
            made.append(gid)
            perms = [_tcp(443, "0.0.0.0/0")]
            perms += [_tcp(1000 + 10 * g + k, f"10.{nxt}.1.0/24") for k in range(rules - 2)]
            perms.append(_tcp(5432, cidr(i)))
            planted: str | None = None
            if i % 10 == 2 and g == 0:
                perms[0], planted = _tcp(22, "0.0.0.0/0"), "sg.open_to_world"
            elif i % 10 == 4 and g == 1 % groups:
                perms[-1] = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": cidr(nxt)}]}
                planted = "sg.peer_all_traffic"
            elif i % 10 == 8 and g == 2 % groups:
                perms[-1], planted = _tcp(5432, "10.0.0.0/8"), "sg.peer_supernet"
            ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms[:rules])
            if planted:
                index = 0 if planted == "sg.open_to_world" else min(rules, len(perms)) - 1
                rule = _rule_of(ec2, gid, perms[index])
                s.expected.add((planted, gid, rule))
        s.groups.append(made)
        if i % 10 == 5:
            ec2.delete_flow_logs(FlowLogIds=[ring.flow_logs[i]])
            s.expected.add(("flowlogs.disabled", vpc, ""))
        if i % 10 == 7:
            acl = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])[
                "NetworkAcls"
            ][0]["NetworkAclId"]
            ec2.create_network_acl_entry(
                NetworkAclId=acl,
                RuleNumber=90,
                Protocol="-1",
                RuleAction="deny",
                Egress=False,
                CidrBlock=cidr(nxt),
            )
            s.expected.add(("nacl.blocks_peer", acl, "inbound all"))
    s.rules = len(ec2.describe_security_group_rules()["SecurityGroupRules"])
    return s


def _rule_of(ec2: Any, group: str, perm: dict[str, Any]) -> str:
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])
    want = (perm["IpProtocol"], perm.get("FromPort", -1), perm["IpRanges"][0]["CidrIp"])
    (rid,) = [
        r["SecurityGroupRuleId"]
        for r in rules["SecurityGroupRules"]
        if not r["IsEgress"] and (r["IpProtocol"], r.get("FromPort", -1), r.get("CidrIpv4")) == want
    ]
    return str(rid)


# -- the two tools ---------------------------------------------------------------------


def peerguard(emu: Emulator) -> tuple[Run, set[Expected]]:
    started, cpu = time.perf_counter(), time.thread_time()
    result = audit(emu.clients(), [REGION], CheckContext(), resolve(None))
    seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
    got = found(result.findings)
    run = Run(seconds, Counter(), None, len(result.findings), f"{result.api_calls} calls", cpu)
    return run, got


def bare(emu: Emulator) -> Run:
    """The describe calls PeerGuard's full audit makes, paginated, and nothing else."""
    started, cpu = time.perf_counter(), time.thread_time()
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    session.client("sts", endpoint_url=emu.url).get_caller_identity()
    ec2 = session.client("ec2", endpoint_url=emu.url)
    items = 0
    for op, key, kwargs in DESCRIBES:
        for page in ec2.get_paginator(op).paginate(**kwargs):
            items += len(page[key])
    seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
    return Run(seconds, Counter(), None, 0, f"{items} items read", cpu)


def measure(emu: Emulator, counter: RequestCounter, repeats: int) -> tuple[Row, Row, set[Expected]]:
    pg_row, bare_row = Row(0, "PeerGuard"), Row(0, BARE)
    peerguard(emu)  # warm-up: imports, the server's caches
    bare(emu)
    gc.collect()
    gc.freeze()
    got: set[Expected] = set()
    try:
        for repeat in range(repeats):
            order = [("pg", peerguard), ("bare", bare)]
            for name, tool in order if repeat % 2 == 0 else reversed(order):
                gc.collect()
                before = counter.snapshot()
                if name == "pg":
                    run, got = tool(emu)  # type: ignore[misc]
                    run.calls = counter.since(before)
                    pg_row.runs.append(run)
                else:
                    run = tool(emu)  # type: ignore[assignment]
                    run.calls = counter.since(before)
                    bare_row.runs.append(run)
    finally:
        gc.unfreeze()
    return pg_row, bare_row, got


# -- one change-auditor invocation ------------------------------------------------------------


def authorize_event(s: SecurityRing) -> dict[str, Any]:
    """CloudTrail's record of an ingress rule added to the first group of VPC 1."""
    event = json.loads(SAMPLE.read_text())
    detail = event["detail"]
    group = s.groups[1][0]
    detail["requestParameters"]["groupId"] = group
    for item in detail["responseElements"]["securityGroupRuleSet"]["items"]:
        item["groupId"] = group
    return event


def change_calls(
    emu: Emulator, counter: RequestCounter, s: SecurityRing
) -> tuple[Counter[str], dict[str, Any], float]:
    logger.setLevel("ERROR")
    rt = Runtime(
        Clients(emu.session(), endpoint_url=emu.url, default_region=REGION),
        ChangeAuditorSettings(),
    )
    event = authorize_event(s)
    before = counter.snapshot()
    started = time.perf_counter()
    result = on_change(rt, copy.deepcopy(event))
    seconds = time.perf_counter() - started
    metrics.clear_metrics()
    return counter.since(before), result, seconds


# -- reporting --------------------------------------------------------------------------------


def _calls(c: Counter[str]) -> str:
    return ", ".join(f"{k.split(':')[1]} {n}" for k, n in sorted(c.items()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.security", description=__doc__)
    p.add_argument("--size", type=int, default=200, help="ring size (peerings)")
    p.add_argument("--groups", type=int, default=9, help="groups per VPC besides the default")
    p.add_argument("--rules", type=int, default=10, help="ingress rules per group (>= 3)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--change-sizes", default="10,200", help="ring sizes for the change auditor")
    p.add_argument("--output", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if args.rules < 3 or args.groups < 3 or args.repeats < 1:
        p.error("--rules and --groups must be 3 or more, --repeats 1 or more")
    change_sizes = [int(x) for x in args.change_sizes.split(",") if x.strip()]
    started = time.perf_counter()
    counters: list[RequestCounter] = []

    def counting(app: WsgiApp) -> RequestCounter:
        counters.append(RequestCounter(app))
        return counters[0]

    lines: list[str] = []
    ok = True
    change_rows: list[tuple[int, Counter[str], dict[str, Any], float]] = []
    growth: list[tuple[int, int, int, Counter[str]]] = []
    with Emulator() as emu:
        emu.wrap_app(counting)
        counter = counters[0]
        for size in sorted({args.size, *change_sizes}):
            emu.reset()
            t = time.perf_counter()
            ec2 = emu.session().client("ec2", endpoint_url=emu.url)
            if size == args.size:
                # API calls as the groups grow: the same ring with 3 and with --groups groups
                small = build(ec2, size, 3, args.rules)
                before = counter.snapshot()
                audit(emu.clients(), [REGION], CheckContext(), resolve(None))
                growth.append((3 * size + size, small.rules, 0, counter.since(before)))
                emu.reset()
            s = build(ec2, size, args.groups, args.rules)
            n_groups = sum(len(g) for g in s.groups) + size
            print(
                f"ring of {size}: {n_groups} groups, {s.rules} rules, built in "
                f"{time.perf_counter() - t:.0f} s",
                file=sys.stderr,
            )
            if size == args.size:
                pg_row, bare_row, got = measure(emu, counter, args.repeats)
                growth.append((n_groups, s.rules, 0, pg_row.runs[-1].calls))
                missed, false = s.expected - got, got - s.expected
                ok = ok and not missed and not false
                lines += _audit_table(size, n_groups, s, pg_row, bare_row, missed, false, args)
            if size in change_sizes:
                calls, result, seconds = change_calls(emu, counter, s)
                change_rows.append((size, calls, result, seconds))
    lines += _growth_table(growth)
    lines += _change_table(change_rows)
    lines.append(
        f"- moto 5.2.5 loopback server, {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs; whole benchmark "
        f"{time.perf_counter() - started:.0f} s. Command: python -m tests.bench.security "
        + " ".join(argv if argv is not None else sys.argv[1:])
    )
    report = "\n".join(lines) + "\n"
    print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"written to {args.output}", file=sys.stderr)
    return 0 if ok else 1


def _audit_table(
    size: int,
    n_groups: int,
    s: SecurityRing,
    pg: Row,
    base: Row,
    missed: set[Expected],
    false: set[Expected],
    args: argparse.Namespace,
) -> list[str]:
    paired = pg.paired_ratio(base)
    lines = [
        "## Full audit at security-group scale: PeerGuard vs a bare describe script",
        "",
        f"| peerings | groups | rules | tool | wall time (median of {args.repeats}) | vs bare: "
        "medians | vs bare: side by side | own CPU (median) | API calls (server-side) | "
        "planted SG/ACL/flow-log defects found / missed / false | calls |",
        "|---:|---:|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in (pg, base):
        last = row.runs[-1]
        judged = (
            f"{len(s.expected) - len(missed)} / {len(missed)} / {len(false)}" if row is pg else "-"
        )
        lines.append(
            f"| {size} | {n_groups} | {s.rules} | {row.tool} | {row.median:.3f} s "
            f"| {row.median / base.median:.2f}x | {row.paired_ratio(base):.2f}x "
            f"| {row.median_cpu:.3f} s | {sum(last.calls.values())} | {judged} "
            f"| {_calls(last.calls)} |"
        )
    lines += [
        "",
        f"- PeerGuard / bare script, side by side: {paired:.2f}x (target <= 1.2x: "
        f"{'met' if paired <= 1.2 else 'NOT met'}). Both build a session and clients per run "
        "and make the same describe calls; PeerGuard also parses everything into its model "
        "and runs all 19 checks.",
    ]
    if missed or false:
        lines.append(f"- MISSED {sorted(missed)}; FALSE {sorted(false)}")
    return lines


def _growth_table(growth: list[tuple[int, int, int, Counter[str]]]) -> list[str]:
    lines = [
        "",
        "## API calls of the full audit as security groups grow (same ring)",
        "",
        "| groups | rules | API calls (server-side) | calls |",
        "|---:|---:|---:|---|",
    ]
    for n_groups, rules, _, calls in growth:
        lines.append(f"| {n_groups} | {rules} | {sum(calls.values())} | {_calls(calls)} |")
    totals = {sum(c.values()) for *_, c in growth}
    lines.append(
        f"- {'The same number of calls' if len(totals) == 1 else 'NOT the same number'} "
        "whatever the number of groups: every describe call is one paginated listing, and "
        "without MaxResults EC2 (as moto) returns all items in one response (were pages "
        "asked for, DescribeSecurityGroupRules would add one call per 1,000 rules)."
    )
    return lines


def _change_table(rows: list[tuple[int, Counter[str], dict[str, Any], float]]) -> list[str]:
    lines = [
        "",
        "## One change-auditor invocation: AuthorizeSecurityGroupIngress",
        "",
        "| peerings | API calls (server-side) | calls | status | findings | wall time |",
        "|---:|---:|---|---|---:|---:|",
    ]
    for size, calls, result, seconds in rows:
        lines.append(
            f"| {size} | {sum(calls.values())} | {_calls(calls)} | {result.get('status')} "
            f"| {result.get('findings', '-')} | {seconds:.3f} s |"
        )
    totals = {sum(c.values()) for _, c, _, _ in rows}
    lines.append(
        f"- {'Equal' if len(totals) == 1 else 'NOT equal'} across sizes: events/"
        "AuthorizeSecurityGroupIngress.json naming the first group of ring VPC 1 (a fresh "
        "Runtime: its GetCallerIdentity is counted), default settings (findings logged)."
    )
    return lines


if __name__ == "__main__":
    sys.exit(main())
