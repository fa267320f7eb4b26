"""Notifications: render (pure) and deliver (Slack, SNS, Security Hub, EventBridge), after dedup.

Use cases call `dispatch(findings, coverage, now, store, notifiers, dead_letter)` with a
`FindingStore` (peerguard.state) and the notifiers the stack configured.
"""

from peerguard.notify.core import Failure, Notifier
from peerguard.notify.dispatch import DeadLetter, DispatchSummary, dispatch
from peerguard.notify.eventbus import EventBusNotifier
from peerguard.notify.securityhub import SecurityHubNotifier
from peerguard.notify.slack import SlackNotifier
from peerguard.notify.sns import SnsNotifier

__all__ = [
    "DeadLetter",
    "DispatchSummary",
    "EventBusNotifier",
    "Failure",
    "Notifier",
    "SecurityHubNotifier",
    "SlackNotifier",
    "SnsNotifier",
    "dispatch",
]
