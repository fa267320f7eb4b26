"""Read template.yaml in tests, with the loader the demo uses (!Ref x -> {"Ref": "x"})."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from peerguard.demo.replay import cfn_loader

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"


@cache
def template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=cfn_loader())


def functions() -> dict[str, dict[str, Any]]:
    return {
        name: res
        for name, res in template()["Resources"].items()
        if res["Type"] == "AWS::Serverless::Function"
    }
