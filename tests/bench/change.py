"""Issue 3: one change-auditor invocation, and cold-start import time of every handler.

Change auditor: `peerguard.usecases.change.on_change` is fed the sample events/CreateRoute.json,
edited to name a route table and peering of the generated ring, against the same loopback
moto server as the audit benchmark. Settings are the defaults (no state table, topic or
grace queue), so the invocation is: parse the event, scoped read, all checks, log. Each
size is timed in a fresh Runtime (new session and clients: a container's first event) and
in a warm one (clients reused: every later event). The API call count must not grow with
the account.

Import time: `python -X importtime -c "import app"` for each functions/<name>/app.py (with
the layer on PYTHONPATH), Cloud Custodian's `import c7n.resources.vpc` beside it, and
`import boto3` in each virtualenv as the baseline. Every interpreter compiles into one
fresh bytecode cache first (a warm-up run), so no side pays for compiling its sources.
"""

from __future__ import annotations

import copy
import gc
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peerguard.aws.clients import Clients
from peerguard.demo.emulator import REGION, Emulator
from peerguard.observability import logger, metrics
from peerguard.settings import ChangeAuditorSettings as Settings
from peerguard.usecases.change import on_change
from peerguard.usecases.pipeline import Runtime
from tests.bench.counting import RequestCounter
from tests.bench.ring import Ring, cidr

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_EVENT = ROOT / "events" / "CreateRoute.json"
HANDLERS = ("change_auditor", "acceptance", "sweep")


# -- one change-auditor invocation -------------------------------------------------


def create_route_event(ring: Ring) -> dict[str, Any]:
    """The sample CreateRoute event, naming VPC 1's second table and its route to VPC 2.

    That table also lacks its return route to VPC 0 (a planted defect), so the scoped
    audit has something to find.
    """
    event = json.loads(SAMPLE_EVENT.read_text())
    params = event["detail"]["requestParameters"]
    params["routeTableId"] = ring.tables[1][1]
    params["destinationCidrBlock"] = cidr(2)
    params["vpcPeeringConnectionId"] = ring.ring_pcx[1]
    return event


@dataclass
class Invocation:
    seconds: float
    calls: Counter[str]
    response_bytes: int
    result: dict[str, Any]


@dataclass
class ChangeRow:
    size: int
    cold: list[Invocation] = field(default_factory=list)  # fresh Runtime each time
    warm: list[Invocation] = field(default_factory=list)  # one Runtime, clients reused


def _runtime(emu: Emulator) -> Runtime:
    return Runtime(Clients(emu.session(), endpoint_url=emu.url, default_region=REGION), Settings())


def _invoke(
    rt: Runtime | None, emu: Emulator, counter: RequestCounter, event: dict[str, Any]
) -> Invocation:
    gc.collect()
    before, bytes_before = counter.snapshot(), counter.bytes_snapshot()
    started = time.perf_counter()
    result = on_change(rt or _runtime(emu), copy.deepcopy(event))
    seconds = time.perf_counter() - started
    metrics.clear_metrics()  # what the handler's log_metrics decorator does after each event
    read = sum(counter.bytes_snapshot().values()) - sum(bytes_before.values())
    return Invocation(seconds, counter.since(before), read, result)


def measure_change(emu: Emulator, counter: RequestCounter, ring: Ring, repeats: int) -> ChangeRow:
    logger.setLevel("ERROR")  # no log line per finding in the benchmark's output
    event = create_route_event(ring)
    row = ChangeRow(ring.size)
    warm = _runtime(emu)
    _invoke(warm, emu, counter, event)  # warm-up: first imports, and the warm Runtime's clients
    for _ in range(repeats):
        row.cold.append(_invoke(None, emu, counter, event))
        row.warm.append(_invoke(warm, emu, counter, event))
    return row


