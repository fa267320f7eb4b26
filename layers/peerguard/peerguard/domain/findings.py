"""Findings: what PeerGuard reports, with a stable identity for dedup; and the one type for
an EC2 call (what a finding proposes, what the executor makes, what a record undoes)."""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field


class Severity(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @classmethod
    def parse(cls, value: str) -> Severity:
        try:
            return cls(value.lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown severity {value!r} (expected one of: {names})") from None


_RANK = {s: i for i, s in enumerate(Severity)}
_WORDS = re.compile(r"(?<!^)(?=[A-Z])")


def _kebab(name: str) -> str:
    return _WORDS.sub("-", name).lower()


def _cli_args(value: Any) -> list[str]:
    if isinstance(value, bool):
        return [str(value).lower()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)  # --security-group-rule-ids sgr-1 sgr-2
    if isinstance(value, dict | list):
        return [json.dumps(value, separators=(",", ":"))]
    return [str(value)]


class Call(BaseModel):
    """One EC2 API call, exactly as boto3 takes it (without DryRun)."""

    model_config = ConfigDict(frozen=True)

    action: str  # the EC2 operation, e.g. CreateRoute
    parameters: dict[str, Any]

    def __init__(
        self, action: str | None = None, parameters: dict[str, Any] | None = None, /, **data: Any
    ) -> None:
        """`Call("CreateRoute", {...})` or `Call(action=..., parameters=...)`."""
        if action is not None:
            data["action"] = action
        if parameters is not None:
            data["parameters"] = parameters
        super().__init__(**data)

    @property
    def method(self) -> str:
        """The boto3 client method name: CreateRoute -> create_route."""
        return _kebab(self.action).replace("-", "_")

    @property
    def iam_action(self) -> str:
        return f"ec2:{self.action}"

    def key(self) -> str:
        """Identity of the call (same operation, same parameters)."""
        return json.dumps({"action": self.action, "parameters": self.parameters}, sort_keys=True)

    def argv(self) -> list[str]:
        """The AWS CLI command as arguments (for a shell script: shlex.join them)."""
        out = ["aws", "ec2", _kebab(self.action)]
        for k, v in self.parameters.items():
            out += [f"--{_kebab(k)}", *_cli_args(v)]
        return out

    def cli(self) -> str:
        """The same call as an AWS CLI command line: the one notation people see."""
        return " ".join(f"'{a}'" if a[:1] in "{[" else a for a in self.argv())

    def plain(self) -> Call:
        """Just the call, whatever subclass carries it."""
        return Call(action=self.action, parameters=dict(self.parameters))

    def __str__(self) -> str:
        return self.cli()


class Remediation(Call):
    """The call that fixes a finding; `automatic` when PeerGuard may make it by itself."""

    automatic: bool = False
    reason: str = ""  # why it is not automatic, when it is not


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    check_id: str
    severity: Severity
    resource_type: str
    resource_id: str
    account_id: str
    region: str
    vpc_id: str | None = None
    peering_connection_id: str | None = None
    title: str
    detail: str
    remediation: Remediation | None = None
    # Kind-specific facts (e.g. a security-group rule id, flow evidence), part of the JSON.
    extra: dict[str, Any] = Field(default_factory=dict)
    # Distinguishes two findings of one kind on one resource (e.g. two destinations).
    key: str = Field(default="", exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fingerprint(self) -> str:
        """Stable identity: same problem on the same resource, whatever the wording."""
        ident = "|".join((self.check_id, self.account_id, self.region, self.resource_id, self.key))
        # surrogatepass: ids come from events, and a stray surrogate must not crash dedup.
        return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    @property
    def content_hash(self) -> str:
        """Changes when anything a reader would see changes (used to re-notify)."""
        body = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def to_record(self) -> dict[str, Any]:
        """Everything needed to rebuild it exactly (`key` included): outboxes, dead letters."""
        return {**self.model_dump(mode="json"), "key": self.key}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Finding:
        return cls.model_validate({k: v for k, v in record.items() if k != "fingerprint"})

    def to_json(self) -> dict[str, Any]:
        """The public JSON of a finding (CLI, SNS, dead letters); `extra` keys at the top."""
        body = self.model_dump(mode="json")
        return {**body.pop("extra"), **body}


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Most severe first, then by peering and resource, for stable output."""
    return sorted(
        findings,
        key=lambda f: (
            -f.severity.rank,
            f.peering_connection_id or "~",
            f.check_id,
            f.resource_id,
            f.key,
        ),
    )
