"""boto3 clients: built lazily, retried adaptively, counted. The only place that builds them."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import boto3
from botocore.config import Config

# Adaptive retry: client-side rate limiting plus backoff on Throttling/RequestLimitExceeded.
RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="peerguard",
)


class Clients:
    """Hands out one client per (service, region, account) and counts the API calls made.

    Tests pass a `Clients` built on a moto-backed session; Lambda handlers build one at
    first use. Nothing here runs at import time.
    """

    def __init__(
        self,
        session: boto3.Session | None = None,
        endpoint_url: str | None = None,
        default_region: str | None = None,
    ) -> None:
        self._session = session
        self.endpoint_url = endpoint_url
        self._default_region = default_region
        self._cache: dict[tuple[str, str], Any] = {}
        self.calls: Counter[str] = Counter()
        self._account_id: str | None = None
        # The many-account audit may read one account from two workers at once.
        self._lock = threading.RLock()

    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            self._session = boto3.Session()
        return self._session

    @property
    def region(self) -> str:
        region = self._default_region or self.session.region_name
        if not region:
            raise ValueError("no AWS region given (use --region or set AWS_REGION)")
        return region

    def client(self, service: str, region: str | None = None) -> Any:
        region = region or self.region
        key = (service, region)
        with self._lock:
            return self._client(service, region, key)

    def _client(self, service: str, region: str, key: tuple[str, str]) -> Any:
        if key not in self._cache:
            kwargs: dict[str, Any] = {"region_name": region, "config": RETRY_CONFIG}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            c = self.session.client(service, **kwargs)
            c.meta.events.register("before-call", self._count)
            self._cache[key] = c
        return self._cache[key]

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def known_account_id(self) -> str | None:
        """The account, if it was already asked for (never calls STS)."""
        return self._account_id

    def account_id(self) -> str:
        """Who these credentials are (asked once: a warm container keeps the answer)."""
        if self._account_id is None:
            self._account_id = str(self.client("sts").get_caller_identity()["Account"])
        return self._account_id

    def assume(
        self, role_arn: str, session_name: str = "peerguard", account_id: str | None = None
    ) -> Clients:
        """Clients for another account, through an assumed role (`account_id`: whose role it
        is, known from its ARN, so nobody asks STS again)."""
        creds = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)[
            "Credentials"
        ]
        session = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        other = Clients(session, self.endpoint_url, self._default_region or self.region)
        other.calls = self.calls  # one tally for the whole audit
        other._account_id = account_id
        return other
