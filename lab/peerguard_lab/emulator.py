"""An embedded AWS emulator: a moto server on loopback, and boto3 sessions that reach only it.

Nothing here reads the user's AWS configuration: while the emulator runs, credentials are
fake, config files point nowhere and profile/endpoint variables are hidden; all of it is
restored on exit.
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from peerguard.aws.clients import Clients
from peerguard_lab import ACCOUNT, REGION

__all__ = ["ACCOUNT", "HOST", "REGION", "Emulator", "fake_aws_env"]

HOST = "127.0.0.1"
FAKE_KEY = "testing"

WsgiApp = Callable[..., Any]

_HIDDEN = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_EC2",
    "AWS_ENDPOINT_URL_STS",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
)


@contextmanager
def fake_aws_env() -> Iterator[None]:
    """Fake credentials and no config files for the duration; the old environment after."""
    saved = dict(os.environ)
    for name in _HIDDEN:
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID=FAKE_KEY,
        AWS_SECRET_ACCESS_KEY=FAKE_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        MOTO_EC2_LOAD_DEFAULT_AMIS="false",  # loading every AMI makes each region slow to start
    )
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _free(port: int) -> None:
    """Fail fast: ThreadedMotoServer waits forever when its port is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            raise OSError(f"port {port} on {HOST} is in use (choose another with --port)") from None


class Emulator:
    """`with Emulator() as emu:` a fresh, empty moto server on 127.0.0.1 (any free port)."""

    def __init__(self, port: int = 0) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"bad port {port} (expected 0-65535, 0 = any free port)")
        self.port = port
        self._server: ThreadedMotoServer | None = None
        self._env = fake_aws_env()

    def __enter__(self) -> Emulator:
        if self.port:
            _free(self.port)
        self._env.__enter__()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        try:
            self._server = ThreadedMotoServer(ip_address=HOST, port=self.port, verbose=False)
            self._server.start()
            self.port = self._server.get_host_and_port()[1]
            self.reset()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._env.__exit__(None, None, None)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def reset(self) -> None:
        """Forget every resource (moto keeps state per process, not per server)."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def wrap_app(self, middleware: Callable[[WsgiApp], WsgiApp]) -> None:
        """Put a WSGI middleware in front of moto (the benchmark counts requests with it)."""
        assert self._server is not None and self._server._server is not None, "not started"
        server = self._server._server  # werkzeug's server reads `.app` on every request
        server.app = middleware(server.app)

    def session(self, region: str = REGION) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_KEY, region_name=region
        )

    def session_for(self, account_id: str, region: str = REGION) -> boto3.Session:
        """A session in another (emulated) account: moto switches account on assume_role."""
        sts = self.session(region).client("sts", endpoint_url=self.url)
        creds = sts.assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/peerguard-demo",
            RoleSessionName="peerguard-demo",
        )["Credentials"]
        return boto3.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=region,
        )

    def clients(self, region: str = REGION) -> Clients:
        return Clients(self.session(region), endpoint_url=self.url, default_region=region)
