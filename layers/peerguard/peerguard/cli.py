"""`peerguard audit | checks | demo`: the same engine as the Lambdas, from a shell."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from peerguard import __version__, clock
from peerguard.aws.allowlist import AllowlistProvider
from peerguard.aws.clients import Clients
from peerguard.aws.executor import Executor
from peerguard.aws.members import MemberAccess
from peerguard.aws.regions import check_region
from peerguard.domain import catalogue
from peerguard.domain.allowlist import Allowed, Allowlist
from peerguard.domain.catalogue import Entry
from peerguard.domain.checks import CheckContext, resolve
from peerguard.domain.checks.context import DATABASE_PORTS
from peerguard.domain.findings import Severity
from peerguard.domain.names import check_role_name
from peerguard.domain.plans.actions import Mode
from peerguard.domain.plans.remediation import RemediationConfig, plan_all
from peerguard.domain.reachability import parse_end
from peerguard.notify import Notifier, SecurityHubNotifier, SlackNotifier, SnsNotifier
from peerguard.render import accounts_table as table_of_accounts
from peerguard.render import (
    audit_table,
    changes_table,
    path_table,
    peerings_table,
    plan_script,
    plan_table,
)
from peerguard.state.changes import MemoryRecorder
from peerguard.usecases import accounts as many
from peerguard.usecases.path import trace_path
from peerguard.usecases.peerings import peerings_overview
from peerguard.usecases.pipeline import AuditResult, audit
from peerguard.usecases.replay import replay

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
DEMO_ACTS = 5  # peerguard_lab.demo.ACTS (the demo extra may be absent when arguments are read)


class UsageError(Exception):
    """Bad input: reported as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _account(value: str) -> str:
    if not (value.isdigit() and len(value) == 12):
        raise argparse.ArgumentTypeError(f"bad account id {value!r} (expected 12 digits)")
    return value


