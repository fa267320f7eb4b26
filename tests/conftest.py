"""Shared fixtures. AWS is always moto here: fake credentials, no network."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Set before boto3 is imported anywhere: tests must never reach real AWS.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SECURITY_TOKEN="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    MOTO_EC2_LOAD_DEFAULT_AMIS="false",
    POWERTOOLS_METRICS_NAMESPACE="PeerGuard",
    POWERTOOLS_SERVICE_NAME="peerguard",
    POWERTOOLS_DEV="false",
)
os.environ.pop("AWS_PROFILE", None)
os.environ.pop("AWS_ENDPOINT_URL", None)

import boto3
from moto import mock_aws
from moto.moto_api._internal.models import moto_api_backend

from peerguard.aws.clients import Clients

ACCOUNT = "123456789012"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def _moto() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def aws(_moto: None) -> Iterator[None]:
    """In-process moto, started once per session and reset for every test."""
    moto_api_backend.reset()
    yield


@pytest.fixture
def ec2(aws: None):  # type: ignore[no-untyped-def]
    return boto3.client("ec2", region_name=REGION)


@pytest.fixture
def clients(aws: None) -> Clients:
    return Clients(boto3.Session(region_name=REGION), default_region=REGION)
