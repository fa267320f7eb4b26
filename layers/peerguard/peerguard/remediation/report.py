"""What remediation did, as a table for people. Pure."""

from __future__ import annotations

import textwrap

from peerguard.remediation.apply import RemediationResult, Status

WIDTH = 100
_ORDER = (
    Status.APPLIED,
    Status.VERIFIED,
    Status.FAILED,
    Status.PENDING,
    Status.SKIPPED,
    Status.PROPOSED,
)


def table(result: RemediationResult) -> str:
    counts = ", ".join(
        f"{len(result.with_status(s))} {s.value}" for s in _ORDER if result.with_status(s)
    )
    lines = [
        f"Remediation (mode {result.default_mode.value}, at most {result.max_changes} "
        f"changes): {counts or 'nothing to do'}"
    ]
    for status in _ORDER:
        for o in result.with_status(status):
            a = o.action
            lines.append(
                f"  {status.value.upper():<9} {a.finding.check_id:<34} {a.finding.resource_id}"
            )
            if a.call is not None:
                lines.append(f"            call: {a.call}")
            if status is Status.APPLIED and a.undo is not None:
                lines.append(f"            undo: {a.undo}")
            lines.extend(f"            {w}" for w in textwrap.wrap(o.message, WIDTH - 12))
    return "\n".join(lines) + "\n"