def _region(value: str) -> str:
    try:
        return check_region(value.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _severity(value: str) -> Severity:
    try:
        return Severity.parse(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _mode(value: str) -> Mode:
    try:
        return Mode.parse(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _ports(value: str) -> tuple[int, ...]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items or not all(v.isdigit() and 1 <= int(v) <= 65535 for v in items):
        raise argparse.ArgumentTypeError(
            f"bad ports {value!r} (expected comma-separated ports 1-65535, e.g. 3306,5432)"
        )
    return tuple(dict.fromkeys(int(v) for v in items))


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"bad number {value!r} (expected 0 or more)")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="peerguard", description="Audit and repair AWS VPC peering.")
    p.add_argument("--version", action="version", version=f"peerguard {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    a = sub.add_parser("audit", help="audit the peerings of an account")
    a.add_argument(
        "--region",
        action="append",
        type=_region,
        dest="regions",
        metavar="R",
        help="region to audit (repeat for cross-region peers); default: the session's",
    )
    a.add_argument("--profile", help="AWS profile to use")
    a.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="AWS endpoint (e.g. a moto server); AWS_ENDPOINT_URL is honoured",
    )
    a.add_argument("--checks", help="comma-separated check ids to run (default: all)")
    a.add_argument(
        "--allow-account",
        action="append",
        type=_account,
        dest="allow",
        default=None,
        metavar="ACCOUNT",
        help="allowlisted peer account (repeatable)",
    )
    a.add_argument(
        "--allowlist-parameter",
        metavar="NAME",
        help="SSM parameter holding the JSON allowlist (as the stack's AllowlistParameterName)",
    )
    a.add_argument("--format", choices=("table", "json"), default="table")
    a.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    a.add_argument(
        "--fail-on",
        type=_severity,
        default=Severity.HIGH,
        metavar="SEVERITY",
        help="exit 1 when a finding is at or above this severity (default: high)",
    )
    a.add_argument(
        "--mode",
        type=_mode,
        default=Mode.NOTIFY,
        metavar="notify|dry-run|fix",
        help="after the audit: only report (default), verify the fixes with EC2 "
        "DryRun, or apply them within the safety rails and re-audit",
    )
    a.add_argument(
        "--max-changes",
        type=_count,
        default=10,
        metavar="N",
        help="with --mode fix: at most N changes, the rest are reported (default: 10)",
    )
    a.add_argument(
        "--fix-dns",
        action="store_true",
        help="with --mode dry-run/fix: also allow DNS resolution from remote VPCs",
    )
    a.add_argument(
        "--plan-format",
        choices=("table", "cli"),
        default="table",
        help="with --mode dry-run/fix: print the plan as a table (default) or, with cli, "
        "only as a runnable script of `aws ec2` calls (nothing is changed)",
    )
    a.add_argument(
        "--database-ports",
        type=_ports,
        default=DATABASE_PORTS,
        metavar="PORTS",
        help="ports sg.open_to_world reports open to the internet besides SSH and RDP "
        f"(default: {','.join(map(str, DATABASE_PORTS))})",
    )
    a.add_argument(
        "--flow-log-group",
        metavar="NAME",
        default="",
        help="with --mode fix: create missing flow logs (ALL traffic) to this log group "
        "(needs --flow-log-role)",
    )
    a.add_argument(
        "--flow-log-role",
        metavar="ARN",
        default="",
        help="the IAM role VPC Flow Logs deliver to --flow-log-group with",
    )
    _organization_arguments(a)

    c = sub.add_parser("checks", help="list every kind of finding PeerGuard reports")
    c.add_argument("--format", choices=("table", "json"), default="table")

    r = sub.add_parser(
        "replay-dlq", help="deliver the notification dead-letter queue again (after an outage)"
    )
    r.add_argument("--queue-url", required=True, help="the stack's NotificationDeadLetterQueueUrl")
    r.add_argument("--table", required=True, help="the stack's StateTableName (replay records)")
    r.add_argument("--topic-arn", help="the stack's AlertTopicArn: replay SNS dead letters")
    r.add_argument("--slack-secret-arn", help="replay Slack dead letters through this webhook")
    r.add_argument("--security-hub", action="store_true", help="replay Security Hub ones")
    r.add_argument("--region", type=_region, help="the stack's region (default: the session's)")
    r.add_argument("--profile", help="AWS profile to use")
    r.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    r.add_argument("--max", type=_count, default=1000, metavar="N", help="at most N messages")
    r.add_argument("--dry-run", action="store_true", help="say what would be delivered, only")

    _flows_parser(sub)
    _add_path_parsers(sub)

    d = sub.add_parser(
        "demo",
        help="audit broken seed networks in an embedded emulator",
        description="Five acts in an embedded emulator, no account needed: 1 audit, "
        "2 replay of the mistakes' CloudTrail events, 3 auto-accept, 4 repair in fix mode, "
        "5 flow logs. Without --act, all of them in order.",
    )
    d.add_argument("--port", type=int, default=0, help="emulator port on 127.0.0.1 (default: any)")
    d.add_argument(
        "--act",
        type=_act,
        metavar="N",
        help="show only act N (1-5); the acts it builds on run first, silently",
    )
    d.add_argument("--list", action="store_true", help="name the acts and exit")
    return p


def _organization_arguments(a: argparse.ArgumentParser) -> None:
    """Across accounts (issue 12): the member role, and many accounts at once."""
    a.add_argument(
        "--role-name",
        type=_role_name,
        metavar="NAME",
        help="the member role (org/member-role.yaml, path /peerguard/) to assume in the peer "
        "account of each cross-account peering, so its side is judged too",
    )
    a.add_argument(
        "--accounts",
        type=_accounts,
        metavar="ID,ID,...",
        help="audit these accounts (through --role-name) in parallel, one merged report",
    )
    a.add_argument(
        "--organization",
        action="store_true",
        help="audit every active account of the organization (Organizations ListAccounts)",
    )
    a.add_argument(
        "--max-workers",
        type=_workers,
        default=many.DEFAULT_WORKERS,
        metavar="N",
        help=f"with --accounts/--organization: accounts audited at once "
        f"(default: {many.DEFAULT_WORKERS})",
    )


def _act(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= DEMO_ACTS:
        raise argparse.ArgumentTypeError(
            f"no act {value!r}: the demo has acts 1 to {DEMO_ACTS} (--list names them)"
        )
    return int(value)


def _role_name(value: str) -> str:
    try:
        return check_role_name(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _accounts(value: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("no account id given (expected ID,ID,...)")
    return [_account(v) for v in items]


def _workers(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise argparse.ArgumentTypeError(f"bad number of workers {value!r} (expected 1-64)")
    return int(value)


def cmd_audit(args: argparse.Namespace, session: boto3.Session | None) -> int:
    try:
        selected = resolve(args.checks.split(",") if args.checks is not None else None)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if session is None:
        session = boto3.Session(profile_name=args.profile) if args.profile else boto3.Session()
    regions = args.regions or [session.region_name or ""]
    if not regions[0]:
        raise UsageError("no region given: use --region or set AWS_REGION")
    try:
        check_region(regions[0])
    except ValueError as e:
        raise UsageError(str(e)) from None
    if bool(args.flow_log_group) != bool(args.flow_log_role):
        raise UsageError("--flow-log-group and --flow-log-role go together")
    clients = Clients(session, endpoint_url=args.endpoint_url, default_region=regions[0])
    ctx = CheckContext(
        allowlist=_allowlist(args, clients),
        database_ports=args.database_ports,
        flow_log_group=args.flow_log_group,
        flow_log_role_arn=args.flow_log_role,
    )
    if args.accounts or args.organization:
        return _audit_accounts(args, clients, regions, ctx, selected)
    members = MemberAccess(clients, args.role_name) if args.role_name else None
    result = audit(clients, regions, ctx, selected, members=members)
    with _destination(args.output) as emit:
        if args.mode is Mode.NOTIFY:
            emit(_render(args, result))
        else:
            result = _remediate(args, clients, regions, ctx, selected, result, emit, members)
    for w in result.warnings:
        print(f"peerguard: warning: {w}", file=sys.stderr)
    return EXIT_FINDINGS if result.at_or_above(args.fail_on) else EXIT_OK


@contextlib.contextmanager
def _destination(path: str | None) -> Iterator[Callable[[str], None]]:
    """Where the report goes (a file, or stdout), written as it is made."""
    if not path:

        def to_stdout(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

        yield to_stdout
        return
    with open(path, "w", encoding="utf-8") as fh:

        def to_file(text: str) -> None:
            fh.write(text)

        yield to_file


def _allowlist(args: argparse.Namespace, clients: Clients) -> Allowlist:
    if args.allowlist_parameter:
        allow = AllowlistProvider("", args.allowlist_parameter, clients.client("ssm")).get()
        if allow.error:
            print(f"peerguard: warning: {allow.error}", file=sys.stderr)
        return allow
    if args.allow:
        return Allowlist(tuple(Allowed(account_id=a) for a in args.allow), "--allow-account")
    return Allowlist(None)


def _render(args: argparse.Namespace, result: AuditResult) -> str:
    if args.format == "json":
        return json.dumps(result.to_json(), indent=2) + "\n"
    return audit_table(result)


def _remediate(
    args: argparse.Namespace,
    clients: Clients,
    regions: list[str],
    ctx: CheckContext,
    selected: list[Entry],
    audited: AuditResult,
    emit: Callable[[str], None],
    members: MemberAccess | None = None,
) -> AuditResult:
    """Plan, show the whole plan, then carry it out (dry-run or fix); with fix, re-audit."""
    config = RemediationConfig(
        default_mode=args.mode, fix_dns=args.fix_dns, max_changes=args.max_changes
    )
    actions = plan_all(audited.findings, audited.snapshot, config, ctx)
    if args.plan_format == "cli":  # the plan as a script for a person to run: change nothing
        emit(plan_script(actions))
        return audited
    if args.format == "table":  # every call, before any is made
        emit(audit_table(audited) + "\n" + plan_table(actions, args.mode, args.max_changes) + "\n")
    executor = Executor(
        clients,
        max_changes=args.max_changes,
        regions=regions,
        recorder=MemoryRecorder(),
        members=members,
    )
    report = executor.report(executor.run_each(actions), args.mode)
    fresh = args.mode is Mode.FIX
    result = audit(clients, regions, ctx, selected, members=members) if fresh else audited
    if args.format == "json":
        body = result.to_json()
        body["plan"] = [a.call.plain().model_dump() for a in actions if a.automatic]
        body["remediation"] = {**report.to_json(), "findings_before": len(audited.findings)}
        emit(json.dumps(body, indent=2) + "\n")
    elif args.mode is Mode.FIX:
        emit(changes_table(report) + "\nAfter the fixes:\n" + audit_table(result))
    else:
        emit(changes_table(report))
    return result


def _audit_accounts(
    args: argparse.Namespace,
    clients: Clients,
    regions: list[str],
    ctx: CheckContext,
    selected: list[Entry],
) -> int:
    """Many accounts through the member role; the orchestration is the use case's."""
    if not args.role_name:
        raise UsageError("--accounts and --organization need --role-name (the member role)")
    if args.accounts and args.organization:
        raise UsageError("give --accounts or --organization, not both")
    if args.mode is not Mode.NOTIFY:
        raise UsageError("--mode dry-run/fix changes one account: audit it alone to fix it")
    org = frozenset(many.organization_accounts(clients)) if args.organization else None
    accounts = sorted(org) if org is not None else args.accounts
    tty = sys.stderr.isatty()

    def progress(done: int, total: int, account: str, outcome: str) -> None:
        line = f"peerguard: [{done}/{total}] account {account}: {outcome}"
        print(("\r" + line.ljust(79)) if tty else line, end="" if tty else "\n", file=sys.stderr)

    report = many.audit_accounts(
        clients,
        accounts,
        args.role_name,
        regions,
        ctx,
        selected,
        max_workers=args.max_workers,
        organization=org,
        progress=progress,
    )
    if tty:
        print(file=sys.stderr)
    with _destination(args.output) as emit:
        if args.format == "json":
            emit(json.dumps(report.to_json(), indent=2) + "\n")
        elif report.results:
            emit(table_of_accounts(report))
    for failure in report.failures:
        print(f"peerguard: error: {failure.line()}", file=sys.stderr)
    for w in report.summary()["warnings"]:
        print(f"peerguard: warning: {w}", file=sys.stderr)
    if report.failures:
        return EXIT_ERROR
    return EXIT_FINDINGS if report.at_or_above(args.fail_on) else EXIT_OK


def cmd_checks(args: argparse.Namespace) -> int:
    entries = catalogue.entries().values()
    if args.format == "json":
        print(json.dumps([e.to_json() for e in entries], indent=2))
        return EXIT_OK
    for e in entries:
        auto = "auto-fix" if e.automatic_fix else ""
        print(f"{e.id:<36} {e.severity.value:<7} {auto:<8} {e.title}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None, session: boto3.Session | None = None) -> int:
    """The command line. `session`: the AWS session to use (default: from the environment
    and --profile); embedders and tests pass their own."""
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as done:  # --help, --version: printed, not an error
            return int(done.code or 0)
        if args.command == "audit":
            return cmd_audit(args, session)
        if args.command == "checks":
            return cmd_checks(args)
        if args.command == "replay-dlq":
            return cmd_replay(args, session)
        if args.command == "flows":
            return cmd_flows(args, session)
        if args.command in PATH_COMMANDS:
            return PATH_COMMANDS[args.command](args, session)
        return cmd_demo(args)
    except UsageError as e:
        return _fail(f"usage: {e}")
    except NoCredentialsError:
        return _fail("no AWS credentials found (set a profile, AWS_ACCESS_KEY_ID, or a role)")
    except ProfileNotFound as e:
        return _fail(str(e))
    except NoRegionError:
        return _fail("no region given: use --region or set AWS_REGION")
    except EndpointConnectionError as e:
        return _fail(f"cannot reach the AWS endpoint: {e}")
    except ClientError as e:
        err = e.response.get("Error", {})
        return _fail(f"AWS error {err.get('Code')}: {err.get('Message')}")
    except (BotoCoreError, OSError, ValueError) as e:
        return _fail(str(e).splitlines()[0] if str(e) else type(e).__name__)
    except KeyboardInterrupt:
        return _fail("interrupted")
    except Exception as e:  # a bug: one line, and the traceback only when asked for
        if os.environ.get("PEERGUARD_DEBUG"):
            raise
        first = str(e).splitlines()[0] if str(e) else ""
        return _fail(f"internal error {type(e).__name__}: {first} (PEERGUARD_DEBUG=1 shows more)")


def cmd_replay(args: argparse.Namespace, session: boto3.Session | None) -> int:
    if session is None:
        session = boto3.Session(profile_name=args.profile) if args.profile else boto3.Session()
    region = args.region or session.region_name
    if not region:
        raise UsageError("no region given: use --region or set AWS_REGION")
    clients = Clients(session, endpoint_url=args.endpoint_url, default_region=region)
    notifiers: dict[str, Notifier] = {}
    if args.topic_arn:
        notifiers["sns"] = SnsNotifier(args.topic_arn, clients.client("sns"))
    if args.slack_secret_arn:
        notifiers["slack"] = SlackNotifier(args.slack_secret_arn, clients.client("secretsmanager"))
    if args.security_hub:
        hub = SecurityHubNotifier(clients.client("securityhub"), region, clients.account_id())
        notifiers["securityhub"] = hub
    if not notifiers:
        raise UsageError(
            "name a channel to replay: --topic-arn, --slack-secret-arn, --security-hub"
        )
    report = replay(
        clients.client("sqs"),
        args.queue_url,
        notifiers,
        clients.client("dynamodb"),
        args.table,
        clock.now(),
        limit=args.max,
        dry_run=args.dry_run,
    )
    print(json.dumps(report.to_json(), indent=2))
    for error in report.errors:
        print(f"peerguard: warning: {error}", file=sys.stderr)
    undelivered = (
        report.counts["failed"] + report.counts["unreadable"] + report.counts["no channel"]
    )
    return EXIT_FINDINGS if undelivered else EXIT_OK


# -- peerguard flows ---------------------------------------------------------------------------


def _when(value: str) -> int:
    """ISO 8601 (UTC when no offset is given) or epoch seconds, as epoch seconds."""
    text = value.strip()
    try:
        return int(float(text)) if text.replace(".", "", 1).isdigit() else _iso(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"bad time {value!r} (expected ISO 8601, e.g. 2026-12-02T14:00:00Z, or epoch seconds)"
        ) from None


def _iso(text: str) -> int:
    when = datetime.fromisoformat(text)
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp())


def _s3_url(value: str) -> tuple[str, str]:
    bucket, _, prefix = value.removeprefix("s3://").partition("/")
    if not value.startswith("s3://") or not bucket:
        raise argparse.ArgumentTypeError(f"bad S3 location {value!r} (expected s3://BUCKET/PREFIX)")
    # The prefix is what comes before AWSLogs/ (the flow log's own folder, if any).
    prefix = prefix.split("AWSLogs/", 1)[0].strip("/")
    return bucket, prefix + "/" if prefix else ""


def _flows_parser(sub: Any) -> None:
    f = sub.add_parser(
        "flows",
        help="flow-log anomalies on each peering, over a span of time",
        description="Read flow log records (files, S3, CloudWatch Logs), keep what crosses a "
        "peering, learn the baseline from [--baseline-start, --since) and judge [--since, "
        "--until) against it. Times are rounded down to the 15-minute window.",
    )
    f.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="PATH",
        dest="files",
        help="a flow log file or a directory of them (plain or gzip; repeatable)",
    )
    f.add_argument(
        "--s3",
        action="append",
        default=[],
        type=_s3_url,
        metavar="s3://BUCKET/PREFIX",
        help="flow log objects under the AWS key layout (repeatable)",
    )
    f.add_argument(
        "--log-group",
        action="append",
        default=[],
        metavar="NAME",
        dest="log_groups",
        help="a CloudWatch Logs group flow logs deliver to (repeatable)",
    )
    f.add_argument(
        "--since", type=_when, metavar="T", help="analyse from T (default: --until - 1 h)"
    )
    f.add_argument("--until", type=_when, metavar="T", help="analyse until T (default: now)")
    f.add_argument(
        "--baseline-start",
        type=_when,
        metavar="T",
        help="learn the baseline from T to --since (default: no baseline)",
    )
    f.add_argument(
        "--log-format",
        metavar="FORMAT",
        help="the records' fields when neither a header line nor the flow log says "
        "(e.g. '${version} ${srcaddr} ...' or 'version srcaddr ...')",
    )
    f.add_argument("--region", type=_region, help="the region of the VPCs (default: the session's)")
    f.add_argument("--profile", help="AWS profile to use")
    f.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="AWS endpoint (e.g. a moto server); AWS_ENDPOINT_URL is honoured",
    )
    f.add_argument("--format", choices=("table", "json"), default="table")
    f.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    f.add_argument(
        "--chart",
        metavar="FILE",
        help="write a chart of each peering's traffic with the anomalies marked "
        "(.html: a self-contained page; .svg: the chart alone)",
    )
    f.add_argument(
        "--fail-on",
        type=_severity,
        default=Severity.HIGH,
        metavar="SEVERITY",
        help="exit 1 when a finding is at or above this severity (default: high)",
    )


def cmd_flows(args: argparse.Namespace, session: boto3.Session | None) -> int:
    from peerguard import chart
    from peerguard.aws.flows.sources import flow_logs, local_files
    from peerguard.aws.reader import Reader
    from peerguard.domain.flows.aggregates import iso, ordered
    from peerguard.domain.flows.crossing import crossings
    from peerguard.domain.flows.formats import FormatError, parse_log_format
    from peerguard.render import flows_table
    from peerguard.settings import FlowSettings
    from peerguard.usecases import flows

    if not (args.files or args.s3 or args.log_groups):
        raise UsageError("name the records to read: --file, --s3 or --log-group")
    if args.chart and Path(args.chart).suffix.lower() not in chart.FORMATS:
        raise UsageError(f"--chart {args.chart}: expected a file ending in .html or .svg")
    try:
        fmt = parse_log_format(args.log_format) if args.log_format else None
    except FormatError as e:
        raise UsageError(f"--log-format: {e}") from None
    for path in args.files:
        if not Path(path).exists():
            raise UsageError(f"--file {path}: no such file or directory")
    settings = FlowSettings.from_env()
    w = settings.window_minutes * 60
    until = args.until if args.until is not None else int(clock.now().timestamp())
    since = args.since if args.since is not None else until - 3600
    since -= since % w
    start = args.baseline_start - args.baseline_start % w if args.baseline_start else None
    if since >= until:
        raise UsageError("--since must be before --until")
    if start is not None and start >= since:
        raise UsageError("--baseline-start must be before --since")
    if session is None:
        session = boto3.Session(profile_name=args.profile) if args.profile else boto3.Session()
    region = args.region or session.region_name
    if not region:
        raise UsageError("no region given: use --region or set AWS_REGION")
    clients = Clients(session, endpoint_url=args.endpoint_url, default_region=region)
    account = clients.account_id()
    snapshot = Reader(clients, account).full([region])
    cs = crossings(snapshot)
    ours = {s.vpc_id for c in cs for s in (c.requester, c.accepter) if s.owner_id == account}
    known = flow_logs(clients.client("ec2"), ours) if ours else []
    sources: list[flows.Source] = []
    observed: set[str] = set()  # the VPCs whose logs are read here (a flow they log counts once)
    if args.files:
        sources.append(flows.FileSource(tuple(local_files(args.files, log_format=fmt))))
    for group in args.log_groups:
        mine = [f for f in known if f.log_group == group]
        vpcs = {f.observer for f in mine if f.observer}
        observed |= vpcs
        sources.append(
            flows.LogGroupSource(
                region,
                group,
                fmt or (mine[0].format if mine else None),
                next(iter(vpcs)) if len(vpcs) == 1 else None,
            )
        )
    for bucket, prefix in args.s3:
        mine = [f for f in known if f.bucket == bucket and f.prefix == prefix]
        if fmt is not None:
            mine = [replace(f, format=fmt) for f in mine]
        hive = any(f.hive for f in mine)
        observed |= {f.observer for f in mine if f.observer}
        sources.append(flows.BucketSource(region, bucket, prefix, hive, flow_logs=tuple(mine)))
    reader = flows.FlowReader(clients, settings, account)
    done = flows.analyse_span(reader, sources, cs, since, until, start, observed)
    warnings = [*snapshot.warnings, *done.reading.warnings, *done.reading.cut,
                *done.analysed.unreadable]  # fmt: skip
    summary = {
        "account_id": account,
        "region": region,
        "since": iso(since),
        "until": iso(until),
        "baseline_start": iso(start) if start is not None else None,
        "window_seconds": w,
        "peerings": [c.peering_id for c in cs],
        "baseline_windows": {c.peering_id: done.baseline.of(c.peering_id).windows for c in cs},
        "sources": [s.name for s in sources],
        "records": done.analysed.counts.to_json(),
        "total": len(done.findings),
        "by_severity": {s.value: sum(f.severity is s for f in done.findings)
                        for s in reversed(Severity)},
        "by_check": dict(sorted(Counter(f.check_id for f in done.findings).items())),
        "warnings": warnings,
    }  # fmt: skip
    with _destination(args.output) as emit:
        if args.format == "json":
            body = {
                "findings": [f.to_json() for f in done.findings],
                "summary": summary,
                "flows": [_flow_json(f, iso) for f in ordered(done.analysed.flows)],
            }
            emit(json.dumps(body, indent=2) + "\n")
        else:
            emit(flows_table(done.analysed, done.findings, summary))
    if args.chart:
        title = f"PeerGuard flows, {iso(since)} to {iso(until)}"
        Path(args.chart).write_text(
            chart.render(Path(args.chart).suffix, done.everything, done.findings, title),
            encoding="utf-8",
        )
    for w_ in warnings:
        print(f"peerguard: warning: {w_}", file=sys.stderr)
    return (
        EXIT_FINDINGS
        if any(f.severity.rank >= args.fail_on.rank for f in done.findings)
        else EXIT_OK
    )


def _flow_json(f: Any, iso: Callable[[int], str]) -> dict[str, Any]:
    return {
        "peering_connection_id": f.peering_id,
        "direction": f.direction.value,
        "window_start": iso(f.window_start),
        "source": f.src,
        "destination": f.dst,
        "port": f.port,
        "protocol": f.protocol,
        "action": f.action,
        "reply": f.reply,
        "packets": f.packets,
        "bytes": f.bytes,
        "records": f.records,
    }


# -- peerguard path | peerings ----------------------------------------------------------


def _add_reading_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--region",
        action="append",
        type=_region,
        dest="regions",
        metavar="R",
        help="region to read (repeat for cross-region peers); default: the session's",
    )
    p.add_argument("--profile", help="AWS profile to use")
    p.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="AWS endpoint (e.g. a moto server); AWS_ENDPOINT_URL is honoured",
    )
    p.add_argument("--format", choices=("table", "json"), default="table")


def _add_path_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "path",
        help="why can (or can't) SRC reach DST: every hop through the peering, both ways",
        description="Walk the route tables, the peering, the network ACLs and the security "
        "groups from SRC to DST and back, as AWS evaluates them. SRC and DST are a private "
        "IP, an ENI id, an instance id or a subnet id (a subnet: every address in it). "
        "Exit 0 reachable, 1 blocked, 3 unknown (a hop PeerGuard cannot read), 2 error.",
    )
    p.add_argument("--from", dest="source", required=True, metavar="SRC")
    p.add_argument("--to", dest="destination", required=True, metavar="DST[:PORT][/tcp|udp|icmp]")
    _add_reading_options(p)
    o = sub.add_parser("peerings", help="every peering at a glance: both sides, routes, exposure")
    _add_reading_options(o)


def _reading_clients(
    args: argparse.Namespace, session: boto3.Session | None
) -> tuple[Clients, list[str]]:
    if session is None:
        session = boto3.Session(profile_name=args.profile) if args.profile else boto3.Session()
    regions = args.regions or [session.region_name or ""]
    if not regions[0]:
        raise UsageError("no region given: use --region or set AWS_REGION")
    return Clients(session, endpoint_url=args.endpoint_url, default_region=regions[0]), regions


EXIT_UNKNOWN = 3


def cmd_path(args: argparse.Namespace, session: boto3.Session | None) -> int:
    clients, regions = _reading_clients(args, session)
    try:
        parse_end(args.source, destination=False)
        parse_end(args.destination, destination=True)
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        result, snap = trace_path(clients, regions, args.source, args.destination)
    except ValueError as e:  # an end that is nowhere read
        raise UsageError(str(e)) from None
    if args.format == "json":
        print(json.dumps(result.to_json(), indent=2))
    else:
        sys.stdout.write(path_table(result, snap))
    for w in snap.warnings:
        print(f"peerguard: warning: {w}", file=sys.stderr)
    if result.reachable is None:
        return EXIT_UNKNOWN
    return EXIT_OK if result.reachable else EXIT_FINDINGS


def cmd_peerings(args: argparse.Namespace, session: boto3.Session | None) -> int:
    clients, regions = _reading_clients(args, session)
    result, views = peerings_overview(clients, regions, CheckContext())
    if args.format == "json":
        print(json.dumps([v.to_json() for v in views], indent=2))
    else:
        sys.stdout.write(peerings_table(views))
    for w in result.warnings:
        print(f"peerguard: warning: {w}", file=sys.stderr)
    return EXIT_OK


PATH_COMMANDS = {"path": cmd_path, "peerings": cmd_peerings}


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        from peerguard_lab.demo import (
            acts_text,
            run_demo,
        )  # the demo extra: moto, outside the layer
    except ImportError:
        raise UsageError(
            "the demo needs the demo extra: pip install -e '.[demo]' in a checkout (make demo)"
        ) from None
    if args.list:
        print(acts_text(), end="")
        return 0
    return run_demo(port=args.port, act=args.act)


def _fail(message: str) -> int:
    print(f"peerguard: error: {message}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
