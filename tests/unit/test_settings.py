"""Settings: every value validated once, with one line naming the bad variable; the
allowlist parsed strictly."""

from __future__ import annotations

import pytest

from peerguard.domain.allowlist import Allowed, AllowlistError, parse_allowlist
from peerguard.domain.plans.actions import Mode
from peerguard.settings import (
    AcceptanceSettings,
    ChangeAuditorSettings,
    SettingsError,
    SweepSettings,
)


def test_defaults_are_safe_when_nothing_is_configured() -> None:
    s = ChangeAuditorSettings.from_env({})
    assert (s.mode, s.max_changes, s.allowlist, s.mode_overrides) == (Mode.NOTIFY, 10, "", {})
    assert (s.grace_minutes, s.dedup_hours) == (10, 24)
    assert not AcceptanceSettings.from_env({}).auto_accept


def test_values_from_the_template_environment_are_parsed() -> None:
    env = {
        "PEERGUARD_MODE": "fix",
        "PEERGUARD_MAX_CHANGES": "3",
        "PEERGUARD_ALLOWLIST": "111111111111,222222222222",
        "PEERGUARD_AUTO_ACCEPT": "true",
        "PEERGUARD_PEER_REGIONS": "us-west-2,eu-west-1",
        "PEERGUARD_GRACE_MINUTES": "0",
        "PEERGUARD_MODE_OVERRIDES": "route.blackhole=dry-run",
    }
    s = ChangeAuditorSettings.from_env(env)
    assert s.mode is Mode.FIX and s.max_changes == 3
    assert s.mode_overrides == {"route.blackhole": Mode.DRY_RUN}
    assert s.peer_regions == ("us-west-2", "eu-west-1")
    assert s.grace_minutes == 0
    assert AcceptanceSettings.from_env(env).auto_accept
    assert not hasattr(SweepSettings.from_env(env), "auto_accept")  # each function its own


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("PEERGUARD_MODE", "fixx", "expected one of notify, dry-run, fix"),
        ("PEERGUARD_MAX_CHANGES", "0", "greater than or equal to 1"),
        ("PEERGUARD_MAX_CHANGES", "ten", "valid integer"),
        ("PEERGUARD_GRACE_MINUTES", "30", "less than or equal to 15"),
        ("PEERGUARD_ALLOWLIST", "12345", "'12345' is not a 12-digit account id"),
        ("PEERGUARD_AUTO_ACCEPT", "maybe", "expected true or false"),
        ("PEERGUARD_PEER_REGIONS", "us-west-2,Mars", "bad region 'Mars'"),
        ("PEERGUARD_PEER_REGIONS", "us-east-99", "unknown region 'us-east-99'"),
        ("PEERGUARD_MODE_OVERRIDES", "route.nope=fix", "unknown check id(s) route.nope"),
        ("PEERGUARD_MODE_OVERRIDES", "route.blackhole=yes", "expected one of notify"),
    ],
)
def test_a_bad_value_fails_with_one_line_naming_it(name: str, value: str, says: str) -> None:
    cls = AcceptanceSettings if name == "PEERGUARD_AUTO_ACCEPT" else ChangeAuditorSettings
    with pytest.raises(SettingsError) as err:
        cls.from_env({name: value})
    message = str(err.value)
    assert message.startswith(f"bad setting {name}={value!r}: ")
    assert says in message and "\n" not in message


def test_json_allowlist_narrows_by_region_vpc_and_cidr() -> None:
    entries = parse_allowlist(
        '[{"account_id": "111122223333", "regions": ["eu-west-1"], '
        '"vpc_ids": ["vpc-0abc1234"], "cidrs": ["10.8.0.0/16"]}]'
    )
    assert entries == (
        Allowed(
            account_id="111122223333",
            regions=frozenset({"eu-west-1"}),
            vpc_ids=frozenset({"vpc-0abc1234"}),
            cidrs=("10.8.0.0/16",),
        ),
    )


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("[{", "allowlist is not valid JSON"),
        ('[{"regions": []}]', "allowlist entry 0 account_id: Field required"),
        ('[{"account_id": "111122223333", "cidr": []}]', "entry 0 cidr: Extra inputs"),
        ('[{"account_id": "111122223333", "cidrs": ["10.0.0.0/33"]}]', "is not a CIDR block"),
        # The reproducers of issue 7: a wrong type is an error, never coerced.
        ('[{"account_id": "111122223333", "regions": [null]}]', "entry 0 regions: Input should"),
        ('[{"account_id": "111122223333", "vpc_ids": 5}]', "entry 0 vpc_ids: Input should"),
        ('[{"account_id": "111122223333", "cidrs": [[1]]}]', "entry 0 cidrs: Input should"),
        ('[{"account_id": "111122223333", "vpc_ids": "vpc-1"}]', "vpc_ids: Input should be"),
        ('[{"account_id": "111122223333", "cidrs": [5]}]', "entry 0 cidrs: Input should be"),
        ('[{"account_id": 111122223333}]', "entry 0 account_id: Input should be a valid string"),
        ('[{"account_id": "111122223333", "vpc_ids": ["subnet-1"]}]', "is not a VPC id"),
        ('[{"account_id": "111122223333", "regions": ["eu west 1"]}]', "is not a region name"),
        ("[5]", "entry 0: Input should be"),
    ],
)
def test_bad_json_allowlist_entries_are_named(raw: str, says: str) -> None:
    with pytest.raises(AllowlistError) as err:
        parse_allowlist(raw)
    assert says in str(err.value) and "\n" not in str(err.value)
