"""Settings: every value validated once, with one line naming the bad variable."""

from __future__ import annotations

import pytest

from peerguard.checks import Allowed
from peerguard.settings import Settings, SettingsError, parse_allowlist


def test_defaults_are_safe_when_nothing_is_configured() -> None:
    s = Settings.from_env({})
    assert (s.mode, s.max_changes, s.allowlist, s.auto_accept) == ("notify", 10, None, False)
    assert (s.grace_minutes, s.dedup_hours) == (10, 24)


def test_values_from_the_template_environment_are_parsed() -> None:
    s = Settings.from_env(
        {
            "PEERGUARD_MODE": "fix",
            "PEERGUARD_MAX_CHANGES": "3",
            "PEERGUARD_ALLOWLIST": "111111111111,222222222222",
            "PEERGUARD_AUTO_ACCEPT": "true",
            "PEERGUARD_PEER_REGIONS": "us-west-2,eu-west-1",
            "PEERGUARD_GRACE_MINUTES": "0",
        }
    )
    assert s.mode == "fix" and s.max_changes == 3 and s.auto_accept
    assert s.allowlist == (Allowed("111111111111"), Allowed("222222222222"))
    assert s.peer_regions == ("us-west-2", "eu-west-1")
    assert s.grace_minutes == 0


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("PEERGUARD_MODE", "fixx", "expected one of notify, dry-run, fix"),
        ("PEERGUARD_MAX_CHANGES", "0", "from 1 to 100"),
        ("PEERGUARD_MAX_CHANGES", "ten", "invalid literal"),
        ("PEERGUARD_GRACE_MINUTES", "30", "from 0 to 15"),
        ("PEERGUARD_ALLOWLIST", "12345", "bad account id '12345'"),
        ("PEERGUARD_AUTO_ACCEPT", "maybe", "expected true or false"),
        ("PEERGUARD_PEER_REGIONS", "us-west-2,Mars", "bad region 'Mars'"),
    ],
)
def test_a_bad_value_fails_with_one_line_naming_it(name: str, value: str, says: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({name: value})
    message = str(err.value)
    assert message.startswith(f"bad setting {name}={value!r}: ")
    assert says in message and "\n" not in message


def test_json_allowlist_narrows_by_region_vpc_and_cidr() -> None:
    entries = parse_allowlist(
        '[{"account_id": "111122223333", "regions": ["eu-west-1"], '
        '"vpc_ids": ["vpc-1"], "cidrs": ["10.8.0.0/16"]}]'
    )
    assert entries == (
        Allowed("111122223333", frozenset({"eu-west-1"}), frozenset({"vpc-1"}), ("10.8.0.0/16",)),
    )


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("[{", "not valid JSON"),
        ('[{"regions": []}]', "entry 0 must be an object with an account_id"),
        ('[{"account_id": "111122223333", "cidr": []}]', "unknown keys: cidr"),
        ('[{"account_id": "111122223333", "cidrs": ["10.0.0.0/33"]}]', "entry 0"),
    ],
)
def test_bad_json_allowlist_entries_are_named(raw: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_allowlist(raw)
