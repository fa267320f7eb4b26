"""Notifications: dedup by fingerprint, render (pure) and deliver to Slack, SNS, Security Hub.

Handlers call `dispatch(findings, Coverage.of_audit(result, scope), now, store, notifiers,
dead_letter)` with a `FindingStore` (peerguard.state) and the notifiers they configured.
"""

from peerguard.notify.core import Failure, Notification, Notifier, Status
from peerguard.notify.dedup import Coverage, Decision, Kind, decide
from peerguard.notify.dispatch import DeadLetter, DispatchSummary, dispatch
from peerguard.notify.securityhub import SecurityHubNotifier
from peerguard.notify.slack import SlackNotifier
from peerguard.notify.sns import SnsNotifier

__all__ = [
    "Coverage",
    "DeadLetter",
    "Decision",
    "DispatchSummary",
    "Failure",
    "Kind",
    "Notification",
    "Notifier",
    "SecurityHubNotifier",
    "SlackNotifier",
    "SnsNotifier",
    "Status",
    "decide",
    "dispatch",
]
