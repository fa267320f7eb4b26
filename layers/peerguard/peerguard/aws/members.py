"""Reading another account of the organization: the member role, assumed through STS.

org/member-role.yaml deploys a read-only role (at ROLE_PATH, name of the operator's choice)
in every member account; it trusts only PeerGuard's function roles (under ROLE_PATH) of the
same organization. PeerGuard assumes it in the far account of a cross-account peering to
read that side: the reader does the reads, this module only hands out the clients, or says
in one line why there are none (route.peer_side_unverified carries that line).
"""

from __future__ import annotations

import threading
from collections import Counter

from botocore.exceptions import BotoCoreError, ClientError

from peerguard.aws.clients import Clients
from peerguard.domain.names import ROLE_PATH, check_role_name

DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
OFF = "cross-account reading is off (set MemberRoleName, or peerguard audit --role-name)"


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class MemberAccess:
    """Clients for other accounts through the member role, one assume per account per audit
    (its credentials last an hour: build one per audit, never keep it in a warm container).

    `organization`: the account ids known to be in the organization (from Organizations
    ListAccounts), or None when unknown; a peer outside it is not even tried.
    """

    def __init__(
        self,
        clients: Clients,
        role_name: str,
        organization: frozenset[str] | None = None,
        session_name: str = "peerguard-audit",
        shared_tally: bool = True,
    ) -> None:
        self.clients = clients
        self.role_name = check_role_name(role_name)
        self.organization = organization
        self.session_name = session_name
        # True: calls in other accounts count in `clients`' tally (one audit's api_calls);
        # False: each account keeps its own (the many-account audit reports them by account).
        self.shared_tally = shared_tally
        self._cache: dict[str, tuple[Clients | None, str]] = {}
        self._lock = threading.Lock()  # the many-account audit shares one across workers
        self._locks: dict[str, threading.Lock] = {}

    def role_arn(self, account_id: str) -> str:
        return (
            f"arn:{partition(self.clients.region)}:iam::{account_id}:role"
            f"{ROLE_PATH}{self.role_name}"
        )

    def clients_for(self, account_id: str) -> tuple[Clients | None, str]:
        """(clients of that account, '') or (None, why they cannot be had). The caller's own
        account is read with its own credentials."""
        with self._lock:  # one lock per account: workers assume different accounts at once
            lock = self._locks.setdefault(account_id, threading.Lock())
        with lock:
            if account_id not in self._cache:
                own = account_id == self.clients.account_id()
                got = (self.clients, "") if own else self._assume(account_id)
                with self._lock:
                    self._cache[account_id] = got
            return self._cache[account_id]

    def calls_by_account(self) -> dict[str, int]:
        """API calls made with each account's credentials (without a shared tally)."""
        with self._lock:
            return {a: c.total_calls for a, (c, _) in self._cache.items() if c is not None}

    def _assume(self, account_id: str) -> tuple[Clients | None, str]:
        arn = self.role_arn(account_id)
        if self.organization is not None and account_id not in self.organization:
            return None, (
                f"account {account_id} is outside the organization (not in its account list): "
                f"the member role trusts only PeerGuard of its own organization, so {arn} was "
                "not assumed"
            )
        try:
            other = self.clients.assume(arn, self.session_name, account_id)
            if not self.shared_tally:
                other.calls = Counter()
            return other, ""
        except ClientError as e:
            err = e.response.get("Error", {})
            code, msg = str(err.get("Code", "")), str(err.get("Message", ""))
            if code in DENIED_CODES:
                return None, (
                    f"AccessDenied assuming {arn}: the member role is not deployed in account "
                    f"{account_id} (deploy org/member-role.yaml there: make stackset-member), or "
                    "that account is outside the organization (the role trusts only "
                    "PeerGuard's function roles of its own organization)"
                )
            return None, f"could not assume {arn} ({code}: {msg})"
        except BotoCoreError as e:
            return None, f"could not assume {arn}: {e}"
