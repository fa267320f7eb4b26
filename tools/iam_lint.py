"""parliament (offline IAM lint) on every policy document template.yaml creates.

`make security-lint` runs it in two virtualenvs (the SAM translator and checkov pin
different pydantic versions):
    .venv-tools/bin/python tools/iam_lint.py translate template.yaml > template.json
    .venv-lint/bin/python tools/iam_lint.py lint template.json   (or - for stdin)

Why on the SAM translator's output rather than on the template's inline statements: SAM
turns policy templates (DynamoDBCrudPolicy, SQSSendMessagePolicy, ...), EventInvokeConfig
destinations and event sources into statements of roles it generates, and those are
permissions the functions really get. The translator (aws-sam-translator, the library
`sam validate` runs) gives the CloudFormation template AWS deploys; each IAM role (its
trust policy and inline policies), queue, topic and key policy in it is linted.

CloudFormation functions are rendered with example values (account 123456789012,
us-east-1, parameter defaults, non-empty optional parameters) so that parliament sees
ARNs; `Fn::If` is rendered as the branch that grants (the one that is not
AWS::NoValue, else the true branch), so a conditional permission is linted as if its
condition held. AWS managed policies (ManagedPolicyArns) are listed, not linted.

Every finding must be allowed, with a reason, in tools/iam_lint_allow.yaml; an allowance
that matches nothing is an error too, so the list stays exact.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ALLOW = Path(__file__).with_name("iam_lint_allow.yaml")

ACCOUNT, REGION, PARTITION, STACK = "123456789012", "us-east-1", "aws", "peerguard"
# Optional parameters whose default is empty get a value, so the statements they guard
# are linted with a real ARN.
EXAMPLE_PARAMETERS = {
    "SlackWebhookSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:slack-AbCdEf",
    "AllowlistParameterName": "/peerguard/allowlist",
    "AlertEmail": "ops@example.com",
    "MemberRoleName": "peerguard-member",
    "CentralTopicArn": "arn:aws:sns:us-east-1:111122223333:peerguard-findings",
    "CentralEventBusArn": "arn:aws:events:us-east-1:111122223333:event-bus/peerguard",
}
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": PARTITION,
    "AWS::StackName": STACK,
    "AWS::URLSuffix": "amazonaws.com",
}
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
NO_VALUE = object()


def translate(template_path: Path) -> dict[str, Any]:
    """The CloudFormation template SAM makes of `template_path` (as `sam validate` does)."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    sam = yaml_parse(template_path.read_text())
    for res in sam.get("Resources", {}).values():
        props = res.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):  # local paths: sam package uploads them
            if isinstance(props.get(key), str):
                props[key] = "s3://bucket/key"

    class NoManagedPolicies:  # policy names would be looked up in IAM; the template uses ARNs
        def load(self) -> dict[str, str]:
            return {}

    return dict(transform(sam, {}, NoManagedPolicies()))


