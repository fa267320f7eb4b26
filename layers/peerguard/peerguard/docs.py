"""Documentation generated from the check metadata, so README and alerts share one source."""

from __future__ import annotations

from peerguard.checks import REGISTRY


def catalogue_markdown() -> str:
    rows = [
        "| id | severity | what it finds | why it matters | how to fix |",
        "|---|---|---|---|---|",
    ]
    for c in REGISTRY.values():
        rows.append(f"| `{c.id}` | {c.severity.value} | {c.title} | {c.risk} | {c.fix} |")
    return "\n".join(rows) + "\n"
