"""Remediation: plan (pure: finding -> exact EC2 calls + undo) and apply (inside the rails)."""

from peerguard.remediation.apply import (
    Applier,
    Outcome,
    RemediationResult,
    Status,
    remediate,
)
from peerguard.remediation.plan import Action, Call, Mode, RemediationConfig, plan, plan_all
from peerguard.remediation.record import ChangeRecord, DynamoRecorder, MemoryRecorder, Recorder

__all__ = [
    "Action",
    "Applier",
    "Call",
    "ChangeRecord",
    "DynamoRecorder",
    "MemoryRecorder",
    "Mode",
    "Outcome",
    "Recorder",
    "RemediationConfig",
    "RemediationResult",
    "Status",
    "plan",
    "plan_all",
    "remediate",
]
