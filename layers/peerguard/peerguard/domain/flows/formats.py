"""VPC Flow Logs record formats: which fields a line holds, in which order.

A format comes from one of three places, all parsed here:

- the header line an S3 log file starts with (`version account-id interface-id ...`);
- the flow log's `LogFormat` from DescribeFlowLogs (`${version} ${account-id} ...`);
- a `--log-format` given on the command line (either notation).

Without any of them a record is in the default format: the 14 version-2 fields. Pure: no
I/O. Field names are the hyphenated AWS names; `column` gives the SQL column name.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cached_property

# The default format (version 2), in its fixed order.
V2_FIELDS: tuple[str, ...] = (
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
)

# Every documented VPC flow log field and the version that introduced it.
FIELD_VERSIONS: dict[str, int] = {
    **dict.fromkeys(V2_FIELDS, 2),
    **dict.fromkeys(
        (
            "vpc-id",
            "subnet-id",
            "instance-id",
            "tcp-flags",
            "type",
            "pkt-srcaddr",
            "pkt-dstaddr",
        ),
        3,
    ),
    **dict.fromkeys(("region", "az-id", "sublocation-type", "sublocation-id"), 4),
    **dict.fromkeys(
        ("pkt-src-aws-service", "pkt-dst-aws-service", "flow-direction", "traffic-path"), 5
    ),
    # Newer VPC fields (ECS task metadata, reject reason): accepted, never needed here.
    **dict.fromkeys(
        (
            "ecs-cluster-arn",
            "ecs-cluster-name",
            "ecs-container-instance-arn",
            "ecs-container-instance-id",
            "ecs-container-id",
            "ecs-second-container-id",
            "ecs-service-name",
            "ecs-task-definition-arn",
            "ecs-task-arn",
            "ecs-task-id",
        ),
        7,
    ),
    "reject-reason": 8,
}

# traffic-path values that mean "left through a VPC peering connection".
PEERING_TRAFFIC_PATHS = (4, 5)  # 4 intra-region, 5 inter-region

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_TEMPLATE = re.compile(r"\$\{([^}]*)\}")


class FormatError(ValueError):
    """A format that cannot be used; the message names the bad field."""


@dataclass(frozen=True)
class Format:
    """The fields of a record line, in order (hyphenated AWS names)."""

    fields: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.fields:
            raise FormatError("a flow log format needs at least one field")
        seen: set[str] = set()
        for f in self.fields:
            if not _NAME.match(f):
                raise FormatError(f"{f!r} is not a flow log field name")
            if f in seen:
                raise FormatError(f"field {f!r} appears twice")
            seen.add(f)

    @cached_property
    def positions(self) -> dict[str, int]:
        """Field name -> 1-based position in the line (SQL arrays count from 1)."""
        return {f: i for i, f in enumerate(self.fields, start=1)}

    def position(self, field: str) -> int | None:
        return self.positions.get(field)

    def has(self, field: str) -> bool:
        return field in self.positions

    @property
    def version(self) -> int:
        """What AWS writes in the `version` field: the highest version of the fields used."""
        return max(FIELD_VERSIONS.get(f, 2) for f in self.fields)

    @property
    def header(self) -> str:
        """The header line an S3 log file of this format starts with."""
        return " ".join(self.fields)

    @property
    def log_format(self) -> str:
        """The CreateFlowLogs `LogFormat` notation."""
        return " ".join(f"${{{f}}}" for f in self.fields)

    @property
    def unknown(self) -> tuple[str, ...]:
        return tuple(f for f in self.fields if f not in FIELD_VERSIONS)

    @property
    def is_default(self) -> bool:
        return self.fields == V2_FIELDS

    @property
    def analysable(self) -> bool:
        """Records of this format name a source and a destination address."""
        return (self.has("srcaddr") or self.has("pkt-srcaddr")) and (
            self.has("dstaddr") or self.has("pkt-dstaddr")
        )

    def __str__(self) -> str:
        return self.header


DEFAULT = Format(V2_FIELDS)


def column(field: str) -> str:
    """The SQL column of a field: hyphens become underscores (as Athena's DDL does)."""
    return field.replace("-", "_")


def _check_known(fields: tuple[str, ...]) -> None:
    for f in fields:
        if f not in FIELD_VERSIONS:
            close = difflib.get_close_matches(f, FIELD_VERSIONS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise FormatError(f"unknown flow log field {f!r}{hint}")


def parse_log_format(text: str, *, strict: bool = True) -> Format:
    """A DescribeFlowLogs `LogFormat` (`${version} ${srcaddr} ...`) or a plain field list.

    `strict` refuses fields that are not documented (what a person typed); formats AWS
    itself reports are read with `strict=False`, so a field newer than this code is kept
    as an opaque column instead of making the whole log unreadable.
    """
    text = text.strip()
    if not text:
        raise FormatError("empty log format")
    if "$" in text:
        names = _TEMPLATE.findall(text)
        rest = _TEMPLATE.sub(" ", text)
        if rest.strip():
            raise FormatError(f"unexpected text {rest.strip()!r} in log format {text!r}")
    else:
        names = text.replace(",", " ").split()
    fields = tuple(n.strip().lower() for n in names)
    fmt = Format(fields)
    if strict:
        _check_known(fields)
    return fmt


def looks_like_header(line: str) -> bool:
    """True for the header line of an S3 log file: field names, not values.

    Values never look like lowercase field names except ids (`vpc-0abc`, `eni-1`), and a
    header always has a documented field among them, while an id never is one.
    """
    tokens = line.split()
    if not tokens or not all(_NAME.match(t) for t in tokens):
        return False
    known = sum(1 for t in tokens if t in FIELD_VERSIONS)
    return known * 2 >= len(tokens)


def parse_header(line: str) -> Format:
    """The format named by an S3 log file's header line."""
    if not looks_like_header(line):
        raise FormatError(f"not a flow log header line: {line.strip()[:80]!r}")
    return Format(tuple(line.split()))
