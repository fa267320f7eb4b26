"""The real samples in ../shared/realdata (written by others; see its PROVENANCE.md).

A user's clone may lack the directory: its tests are skipped there. On CI (CI=true) a
missing sample is a failure, never a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


def required(path: Path) -> Path:
    """`path`, or skip the test (fail it on CI) when the sample is not there."""
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"realdata sample missing on CI: {path}")
        pytest.skip(f"realdata not available: {path}")
    return path


def skip_unless(directory: Path) -> pytest.MarkDecorator:
    """A module mark: skipped without `directory`, except on CI where the tests then fail."""
    return pytest.mark.skipif(
        not directory.is_dir() and os.environ.get("CI") != "true",
        reason=f"{directory} is absent",
    )
