"""Documentation generated from the catalogue, so README, CLI and alerts share one source."""

from __future__ import annotations

from peerguard.domain import catalogue


def catalogue_markdown() -> str:
    rows = [
        "| id | severity | what it finds | why it matters | how to fix | PeerGuard fixes it |",
        "|---|---|---|---|---|---|",
    ]
    for e in catalogue.entries().values():
        auto = e.automatic_fix or "no"
        rows.append(f"| `{e.id}` | {e.severity.value} | {e.title} | {e.risk} | {e.fix} | {auto} |")
    return "\n".join(rows) + "\n"
