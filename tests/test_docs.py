"""The README's check catalogue is generated from the check metadata: keep them equal."""

from __future__ import annotations

import re

from peerguard.docs import catalogue_markdown
from peerguard_lab.template import ROOT


def test_readme_catalogue_matches_the_registered_checks() -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- catalogue:start -->\n(.*?)<!-- catalogue:end -->", readme, re.S)
    assert block, "README has no catalogue block"
    assert block.group(1) == catalogue_markdown(), (
        "regenerate it with peerguard.docs.catalogue_markdown()"
    )
