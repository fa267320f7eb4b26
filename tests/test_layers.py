"""The package's floors, as its imports show them: domain (pure) -> use cases -> adapters.

A module may import only from its own floor and the floors below it; the domain imports no
AWS SDK, no Powertools and no clock. Checked on the source (AST), so a new import that
crosses a floor fails here, not in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "layers" / "peerguard" / "peerguard"

# What each part may import from PeerGuard itself (besides its own part).
ALLOWED: dict[str, set[str]] = {
    "domain": set(),
    "events": {"domain", "aws.regions"},  # edge parsing: well-formed and known regions
    "state": {"domain"},
    "notify": {"domain", "state"},
    "aws": {"domain", "state", "clock"},
    "settings": {"domain", "aws.regions"},
    "usecases": {
        "domain",
        "events",
        "state",
        "notify",
        "aws",
        "settings",
        "clock",
        "observability",
    },
    "render": {"domain", "usecases"},
    "chart": {"domain"},  # drawn by the CLI only
}
FORBIDDEN_IN_DOMAIN = ("boto3", "botocore", "aws_lambda_powertools", "datetime.datetime.now")


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def part_of(module: str) -> str:
    rest = module.removeprefix("peerguard.")
    head = rest.split(".")[0]
    return rest if rest in ("aws.regions",) else head


def modules(part: str) -> list[Path]:
    base = PACKAGE / part
    return sorted(base.rglob("*.py")) if base.is_dir() else [PACKAGE / f"{part}.py"]


@pytest.mark.parametrize("part", sorted(ALLOWED))
def test_each_floor_imports_only_from_itself_and_below(part: str) -> None:
    for path in modules(part):
        for module in imports(path):
            if not module.startswith("peerguard."):
                continue
            target = part_of(module)
            if target.split(".")[0] == part:
                continue
            allowed = ALLOWED[part]
            assert target in allowed or target.split(".")[0] in allowed, (
                f"{path.relative_to(PACKAGE)} imports {module}"
            )


def test_the_domain_does_no_io_and_reads_no_clock() -> None:
    for path in modules("domain"):
        text = path.read_text()
        for module in imports(path):
            assert not module.startswith(FORBIDDEN_IN_DOMAIN[:3]), f"{path.name}: {module}"
        assert "datetime.now(" not in text and "time.time(" not in text, path.name
        calls = {
            n.func.id
            for n in ast.walk(ast.parse(text))
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
        }
        assert "open" not in calls and "print" not in calls, path.name
