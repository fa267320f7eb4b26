"""PeerGuard: keep AWS VPC peering healthy and safe."""

__version__ = "0.1.0"
