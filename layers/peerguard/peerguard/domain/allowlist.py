"""The allowlist of trusted peer accounts: entries, strict parsing, matching. Pure.

Two spellings are accepted: comma-separated account ids (`111122223333,444455556666`), or a
JSON list of entries narrowed by region, VPC id and CIDR range:
`[{"account_id": "111122223333", "regions": ["eu-west-1"], "vpc_ids": ["vpc-0abc..."],
"cidrs": ["10.8.0.0/14"]}]`. Anything else is an error naming the entry and field: a
wrong type is never coerced (a string is not a list of its characters, 5 is not a CIDR).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, TypeAdapter, ValidationError

from peerguard.domain.catalogue import Entry, Kind, define
from peerguard.domain.findings import Finding, Severity
from peerguard.domain.names import ACCOUNT_ID, REGION, VPC_ID

ENV_SOURCE = "PEERGUARD_ALLOWLIST"


def _matches(pattern: re.Pattern[str], what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return check


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR block") from None


AccountId = Annotated[str, AfterValidator(_matches(ACCOUNT_ID, "a 12-digit account id"))]
Region = Annotated[str, AfterValidator(_matches(REGION, "a region name"))]
VpcId = Annotated[str, AfterValidator(_matches(VPC_ID, "a VPC id"))]
Cidr = Annotated[str, AfterValidator(_cidr)]


class Allowed(BaseModel):
    """One allowlist entry: a peer account, optionally narrowed."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    account_id: AccountId
    regions: frozenset[Region] = frozenset()
    vpc_ids: frozenset[VpcId] = frozenset()
    cidrs: tuple[Cidr, ...] = ()

    def matches(self, owner_id: str, region: str, vpc_id: str) -> bool:
        return (
            self.account_id == owner_id
            and (not self.regions or region in self.regions)
            and (not self.vpc_ids or vpc_id in self.vpc_ids)
        )


_ENTRIES = TypeAdapter(tuple[Allowed, ...])


class AllowlistError(ValueError):
    """The allowlist cannot be used; the message is one line naming what is wrong."""


def parse_allowlist(raw: str) -> tuple[Allowed, ...]:
    raw = raw.strip()
    if not raw.startswith("["):
        try:
            return tuple(Allowed(account_id=a.strip()) for a in raw.split(",") if a.strip())
        except ValidationError as e:
            raise AllowlistError(_one_line(e, prefix="")) from None
    try:
        return _ENTRIES.validate_json(raw, strict=True)
    except ValidationError as e:
        raise AllowlistError(_one_line(e, prefix="entry ")) from None


def _one_line(error: ValidationError, prefix: str) -> str:
    first = error.errors()[0]
    loc = list(first["loc"])
    where = ""
    if loc and isinstance(loc[0], int):
        where = f"{prefix}{loc.pop(0)}"
    field_name = ".".join(str(p) for p in loc if not isinstance(p, int))
    if field_name:
        where = f"{where} {field_name}".strip()
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "json_invalid":
        return f"allowlist is not valid JSON ({first.get('ctx', {}).get('error', msg)})"
    more = f" (+{len(error.errors()) - 1} more)" if len(error.errors()) > 1 else ""
    return f"allowlist {where}: {msg}{more}" if where else f"allowlist: {msg}{more}"


@dataclass(frozen=True)
class Allowlist:
    """The allowlist in force, where it came from, and why it cannot be used (if so).

    `entries` None means no allowlist: nothing is judged against one. With an `error`,
    entries are None too, and nothing may be accepted, rejected or resolved on it.
    """

    entries: tuple[Allowed, ...] | None
    source: str = ENV_SOURCE
    error: str = ""

    @property
    def configured(self) -> bool:
        return self.entries is not None or bool(self.error)

    def entry_for(self, owner_id: str, region: str, vpc_id: str) -> Allowed | None:
        return next((e for e in self.entries or () if e.matches(owner_id, region, vpc_id)), None)

    def allows(self, owner_id: str, region: str, vpc_id: str) -> bool:
        return self.entry_for(owner_id, region, vpc_id) is not None

    def accounts(self) -> frozenset[str]:
        return frozenset(e.account_id for e in self.entries or ())


NO_ALLOWLIST = Allowlist(None)


ALLOWLIST_INVALID = define(
    Entry(
        "setup.allowlist_invalid",
        Kind.SETUP,
        Severity.HIGH,
        "Peering allowlist cannot be used: nothing is accepted, rejected or judged against it",
        risk="Pending requests are only alerted, and peerings are not checked against the "
        "allowlist, until it is fixed.",
        fix="Fix the value the message names (AllowlistedAccounts, or the SSM parameter's JSON), "
        "or grant ssm:GetParameter on the parameter.",
        resource_type="AWS::SSM::Parameter",
        iam_actions=("ssm:GetParameter",),
    )
)


def allowlist_finding(allowlist: Allowlist, account_id: str, region: str) -> Finding:
    return ALLOWLIST_INVALID.finding(
        resource_id=allowlist.source,
        # The SSM parameter, or the function setting the stack passes (a variable).
        resource_type="AWS::SSM::Parameter"
        if allowlist.source.startswith("/")
        else "AWS::Lambda::Function",
        account_id=account_id,
        region=region,
        detail=f"{allowlist.error}. Pending peering requests are alerted, never accepted or "
        "rejected, and peerings are not judged against the allowlist until it is fixed.",
        key=allowlist.error,
    )
