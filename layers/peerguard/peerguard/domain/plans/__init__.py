"""Plans: pure code that turns findings and verdicts into actions for the one executor.

Importing this package registers the catalogue entries of what the actions announce.
"""

from peerguard.domain.plans import acceptance, actions, rails, remediation  # noqa: F401
