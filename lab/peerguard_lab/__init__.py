"""PeerGuard's lab: the demo and the test harness, outside the Lambda layer.

One implementation of each stand-in (the template read in Python, the stack in moto, a
loopback Slack, the emulator) shared by `peerguard demo` and the end-to-end tests. It needs
moto and PyYAML (the `demo` extra) and a repository checkout; the layer carries none of it.
"""

ACCOUNT = "123456789012"  # moto's default account: the one the stack runs in
REGION = "us-east-1"
