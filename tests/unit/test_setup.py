"""setup.no_trail: does any trail feed EventBridge the EC2 calls of this region?"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from peerguard.aws.clients import Clients
from peerguard.aws.trails import trails_of
from peerguard.domain.setup import Trail, management_writes, no_trail

ACCOUNT, REGION = "123456789012", "us-east-1"


def trail(**kw: object) -> Trail:
    base: dict[str, object] = {
        "arn": "arn:aws:cloudtrail:us-east-1:123456789012:trail/t",
        "home_region": REGION,
        "multi_region": False,
        "logging": True,
        "management_writes": True,
    }
    return Trail(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("trails", "flagged"),
    [
        ([], True),
        ([trail()], False),
        ([trail(logging=False)], True),
        ([trail(management_writes=False)], True),
        ([trail(home_region="eu-west-1")], True),  # a single-region trail elsewhere
        ([trail(home_region="eu-west-1", multi_region=True)], False),
        ([trail(logging=False), trail(multi_region=True, home_region="eu-west-1")], False),
    ],
)
def test_a_region_is_covered_only_by_a_logging_trail_of_management_writes(
    trails: list[Trail], flagged: bool
) -> None:
    found = no_trail(trails, ACCOUNT, REGION)
    assert (found is not None) is flagged
    if found is not None:
        assert found.check_id == "setup.no_trail" and found.resource_id == f"cloudtrail:{REGION}"


@pytest.mark.parametrize(
    ("basic", "advanced", "records"),
    [
        ([], [], True),  # no selectors: the default records all management events
        ([{"ReadWriteType": "All", "IncludeManagementEvents": True}], [], True),
        ([{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}], [], False),
        ([{"ReadWriteType": "All", "IncludeManagementEvents": False}], [], False),
        (
            [],
            [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}],
            True,
        ),
        (
            [],
            [
                {
                    "FieldSelectors": [
                        {"Field": "eventCategory", "Equals": ["Management"]},
                        {"Field": "readOnly", "Equals": ["true"]},
                    ]
                }
            ],
            False,
        ),
        ([], [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]}]}], False),
    ],
)
def test_event_selectors_that_record_management_writes(
    basic: list[dict], advanced: list[dict], records: bool
) -> None:
    assert management_writes(basic, advanced) is records


def test_trails_are_read_with_their_status_and_custom_selectors() -> None:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    clients = Clients(session, default_region=REGION)
    ct = clients.client("cloudtrail", REGION)
    arn = "arn:aws:cloudtrail:us-east-1:123456789012:trail/reads-only"
    with Stubber(ct) as stub:
        stub.add_response(
            "describe_trails",
            {
                "trailList": [
                    {"TrailARN": arn, "HomeRegion": REGION, "HasCustomEventSelectors": True}
                ]
            },
            {"includeShadowTrails": True},
        )
        stub.add_response("get_trail_status", {"IsLogging": True}, {"Name": arn})
        stub.add_response(
            "get_event_selectors",
            {"EventSelectors": [{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}]},
            {"TrailName": arn},
        )
        trails, warning = trails_of(clients, REGION)
    assert warning == "" and trails == [
        Trail(arn, REGION, multi_region=False, logging=True, management_writes=False)
    ]
    assert no_trail(trails or [], ACCOUNT, REGION) is not None


def test_a_denied_read_is_a_warning_not_a_finding() -> None:
    session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=REGION)
    clients = Clients(session, default_region=REGION)
    with Stubber(clients.client("cloudtrail", REGION)) as stub:
        stub.add_client_error("describe_trails", "AccessDeniedException", http_status_code=400)
        trails, warning = trails_of(clients, REGION)
    assert trails is None
    assert "cannot read CloudTrail in us-east-1 (AccessDeniedException)" in warning
