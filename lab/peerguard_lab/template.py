"""template.yaml read in Python: CloudFormation short tags kept as their long forms."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]  # lab/peerguard_lab/template.py -> the checkout
TEMPLATE = ROOT / "template.yaml"
EVENTS = ROOT / "events"


class NoCheckout(RuntimeError):
    """template.yaml, events/ or functions/ are missing: the lab runs from a repo checkout."""


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short tags: !Ref x -> {"Ref": "x"}, !GetAtt a.b -> {"Fn::GetAtt":
    ["a", "b"]}, any other !Tag -> {"Fn::Tag": ...}."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


def load(root: Path = ROOT) -> dict[str, Any]:
    """The template at `root`; NoCheckout, plainly worded, when there is no checkout there."""
    path = root / "template.yaml"
    if not path.is_file() or not (root / "events").is_dir():
        raise NoCheckout(
            f"no template.yaml and events/ at {root}: the lab runs from a repository "
            "checkout (the installed package does not carry them)"
        )
    return dict(yaml.load(path.read_text(), Loader=CfnLoader))


@cache
def template() -> dict[str, Any]:
    """The checkout's template, read once (callers must not modify it)."""
    return load(ROOT)


def functions() -> dict[str, dict[str, Any]]:
    """The template's AWS::Serverless::Function resources by logical id."""
    return {
        name: res
        for name, res in template()["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }
