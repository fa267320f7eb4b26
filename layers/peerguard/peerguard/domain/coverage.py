"""Which findings an audit could have produced, so only those can be resolved by it. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from peerguard.domain.model import Snapshot
from peerguard.domain.scope import Scope


class Stored(Protocol):
    """What coverage needs to know of a stored finding."""

    @property
    def check_id(self) -> str: ...
    @property
    def account_id(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def resource_id(self) -> str: ...


@dataclass(frozen=True)
class Coverage:
    """A stored finding is covered when its check ran, its account and region were read in
    full, and (for a scoped audit) its resource was looked at. `resource_ids` None means
    every resource of the regions (a full audit).

    Far sides read through the member role: `far` are their (account, region) pairs and
    `far_resources` what was read there (only the peer VPCs and what is in them, and this
    account's peerings), so a far-side finding resolves only where it was looked at again.
    """

    account_id: str
    regions: frozenset[str]
    check_ids: frozenset[str]
    resource_ids: frozenset[str] | None = None
    far: frozenset[tuple[str, str]] = frozenset()
    far_resources: frozenset[str] = frozenset()

    def covers(self, state: Stored) -> bool:
        if state.check_id not in self.check_ids:
            return False
        if state.account_id != self.account_id:
            return (
                state.account_id,
                state.region,
            ) in self.far and state.resource_id in self.far_resources
        return state.region in self.regions and (
            self.resource_ids is None or state.resource_id in self.resource_ids
        )

    def scopes(self) -> list[tuple[str, str]]:
        """Every (account, region) whose open findings it may resolve."""
        return sorted({(self.account_id, r) for r in self.regions} | self.far)

    def plus(self, *check_ids: str) -> Coverage:
        return replace(self, check_ids=self.check_ids | set(check_ids))

    def without(self, check_ids: Iterable[str]) -> Coverage:
        return replace(self, check_ids=self.check_ids - set(check_ids))

    @classmethod
    def nothing(cls, account_id: str, region: str) -> Coverage:
        """Covers nothing: announce, never resolve."""
        return cls(account_id, frozenset({region}), frozenset(), frozenset())

    @classmethod
    def of_snapshot(
        cls, snapshot: Snapshot, check_ids: Iterable[str], scope: Scope | None = None
    ) -> Coverage:
        """What an audit over `snapshot` covered. Regions where a describe call failed are left
        out: a finding there may only look gone because it could not be read."""
        broken = {region for region, _ in snapshot.partial}
        regions = frozenset(
            r for acct, r in snapshot.readable if acct == snapshot.account_id and r not in broken
        )
        resource_ids: frozenset[str] | None = None
        if scope is not None:
            # Looked up but not found counts as covered: a deleted route table resolves.
            read_vpcs = set(snapshot.vpcs)
            peerings = {
                p.pcx_id
                for p in snapshot.peerings.values()
                if p.pcx_id in scope.peering_ids or {s.vpc_id for s in p.sides} & read_vpcs
            }
            resource_ids = frozenset(
                scope.ids()
                | read_vpcs
                | set(snapshot.subnets)
                | set(snapshot.route_tables)
                | set(snapshot.security_groups or ())
                | set(snapshot.network_acls or ())
                | peerings
            )
        far = frozenset((acct, r) for acct, r in snapshot.readable if acct != snapshot.account_id)
        far_resources: frozenset[str] = frozenset()
        if far:
            accounts = {acct for acct, _ in far}
            vpcs = {v.vpc_id for v in snapshot.vpcs.values() if v.owner_id in accounts}
            far_resources = frozenset(
                vpcs
                | {s.subnet_id for s in snapshot.subnets.values() if s.vpc_id in vpcs}
                | {t.route_table_id for t in snapshot.route_tables.values() if t.vpc_id in vpcs}
                | {
                    g.group_id
                    for g in (snapshot.security_groups or {}).values()
                    if g.vpc_id in vpcs
                }
                | {a.acl_id for a in (snapshot.network_acls or {}).values() if a.vpc_id in vpcs}
                | {
                    p.pcx_id
                    for p in snapshot.peerings.values()
                    if {s.vpc_id for s in p.sides} & vpcs
                }
            )
        return cls(
            snapshot.account_id,
            regions,
            frozenset(check_ids),
            resource_ids,
            far,
            far_resources,
        )
