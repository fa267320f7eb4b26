"""What a change touched: the resources a scoped read starts from. Pure."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Scope:
    """Resource ids by kind. Empty = nothing to read."""

    vpc_ids: frozenset[str] = frozenset()
    peering_ids: frozenset[str] = frozenset()
    route_table_ids: frozenset[str] = frozenset()
    subnet_ids: frozenset[str] = frozenset()
    security_group_ids: frozenset[str] = frozenset()
    network_acl_ids: frozenset[str] = frozenset()
    flow_log_ids: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    def ids(self) -> frozenset[str]:
        """Every id named, whatever its kind."""
        return frozenset().union(*(getattr(self, f.name) for f in fields(self)))

    def to_json(self) -> dict[str, list[str]]:
        return {f.name: sorted(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_json(cls, body: dict[str, list[str]]) -> Scope:
        return cls(**{f.name: frozenset(body.get(f.name, ())) for f in fields(cls)})
