"""The flow analyzer's settings: window, pushdown thresholds, rule thresholds."""

from __future__ import annotations

import pytest

from peerguard.domain.flows.rules import Thresholds
from peerguard.settings import FlowSettings, SettingsError


def test_defaults_are_the_documented_thresholds() -> None:
    s = FlowSettings.from_env({})
    assert (s.window_minutes, s.ephemeral_from) == (15, 32768)
    assert (s.pushdown_s3_bytes, s.pushdown_log_events) == (1 << 30, 2_000_000)
    assert s.thresholds() == Thresholds()
    assert (s.athena_database, s.athena_table, s.athena_workgroup) == (
        "peerguard",
        "vpc_flow_lines",
        "primary",
    )


def test_thresholds_come_from_the_environment() -> None:
    s = FlowSettings.from_env(
        {
            "PEERGUARD_FLOW_SCAN_PORTS": "50",
            "PEERGUARD_FLOW_REJECT_SPIKE_FLOOR": "20",
            "PEERGUARD_FLOW_VOLUME_SPIKE_FACTOR": "4.5",
            "PEERGUARD_FLOW_PUSHDOWN_S3_BYTES": "0",
        }
    )
    t = s.thresholds()
    assert (t.scan_ports, t.reject_spike_floor, t.volume_spike_factor) == (50, 20, 4.5)
    assert s.pushdown_s3_bytes == 0  # always Athena


@pytest.mark.parametrize(
    ("var", "value", "message"),
    [
        ("PEERGUARD_FLOW_VOLUME_SPIKE_FACTOR", "1", "greater than 1"),
        ("PEERGUARD_FLOW_WINDOW_MINUTES", "0", "greater than or equal to 1"),
        ("PEERGUARD_FLOW_ATHENA_TABLE", "Flow-Logs", "lowercase letters, digits"),
    ],
)
def test_a_bad_value_names_its_variable(var: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"bad setting {var}='{value}': .*{message}"):
        FlowSettings.from_env({var: value})
