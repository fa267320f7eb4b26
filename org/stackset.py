"""The commands that deploy PeerGuard (or its member role) to every account of the OUs in
org/parameters.json with a service-managed StackSet, auto-deployed to new accounts.

    python org/stackset.py peerguard|member [--run] [--parameters org/parameters.json]

Dry by default: prints the commands (`sam package`, `create-stack-set`,
`create-stack-instances`); --run runs them one after the other (AWS CLI and SAM CLI on
PATH, credentials of the management account or a delegated StackSets administrator).
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = ".aws-sam/packaged.yaml"


def _params(values: dict[str, str]) -> list[str]:
    return [f"ParameterKey={k},ParameterValue={v}" for k, v in values.items()]


def commands(kind: str, cfg: dict) -> list[list[str]]:
    ous = ",".join(cfg["OrganizationalUnitIds"])
    # IAM is global: the member role goes to one region of each account, PeerGuard to all.
    regions = cfg["Regions"] if kind == "peerguard" else cfg["Regions"][:1]
    if kind == "peerguard":
        name, params = cfg["StackSetName"], cfg["PeerGuard"]
        template = PACKAGED
        out: list[list[str]] = [
            ["sam", "build"],
            # The StackSet template: sam package uploads the code and the layer and writes
            # a plain CloudFormation template (with the Serverless transform) naming them.
            ["sam", "package", "--s3-bucket", cfg["ArtifactBucket"], "--output-template-file",
             PACKAGED],
        ]  # fmt: skip
        capabilities = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"]
    else:
        name, params = cfg["MemberStackSetName"], cfg["MemberRole"]
        template, out = "org/member-role.yaml", []
        capabilities = ["CAPABILITY_NAMED_IAM"]
    out.append(
        [
            "aws", "cloudformation", "create-stack-set",
            "--stack-set-name", name,
            "--template-body", f"file://{template}",
            "--permission-model", "SERVICE_MANAGED",
            "--auto-deployment", "Enabled=true,RetainStacksOnAccountRemoval=false",
            "--capabilities", *capabilities,
            "--parameters", *_params({k: v for k, v in params.items() if v != ""}),
        ]
    )  # fmt: skip
    out.append(
        [
            "aws", "cloudformation", "create-stack-instances",
            "--stack-set-name", name,
            "--deployment-targets", f"OrganizationalUnitIds={ous}",
            "--regions", *regions,
            "--operation-preferences",
            "RegionConcurrencyType=PARALLEL,MaxConcurrentPercentage=25,"
            "FailureTolerancePercentage=10",
        ]
    )  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=("peerguard", "member"))
    p.add_argument("--parameters", default=str(ROOT / "org" / "parameters.json"))
    p.add_argument("--run", action="store_true", help="run the commands (default: print)")
    args = p.parse_args(argv)
    cfg = json.loads(Path(args.parameters).read_text())
    for cmd in commands(args.kind, cfg):
        print(shlex.join(cmd))
        if args.run:
            done = subprocess.run(cmd, cwd=ROOT, check=False)
            if done.returncode:
                print(f"stackset: {cmd[0]} failed ({done.returncode})", file=sys.stderr)
                return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
