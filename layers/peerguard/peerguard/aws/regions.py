"""Which regions exist: botocore's bundled endpoint data, read once. No network."""

from __future__ import annotations

from functools import cache

import botocore.session

from peerguard.domain.names import is_region


@cache
def known_regions() -> frozenset[str]:
    """Every EC2 region of every partition botocore knows."""
    session = botocore.session.get_session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("ec2", partition_name=partition)
    )


def check_region(name: str) -> str:
    """`name`, if it is a well-formed region that AWS has; else a one-line ValueError."""
    if not isinstance(name, str) or not is_region(name):
        raise ValueError(f"bad region {name!r} (expected a name like us-east-1)")
    if name not in known_regions():
        raise ValueError(f"unknown region {name!r} (not a region this AWS SDK knows)")
    return name
