"""The one allowlist provider: the stack parameter, or the JSON in an SSM parameter.

Every use case and the CLI read the allowlist through here, so the sweep, the change
auditor and the acceptance function always judge against the same list. The SSM value is
read through Powertools Parameters and cached for `max_age` seconds in a warm container.
A parameter that cannot be read or parsed is an `Allowlist` with an error (and no
entries): never an exception, never an empty list that would "allow nothing".
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError
from botocore.exceptions import ClientError

from peerguard.aws.reader import DENIED
from peerguard.aws.regions import known_regions
from peerguard.domain.allowlist import (
    ENV_SOURCE,
    NO_ALLOWLIST,
    Allowed,
    Allowlist,
    AllowlistError,
    parse_allowlist,
)

DEFAULT_MAX_AGE = 300  # seconds a warm container trusts the SSM value it read
IAM_ACTION = "ssm:GetParameter"


class AllowlistProvider:
    def __init__(
        self,
        env_value: str = "",
        parameter: str = "",
        ssm: Any = None,
        max_age: int = DEFAULT_MAX_AGE,
    ) -> None:
        """`ssm`: the SSM client, needed only with a `parameter`."""
        self.env_value = env_value.strip()
        self.parameter = parameter.strip()
        self.max_age = max_age
        self._ssm = SSMProvider(boto3_client=ssm) if self.parameter else None

    def get(self) -> Allowlist:
        if self._ssm is None:
            return self._parsed(self.env_value, ENV_SOURCE) if self.env_value else NO_ALLOWLIST
        name = self.parameter
        try:
            raw = self._ssm.get(name, max_age=self.max_age, decrypt=True)
        except GetParameterError as e:
            cause = e.__context__
            if isinstance(cause, ClientError):
                err = cause.response.get("Error", {})
                code, msg = str(err.get("Code", "")), str(err.get("Message", ""))
                why = f"missing permission {IAM_ACTION}" if code in DENIED else msg
                return Allowlist(
                    None, name, f"allowlist parameter {name} could not be read ({code}: {why})"
                )
            return Allowlist(None, name, f"allowlist parameter {name} could not be read ({e})")
        return self._parsed(str(raw), name)

    @staticmethod
    def _parsed(raw: str, source: str) -> Allowlist:
        try:
            entries = parse_allowlist(raw)
            _known(entries)
        except AllowlistError as e:
            where = f"allowlist parameter {source}" if source.startswith("/") else source
            return Allowlist(None, source, f"{where} is invalid: {e}")
        return Allowlist(entries, source)


def _known(entries: tuple[Allowed, ...]) -> None:
    for i, e in enumerate(entries):
        unknown = sorted(r for r in e.regions if r not in known_regions())
        if unknown:
            raise AllowlistError(f"allowlist entry {i} regions: unknown region {unknown[0]!r}")
