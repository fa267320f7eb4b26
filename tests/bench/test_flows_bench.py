"""The flow benchmark's two sides agree, and the benchmark itself runs (`-m bench`)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from peerguard.aws.flows.engine import LogFile, analyse
from peerguard.domain.flows.aggregates import Window
from tests.bench import flows
from tests.bench.flowgen import SPAN, T0, generate, peerings, range_rows
from tests.bench.flows_reader import aggregate

INTS = ("srcport", "dstport", "protocol", "packets", "bytes")


def record(row: dict[str, str]) -> SimpleNamespace:
    """What flowlogs-reader's FlowRecord makes of a row, for the fields used."""
    values = {k: None if v == "-" else v for k, v in row.items()}
    for k in INTS:
        values[k] = None if values[k] is None else int(values[k])  # type: ignore[arg-type]
    values["start"] = datetime.fromtimestamp(int(row["start"]), UTC).replace(tzinfo=None)
    return SimpleNamespace(**values)


def test_the_python_side_makes_the_engines_aggregates(tmp_path: Path) -> None:
    path = generate(5000, tmp_path / "v2.log")
    with open(path) as f:
        reader = csv.DictReader(f, delimiter=" ")
        reader.fieldnames = [n.replace("-", "_") for n in reader.fieldnames or []]
        theirs = aggregate((record(r) for r in reader), range_rows(peerings()), T0, T0 + SPAN)
    ours = analyse([LogFile(path)], peerings(), Window(900, T0, T0 + SPAN))
    expected = {
        (f.peering_id, f.direction.value, f.window_start, f.src, f.dst, f.port, f.protocol,
         f.action, f.reply): [f.packets, f.bytes, f.records]
        for f in ours.flows
    }  # fmt: skip
    assert theirs == expected and len(expected) > 1000


@pytest.mark.bench
def test_the_benchmark_runs_side_by_side(tmp_path: Path) -> None:
    out = tmp_path / "flows.md"
    assert flows.main(["--records", "20000", "--repeats", "1", "--out", str(out)]) == 0
    table = out.read_text()
    assert "| 20,000 | plain |" in table and "| 20,000 | gzip |" in table
