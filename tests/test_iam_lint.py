"""tools/iam_lint.py: the policy documents it hands parliament are complete and concrete
(parliament itself runs in .venv-lint, `make security-lint`)."""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

from peerguard_lab.template import ROOT


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("iam_lint", ROOT / "tools" / "iam_lint.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CFN: dict[str, Any] = {
    "Parameters": {"SlackWebhookSecretArn": {"Type": "String", "Default": ""}},
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": []}}},
        "FnRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {"Statement": []},
                "ManagedPolicyArns": ["arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"],
                "Policies": [
                    {
                        "PolicyName": "send",
                        "PolicyDocument": {
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "sqs:SendMessage",
                                    "Resource": {
                                        "Fn::Sub": [
                                            "arn:${AWS::Partition}:sqs:${AWS::Region}:"
                                            "${AWS::AccountId}:${name}",
                                            {"name": {"Fn::GetAtt": ["Queue", "QueueName"]}},
                                        ]
                                    },
                                },
                                {
                                    "Effect": "Allow",
                                    "Action": "kms:Decrypt",
                                    "Resource": {"Fn::GetAtt": ["Key", "Arn"]},
                                },
                            ]
                        },
                    },
                    {
                        "Fn::If": [
                            "HasSlack",
                            {
                                "PolicyName": "slack",
                                "PolicyDocument": {
                                    "Statement": [
                                        {
                                            "Effect": "Allow",
                                            "Action": "secretsmanager:GetSecretValue",
                                            "Resource": {"Ref": "SlackWebhookSecretArn"},
                                        }
                                    ]
                                },
                            },
                            {"Ref": "AWS::NoValue"},
                        ]
                    },
                ],
            },
        },
    },
}


def test_every_document_is_found_and_rendered_to_plain_strings() -> None:
    tool = _tool()
    docs = {(r, label): doc for r, label, doc in tool.documents(CFN)}
    # The conditional policy is linted as if its condition held.
    assert set(docs) == {
        ("Key", "key-policy"),
        ("FnRole", "trust"),
        ("FnRole", "policy:send"),
        ("FnRole", "policy:slack"),
    }
    send, decrypt = docs[("FnRole", "policy:send")]["Statement"]
    assert send["Resource"] == "arn:aws:sqs:us-east-1:123456789012:Queue"
    assert decrypt["Resource"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
    (secret,) = docs[("FnRole", "policy:slack")]["Statement"]
    assert secret["Resource"].startswith("arn:aws:secretsmanager:")  # the example, not ""
    rendered = json.dumps(list(docs.values()))
    assert "Fn::" not in rendered and '"Ref"' not in rendered
    assert tool.managed_policies(CFN) == {
        "FnRole": ["arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"]
    }


def test_every_allowance_gives_its_reason() -> None:
    import yaml

    for entry in yaml.safe_load((ROOT / "tools" / "iam_lint_allow.yaml").read_text()):
        assert {"resource", "policy", "issue", "reason"} <= set(entry)
        assert len(entry["reason"]) > 40, entry
