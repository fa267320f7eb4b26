"""Findings: what a check reports, with a stable identity for dedup."""

from __future__ import annotations

import hashlib
import json
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


class Remediation(BaseModel):
    """The exact EC2 call that fixes a finding; `automatic` when PeerGuard may make it."""

    model_config = ConfigDict(frozen=True)

    action: str  # EC2 API operation name, e.g. CreateRoute
    parameters: dict[str, Any]
    automatic: bool = False
    reason: str = ""  # why it is not automatic, when it is not

    def cli(self) -> str:
        """The same call as an AWS CLI command line, for people to copy."""
        op = "".join("-" + c.lower() if c.isupper() else c for c in self.action).lstrip("-")
        args = " ".join(
            f"--{''.join('-' + c.lower() if c.isupper() else c for c in k).lstrip('-')} {v}"
            for k, v in self.parameters.items()
        )
        return f"aws ec2 {op} {args}".strip()


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
    # Distinguishes two findings of one check on one resource (e.g. two destinations).
    key: str = Field(default="", exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def fingerprint(self) -> str:
        """Stable identity: same problem on the same resource, whatever the wording."""
        ident = "|".join((self.check_id, self.account_id, self.region, self.resource_id, self.key))
        return hashlib.sha256(ident.encode()).hexdigest()[:32]

    @property
    def content_hash(self) -> str:
        """Changes when anything a reader would see changes (used to re-notify)."""
        body = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:32]


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
