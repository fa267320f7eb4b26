"""What well-formed AWS names and ids look like. Pure: checked at the edge, before any I/O."""

from __future__ import annotations

import re

ACCOUNT_ID = re.compile(r"^\d{12}\Z")
# us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-5 ...
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}\Z")
# EC2 ids: a prefix, a dash, and (in AWS) 8 or 17 hex digits. Accepted here: up to 32
# letters and digits, so samples with ids like vpc-1 still parse; never a space, a control
# character or anything else a request should not carry.
_HEX_ID = r"-[0-9A-Za-z]{1,32}\Z"
RESOURCE_PREFIXES = (
    "vpc",
    "pcx",
    "rtb",
    "rtbassoc",
    "subnet",
    "sg",
    "sgr",
    "acl",
    "aclassoc",
    "fl",
    "eni",
    "i",
    "igw",
    "nat",
    "tgw",
    "vgw",
    "eigw",
    "pl",
    "vpce",
    "lgw",
    "cagw",
    "vpc-cidr-assoc",
    "subnet-cidr-assoc",
)
RESOURCE_ID = re.compile(r"^(?:" + "|".join(map(re.escape, RESOURCE_PREFIXES)) + r")" + _HEX_ID)


def resource_id_of(prefix: str) -> re.Pattern[str]:
    return re.compile("^" + re.escape(prefix) + _HEX_ID)


VPC_ID = resource_id_of("vpc")


def is_account_id(value: str) -> bool:
    return bool(ACCOUNT_ID.match(value))


def is_region(value: str) -> bool:
    """Well-formed (whether AWS has such a region is for the adapter to say)."""
    return bool(REGION.match(value))


# Both templates put PeerGuard's roles under this path: the member role's trust names it.
ROLE_PATH = "/peerguard/"
_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")


def check_role_name(value: str) -> str:
    """An IAM role name (letters, digits, +=,.@_-, at most 64)."""
    name = value.strip()
    if not _ROLE_NAME.match(name):
        raise ValueError(
            f"bad role name {value!r} (expected an IAM role name: letters, digits and +=,.@_-, "
            "at most 64; the path is always /peerguard/)"
        )
    return name