class Renderer:
    """CloudFormation functions -> example strings."""

    def __init__(self, cfn: dict[str, Any]) -> None:
        self.resources: dict[str, Any] = cfn.get("Resources", {})
        self.parameters = {
            name: str(p.get("Default", "")) for name, p in cfn.get("Parameters", {}).items()
        }
        self.parameters.update(EXAMPLE_PARAMETERS)

    def ref(self, name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        kind = self.resources[name]["Type"]
        return {
            "AWS::SQS::Queue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::KMS::Key": KEY_ID,
        }.get(kind, name)  # tables, log groups, functions, roles: their name

    def get_att(self, name: str, attribute: str) -> str:
        kind = self.resources[name]["Type"]
        if attribute in ("QueueName", "TopicName"):
            return name
        arns = {
            "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
            "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{KEY_ID}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name.lower()}",
        }
        if attribute != "Arn" or kind not in arns:
            raise ValueError(f"cannot render !GetAtt {name}.{attribute} ({kind})")
        return arns[kind]

    def sub(self, text: str, names: dict[str, Any]) -> str:
        def one(m: re.Match[str]) -> str:
            key = m.group(1)
            if key in names:
                return str(self.render(names[key]))
            if "." in key:
                return self.get_att(*key.split(".", 1))
            return self.ref(key)

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def render(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self.render(v) for v in value]
            return [v for v in items if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref":
                return NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if fn == "Fn::GetAtt":
                name, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(name, attribute)
            if fn == "Fn::Sub":
                text, names = (arg, {}) if isinstance(arg, str) else arg
                return self.sub(text, names)
            if fn == "Fn::Join":
                sep, parts = arg
                return sep.join(str(p) for p in self.render(parts))
            if fn == "Fn::If":  # the branch that grants something
                _, yes, no = arg
                rendered_yes = self.render(yes)
                return rendered_yes if rendered_yes is not NO_VALUE else self.render(no)
            if fn.startswith("Fn::"):
                raise ValueError(f"cannot render {fn}")
        out = {k: self.render(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}


def documents(cfn: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(resource, policy name, rendered document) for every policy document."""
    render = Renderer(cfn).render
    for name, res in cfn.get("Resources", {}).items():
        kind, props = res["Type"], res.get("Properties", {})
        found: list[tuple[str, Any]] = []
        if kind == "AWS::IAM::Role":
            found.append(("trust", props["AssumeRolePolicyDocument"]))
            found.extend(
                ("policy:" + str(render(p)["PolicyName"]), p) for p in props.get("Policies", [])
            )
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            found.append(("policy", props["PolicyDocument"]))
        elif kind in ("AWS::SQS::QueuePolicy", "AWS::SNS::TopicPolicy"):
            found.append(("resource-policy", props["PolicyDocument"]))
        elif kind == "AWS::KMS::Key":
            found.append(("key-policy", props["KeyPolicy"]))
        for label, doc in found:
            rendered = render(copy.deepcopy(doc))
            if rendered is NO_VALUE:
                continue
            if label.startswith("policy:"):
                rendered = rendered["PolicyDocument"]
            yield name, label, rendered


def managed_policies(cfn: dict[str, Any]) -> dict[str, list[str]]:
    render = Renderer(cfn).render
    return {
        name: render(res["Properties"]["ManagedPolicyArns"])
        for name, res in cfn.get("Resources", {}).items()
        if res["Type"] == "AWS::IAM::Role" and res.get("Properties", {}).get("ManagedPolicyArns")
    }


def allowances() -> list[dict[str, str]]:
    import yaml  # .venv-lint

    entries = yaml.safe_load(ALLOW.read_text()) or []
    for e in entries:
        missing = {"resource", "policy", "issue", "reason"} - set(e)
        if missing:
            raise SystemExit(f"{ALLOW.name}: entry {e} lacks {', '.join(sorted(missing))}")
    return list(entries)


def main(argv: list[str]) -> int:
    if argv[:1] == ["translate"]:  # .venv-tools: SAM -> CloudFormation, JSON on stdout
        template = Path(argv[1]) if len(argv) > 1 else ROOT / "template.yaml"
        json.dump(translate(template), sys.stdout, indent=1, default=str)
        return 0
    if argv[:1] != ["lint"] or len(argv) != 2:
        raise SystemExit("usage: iam_lint.py translate [template.yaml] | lint FILE|-")
    from parliament import analyze_policy_string  # .venv-lint

    source = sys.stdin if argv[1] == "-" else open(argv[1])  # noqa: SIM115
    with source:
        cfn = json.load(source)
    allowed = allowances()
    used: set[int] = set()
    unexplained: list[str] = []
    count = 0
    for resource, label, doc in documents(cfn):
        count += 1
        policy = analyze_policy_string(json.dumps(doc), ignore_private_auditors=True)
        for f in policy.findings:
            detail = json.dumps(f.detail, default=str)
            hits = [
                i
                for i, a in enumerate(allowed)
                if fnmatch.fnmatchcase(resource, a["resource"])
                and fnmatch.fnmatchcase(label, a["policy"])
                and a["issue"] == f.issue
                and a.get("detail", "") in detail
            ]
            if hits:
                used.update(hits)
                print(f"allowed  {resource} {label}: {f.issue} {detail}")
            else:
                unexplained.append(f"{resource} {label}: {f.issue} {detail}")
    for role, arns in managed_policies(cfn).items():
        print(f"managed  {role}: {', '.join(arns)} (AWS managed, not linted)")
    stale = [a for i, a in enumerate(allowed) if i not in used]
    for line in unexplained:
        print(f"FINDING  {line}")
    for a in stale:
        print(f"STALE    {ALLOW.name}: {a['resource']} {a['policy']} {a['issue']} matches nothing")
    print(
        f"parliament: {count} policy documents, {len(unexplained)} unexplained findings, "
        f"{len(stale)} stale allowances"
    )
    return 1 if unexplained or stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
