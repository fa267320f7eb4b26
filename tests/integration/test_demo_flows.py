"""The demo's flow act: planted anomalies found through the analyzer handler, once."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from peerguard_lab.demo.flows import SCANNER, render_flow_demo, run_flow_demo
from peerguard_lab.emulator import Emulator


def test_the_flow_act_finds_the_scan_and_the_spike_once_and_draws_them(tmp_path: Path) -> None:
    with Emulator() as emu:
        demo = run_flow_demo(emu, tmp_path / "flows.html")
    assert demo.ok, demo.first
    assert demo.first["windows"] == 13 and demo.second["windows"] == 0
    assert demo.first["records"]["flows"] == demo.first["records"]["seen_twice"] > 0
    (message,) = demo.slack
    assert SCANNER in str(message) and demo.pcx in str(message)
    lines = render_flow_demo(demo)
    assert len(lines) <= 50, lines
    assert not [line for line in lines if len(line) > 100 and not line.startswith("Chart")]
    assert lines[-1].endswith("as expected")
    page = (tmp_path / "flows.html").read_text()
    root = ET.fromstring(page.split("\n", 1)[1])
    ns = {"svg": "http://www.w3.org/2000/svg"}
    marked = [g.get("data-window") for g in root.iterfind(".//svg:g[@class='anomaly']", ns)]
    assert len(marked) == 1  # both findings are in the same window
