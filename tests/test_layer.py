"""The Lambda layer holds peerguard and its runtime dependencies only: no moto, no demo, no lab.

The demo and the test harness live in lab/peerguard_lab, installed by the `demo` extra; the
layer is built from layers/peerguard/ (its code and requirements.txt). `.ci/run` checks the
layer `sam build` produced with `peerguard_lab.check_layer`, tested here on made-up trees.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest

from peerguard import cli
from peerguard_lab import check_layer
from peerguard_lab.template import ROOT

LAYER = ROOT / "layers" / "peerguard"
PACKAGE = LAYER / "peerguard"
LAB_ONLY = ("moto", "yaml", "peerguard_lab")  # the lab's dependencies, and the lab itself
# Build artefacts (gitignored), never part of the layer's source.
ARTEFACTS = re.compile(r"__pycache__|.*\.egg-info|.*\.pyc")


def _files(root: Path) -> list[Path]:
    return [
        p
        for p in root.rglob("*")
        if p.is_file() and not any(ARTEFACTS.fullmatch(part) for part in p.parts)
    ]


def _name(requirement: str) -> str:
    """The distribution a requirement line names, lower-cased ("moto[ec2]==5" -> "moto")."""
    return re.split(r"[\[=<>!~; ]", requirement.strip(), maxsplit=1)[0].lower()


def _requirement_names(path: Path) -> set[str]:
    lines = [line.split("#", 1)[0].strip() for line in path.read_text().splitlines()]
    return {_name(line) for line in lines if line and not line.startswith("-")}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """Every module `path` imports, and whether the import is guarded by `except ImportError`
    (an optional import, as the CLI makes of the demo extra)."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((a.name, guarded) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, guarded))
        if isinstance(node, ast.Try):
            catches = {
                n.id
                for h in node.handlers
                for n in ast.walk(h.type or ast.Name("BaseException"))
                if isinstance(n, ast.Name)
            }
            optional = guarded or bool(catches & {"ImportError", "ModuleNotFoundError"})
            for child in node.body:
                visit(child, optional)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, guarded)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(ast.parse(path.read_text(), filename=str(path)), False)
    return found


def _lab_only(module: str) -> bool:
    return module.split(".")[0] in LAB_ONLY


def test_the_layer_source_is_the_peerguard_package_and_its_requirements() -> None:
    top = {p.relative_to(LAYER).parts[0] for p in _files(LAYER)}

    assert top == {"peerguard", "requirements.txt"}
    assert not (PACKAGE / "demo").exists()
    assert {p.suffix for p in _files(PACKAGE)} <= {".py", ".typed"}


def test_no_layer_module_imports_moto_yaml_or_the_lab() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20  # the walk found the package

    hard = [
        (str(p.relative_to(PACKAGE)), m)
        for p in modules
        for m, guarded in _imports(p)
        if _lab_only(m) and not guarded
    ]
    optional = {
        (str(p.relative_to(PACKAGE)), m)
        for p in modules
        for m, guarded in _imports(p)
        if _lab_only(m) and guarded
    }

    assert hard == []
    # The one exception: `peerguard demo` imports the demo extra when it is installed.
    assert optional == {("cli.py", "peerguard_lab.demo")}


def test_the_import_walk_tells_optional_imports_from_hard_ones(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import moto.server\n"
        "def f():\n"
        "    from yaml import safe_load\n"
        "try:\n"
        "    import peerguard_lab\n"
        "except ImportError:\n"
        "    pass\n"
        "try:\n"
        "    import boto3\n"
        "except ValueError:\n"
        "    import moto\n"
    )

    assert _imports(module) == [
        ("moto.server", False),
        ("yaml", False),
        ("peerguard_lab", True),
        ("boto3", False),
        ("moto", False),
    ]


def test_the_layer_requirements_list_no_lab_dependency() -> None:
    names = _requirement_names(LAYER / "requirements.txt")

    assert "boto3" in names  # parsed
    assert not names & {"moto", "pyyaml", "peerguard-lab", "peerguard_lab"}


def test_the_demo_extra_pins_what_the_dev_requirements_pin() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extra = set(project["optional-dependencies"]["demo"])
    dev = {line.strip() for line in (ROOT / "requirements" / "dev.txt").read_text().splitlines()}

    assert {_name(r) for r in extra} == {"moto", "pyyaml"}
    assert extra <= dev
    assert not {_name(r) for r in project["dependencies"]} & {"moto", "pyyaml"}


def test_without_the_demo_extra_peerguard_demo_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "peerguard_lab.demo", None)  # import fails

    code = cli.main(["demo"])

    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR
    assert err.count("\n") == 1 and "the demo needs the demo extra" in err


# -- the built layer (`.ci/run` after `make sam-build`) -------------------------------------------


def _built(tmp_path: Path, *extra: str) -> Path:
    python = tmp_path / "PeerGuardLayer" / "python"
    for rel in ("peerguard/__init__.py", "boto3/__init__.py", *extra):
        (python / rel).parent.mkdir(parents=True, exist_ok=True)
        (python / rel).write_text("")
    return python.parent


def test_a_layer_of_peerguard_and_its_dependencies_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layer = _built(tmp_path, "pydantic/__init__.py", "aws_lambda_powertools/__init__.py")

    assert check_layer.problems(layer) == []
    assert check_layer.main([str(layer)]) == 0
    assert "no moto, demo or lab code" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("intruder", "reported"),
    [
        ("moto/__init__.py", "moto"),
        ("moto-5.2.5.dist-info/METADATA", "moto-5.2.5.dist-info"),
        ("peerguard_lab/__init__.py", "peerguard_lab"),
        ("peerguard/demo/__init__.py", "peerguard/demo"),
    ],
)
def test_a_layer_carrying_moto_or_lab_code_fails(
    tmp_path: Path, intruder: str, reported: str, capsys: pytest.CaptureFixture[str]
) -> None:
    layer = _built(tmp_path, intruder)

    assert check_layer.main([str(layer)]) == 1
    err = capsys.readouterr().err
    assert f"{layer / 'python' / reported} is in the Lambda layer" in err


def test_a_directory_that_is_not_a_built_layer_fails(tmp_path: Path) -> None:
    assert check_layer.problems(tmp_path) == [
        f"{tmp_path / 'python'} holds no peerguard package: not a built PeerGuard layer"
    ]
    assert check_layer.main([str(tmp_path)]) == 1
    assert check_layer.main([]) == 2
