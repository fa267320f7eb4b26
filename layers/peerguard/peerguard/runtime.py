"""What a Lambda container keeps between invocations: settings and lazily built clients."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from peerguard.aws.clients import Clients
from peerguard.settings import Settings, settings


@dataclass(frozen=True)
class Runtime:
    clients: Clients
    settings: Settings

    @property
    def region(self) -> str:
        return self.clients.region

    @property
    def regions(self) -> list[str]:
        """The home region first, then the other regions read for cross-region peers."""
        home = self.region
        return [home, *(r for r in self.settings.peer_regions if r != home)]


@cache
def runtime() -> Runtime:
    """Built on first use in a container, never at import time."""
    return Runtime(Clients(default_region=os.environ.get("AWS_REGION")), settings())
