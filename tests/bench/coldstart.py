"""Cold start: each handler's import time beside `import boto3`, side by side.

    python -m tests.bench.coldstart [--repeats 9] [--hot-spots 8]

As Lambda imports a handler: a fresh interpreter per sample, the function's directory as
the working directory and first on sys.path (Lambda's /var/task), the layer's package next
(/opt/python), the template's environment. The time is taken inside the interpreter around
`import app` (and around `import boto3` for the baseline), so interpreter start-up, which
both pay alike, is left out. Samples interleave the handlers and the baseline; medians.
Byte code: `sam build` extracts the dependencies' wheels and copies peerguard as source,
so the built layer holds no .pyc at all, and Lambda's /opt is read-only: every cold start
compiles what it imports. `--as-shipped` measures peerguard compiled at import (its
caches removed, none written; the dependencies keep this virtualenv's caches, so boto3
and the rest, compiled too in Lambda, are not); by default caches are written and warmed
first, as a layer shipping compiled byte code would import.
`--hot-spots N` adds each handler's N largest self times from `python -X importtime`.
Every functions/*/app.py is measured, so a new function is picked up by itself.

Handlers import their use case on the first call, so the import alone is not the whole
cold start: "+ first call" also imports every module the handler's body imports (all its
paths, read from its source), which is what the first invocation pays on top.
"""

from __future__ import annotations

import argparse
import ast
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "peerguard"
TARGET = 1.5  # each handler imports in at most 1.5x `import boto3` (issue 11, item 7)

# CPU time of the importing process: importing is CPU-bound, so on an idle machine this
# is the wall time, and on a shared one (CI, other jobs) it does not count their load.
TIMED = (
    "import time; t = time.process_time(); import {module}; print((time.process_time() - t) * 1000)"
)
ENV = {  # what the template sets for every function (Globals) and Lambda itself
    "POWERTOOLS_SERVICE_NAME": "peerguard",
    "POWERTOOLS_METRICS_NAMESPACE": "PeerGuard",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_LAMBDA_FUNCTION_NAME": "coldstart",
    "PEERGUARD_MODE": "notify",
    "PEERGUARD_TABLE": "StateTable",
    "PEERGUARD_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:AlertTopic",
}


def first_call_modules(app: Path) -> list[str]:
    """The modules `lambda_handler` imports in its body (every path)."""
    tree = ast.parse(app.read_text())
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "lambda_handler":
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom) and inner.module:
                    found.append(inner.module)
                elif isinstance(inner, ast.Import):
                    found.extend(a.name for a in inner.names)
    return found


def handlers() -> dict[str, Path]:
    return {p.parent.name: p.parent for p in sorted((ROOT / "functions").glob("*/app.py"))}


AS_SHIPPED = {"PYTHONDONTWRITEBYTECODE": "1"}
MODE: dict[str, str] = {}


def _run(cwd: Path, code: str, *flags: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV, "PYTHONPATH": f"{cwd}{os.pathsep}{LAYER}"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(MODE)
    return subprocess.run(
        [sys.executable, *flags, "-c", code], cwd=cwd, env=env, capture_output=True, text=True
    )


def sample(cwd: Path, module: str) -> float:
    """Milliseconds to import `module` (a comma-separated list: all of them)."""
    done = _run(cwd, TIMED.format(module=module))
    if done.returncode:
        raise SystemExit(f"importing {module} in {cwd} failed:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


def hot_spots(cwd: Path, count: int) -> list[tuple[float, str]]:
    """The modules with the largest self time (ms) when `app` and what its first call
    imports are imported."""
    modules = ", ".join(["app", *first_call_modules(cwd / "app.py")])
    done = _run(cwd, f"import {modules}", "-X", "importtime")
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _cumulative, name = line.split(":", 1)[1].split("|")
        rows.append((int(self_us) / 1000, name.strip()))
    return sorted(rows, reverse=True)[:count]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--hot-spots", type=int, default=0)
    parser.add_argument("--as-shipped", action="store_true", help="peerguard without .pyc")
    args = parser.parse_args(argv)
    if args.as_shipped:
        for cache_dir in [*LAYER.rglob("__pycache__"), *(ROOT / "functions").rglob("__pycache__")]:
            shutil.rmtree(cache_dir)
        MODE.update(AS_SHIPPED)
    found = handlers()
    for cwd in found.values():  # warm the byte-code caches
        sample(cwd, "app")
    times: dict[str, list[float]] = {name: [] for name in ["boto3", *found]}
    whole: dict[str, list[float]] = {name: [] for name in found}
    later = {name: first_call_modules(cwd / "app.py") for name, cwd in found.items()}
    for _ in range(args.repeats):
        times["boto3"].append(sample(ROOT, "boto3"))
        for name, cwd in found.items():
            times[name].append(sample(cwd, "app"))
            whole[name].append(sample(cwd, ", ".join(["app", *later[name]])))
    base = statistics.median(times["boto3"])
    how = "peerguard compiled at import, as shipped" if args.as_shipped else "byte code cached"
    print(f"cold start: import CPU time, median of {args.repeats} fresh interpreters (ms; {how})")
    print(
        f"{'import':<34}{'median':>8}{'min':>7}{'max':>7}{'x boto3':>9}"
        f"{'+ first call':>14}{'x boto3':>9}"
    )
    worst = 0.0
    for name, samples in times.items():
        median = statistics.median(samples)
        ratio = median / base
        label = "boto3" if name == "boto3" else f"functions/{name}/app.py"
        row = f"{label:<34}{median:>8.0f}{min(samples):>7.0f}{max(samples):>7.0f}{ratio:>8.2f}x"
        if name != "boto3":
            worst = max(worst, ratio)
            total = statistics.median(whole[name])
            row += f"{total:>14.0f}{total / base:>8.2f}x"
        print(row)
    verdict = "within" if worst <= TARGET else "OVER"
    print(f"worst handler: {worst:.2f}x boto3 ({verdict} the {TARGET}x target)")
    for name, cwd in found.items() if args.hot_spots else ():
        spots = ", ".join(f"{n} {ms:.1f}" for ms, n in hot_spots(cwd, args.hot_spots))
        print(f"hot spots of {name} (self ms): {spots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