def change_table(rows: list[ChangeRow], repeats: int) -> tuple[str, list[str]]:
    lines = [
        f"| peerings | Runtime | wall time (median of {repeats}) | API calls (server-side) "
        "| calls | response KB | status | findings |",
        "|---:|---|---:|---:|---|---:|---|---:|",
    ]
    counts: dict[str, set[int]] = {"fresh": set(), "warm": set()}
    for row in rows:
        for kind, runs in (("fresh", row.cold), ("warm", row.warm)):
            last = runs[-1]
            total = sum(last.calls.values())
            counts[kind].add(total)
            detail = ", ".join(f"{k.split(':')[1]} {n}" for k, n in sorted(last.calls.items()))
            lines.append(
                f"| {row.size} | {kind} | {statistics.median(r.seconds for r in runs):.3f} s "
                f"| {total} | {detail} | {last.response_bytes / 1024:.0f} "
                f"| {last.result.get('status')} "
                f"| {last.result.get('findings', '-')} |"
            )
    notes = [
        f"- Change auditor API calls, {kind} Runtime: {sorted(n)} across sizes "
        f"({'the same at every size' if len(n) == 1 else 'NOT the same: grows with the account'})"
        for kind, n in counts.items()
    ]
    notes.append(
        "- The event is events/CreateRoute.json naming ring VPC 1's second table and its route "
        "to VPC 2; default Settings (no state table, topic or grace queue: findings are "
        "logged, not notified, so no DynamoDB or SNS calls). A fresh Runtime builds its "
        "session and clients inside the timing, as a container's first event does."
    )
    notes.append(
        "- moto ignores the filters of DescribeVpcPeeringConnections and returns every "
        "peering of the account, so the response size (and wall time) of the scoped read "
        "grows with the account here; EC2 applies those filters server-side. PeerGuard "
        "re-applies every filter in code, so its findings do not change."
    )
    return "\n".join(lines), notes


# -- cold-start import time --------------------------------------------------------


@dataclass
class ImportTime:
    label: str
    python: str
    statement: str
    module: str  # the top-level module whose cumulative time is read
    pythonpath: str = ""
    micros: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.micros) / 1e6


def _cumulative_us(stderr: str, module: str) -> int:
    """The cumulative microseconds of `module`'s top-level (unindented) importtime line."""
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line.split("|")
        if len(parts) == 3 and parts[2].rstrip() == f" {module}":
            return int(parts[1])
    raise RuntimeError(f"no importtime line for {module!r}:\n{stderr[-2000:]}")


def _run_import(item: ImportTime, pycache: str) -> int:
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")
    }
    env["PYTHONPYCACHEPREFIX"] = pycache
    if item.pythonpath:
        env["PYTHONPATH"] = item.pythonpath
    proc = subprocess.run(
        [item.python, "-X", "importtime", "-c", item.statement],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{item.label}: {item.statement!r} failed:\n{proc.stderr[-2000:]}")
    return _cumulative_us(proc.stderr, item.module)


def import_items(python: str, c7n_python: str | None) -> list[ImportTime]:
    layer = str(ROOT / "layers" / "peerguard")
    items = [ImportTime("boto3 (PeerGuard's virtualenv)", python, "import boto3", "boto3")]
    for name in HANDLERS:
        path = os.pathsep.join((layer, str(ROOT / "functions" / name)))
        items.append(ImportTime(f"functions/{name}/app.py", python, "import app", "app", path))
    if c7n_python:
        items.append(
            ImportTime("boto3 (Custodian's virtualenv)", c7n_python, "import boto3", "boto3")
        )
        items.append(
            ImportTime(
                "Cloud Custodian c7n.resources.vpc",
                c7n_python,
                "import c7n.resources.vpc",
                "c7n.resources.vpc",
            )
        )
    return items


def measure_imports(items: list[ImportTime], repeats: int) -> list[ImportTime]:
    with tempfile.TemporaryDirectory(prefix="peerguard-bench-pyc-") as pycache:
        for item in items:
            _run_import(item, pycache)  # warm-up: compile into the shared bytecode cache
        for _ in range(repeats):
            for item in items:  # interleaved, like the wall-time runs
                item.micros.append(_run_import(item, pycache))
    return items


def import_table(items: list[ImportTime], repeats: int) -> str:
    base = {i.python: i.median for i in items if i.module == "boto3"}
    lines = [
        f"| module | cumulative import time (median of {repeats}) | vs `import boto3` (same "
        "virtualenv) |",
        "|---|---:|---:|",
    ]
    for i in items:
        lines.append(f"| {i.label} | {i.median * 1000:.0f} ms | {i.median / base[i.python]:.2f}x |")
    return "\n".join(lines)
