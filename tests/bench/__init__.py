"""`make bench`: PeerGuard vs a bare describe script vs Cloud Custodian on ring topologies."""
