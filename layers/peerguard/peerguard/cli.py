"""`peerguard audit | checks | demo`: the same engine as the Lambdas, from a shell."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import boto3
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

from peerguard import checks as catalogue
from peerguard.audit import AuditResult, audit
from peerguard.aws.clients import Clients, check_region
from peerguard.checks import Allowed, Check, CheckContext
from peerguard.findings import Severity
from peerguard.remediation import MemoryRecorder, Mode, RemediationConfig, remediate
from peerguard.remediation import report as remediation_report
from peerguard.report import table

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


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
        return check_region(value)
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


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"bad number {value!r} (expected 0 or more)")
    return int(value)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="peerguard", description="Audit and repair AWS VPC peering.")
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

    sub.add_parser("checks", help="list the check catalogue")

    d = sub.add_parser("demo", help="audit broken seed networks in an embedded emulator")
    d.add_argument("--port", type=int, default=0, help="emulator port on 127.0.0.1 (default: any)")
    return p


def cmd_audit(args: argparse.Namespace) -> int:
    try:
        selected = catalogue.resolve(args.checks.split(",") if args.checks else None)
    except ValueError as e:
        raise UsageError(str(e)) from None
    session = boto3.Session(profile_name=args.profile) if args.profile else boto3.Session()
    regions = args.regions or [session.region_name or ""]
    if not regions[0]:
        raise UsageError("no region given: use --region or set AWS_REGION")
    clients = Clients(session, endpoint_url=args.endpoint_url, default_region=regions[0])
    allow = tuple(Allowed(a) for a in args.allow) if args.allow else None
    ctx = CheckContext(allowlist=allow)
    result = audit(clients, regions, ctx, selected)
    text = json.dumps(result.to_json(), indent=2) + "\n" if args.format == "json" else table(result)
    if args.mode is not Mode.NOTIFY:
        result, text = _remediate(args, clients, regions, ctx, selected, result)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    for w in result.warnings:
        print(f"peerguard: warning: {w}", file=sys.stderr)
    return EXIT_FINDINGS if result.at_or_above(args.fail_on) else EXIT_OK


def _remediate(
    args: argparse.Namespace,
    clients: Clients,
    regions: list[str],
    ctx: CheckContext,
    selected: list[Check],
    audited: AuditResult,
) -> tuple[AuditResult, str]:
    """Plan and apply (dry-run or fix) what the audit found; with fix, re-audit after."""
    config = RemediationConfig(
        default_mode=args.mode, fix_dns=args.fix_dns, max_changes=args.max_changes
    )
    done = remediate(
        clients,
        audited.findings,
        audited.snapshot,
        config,
        ctx=ctx,
        regions=regions,
        recorder=MemoryRecorder(),
        trigger="cli",
    )
    result = audit(clients, regions, ctx, selected) if args.mode is Mode.FIX else audited
    if args.format == "json":
        body = result.to_json()
        body["remediation"] = {**done.to_json(), "findings_before": len(audited.findings)}
        return result, json.dumps(body, indent=2) + "\n"
    if args.mode is Mode.FIX:
        after = "\nAfter the fixes:\n" + table(result)
        return result, table(audited) + "\n" + remediation_report.table(done) + after
    return result, table(audited) + "\n" + remediation_report.table(done)


def cmd_checks() -> int:
    for c in catalogue.REGISTRY.values():
        print(f"{c.id:<36} {c.severity.value:<7} {c.title}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "audit":
            return cmd_audit(args)
        if args.command == "checks":
            return cmd_checks()
        from peerguard.demo import run_demo  # moto is a dev dependency: import only here

        return run_demo(port=args.port)
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


def _fail(message: str) -> int:
    print(f"peerguard: error: {message}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
