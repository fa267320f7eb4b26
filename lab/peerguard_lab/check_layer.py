"""`python -m peerguard_lab.check_layer .aws-sam/build/PeerGuardLayer`: fail when the layer
`sam build` produced carries the lab (moto, the demo, this package) instead of only peerguard
and its runtime dependencies."""

from __future__ import annotations

import sys
from pathlib import Path

FORBIDDEN = ("moto", "peerguard_lab", "peerguard/demo")


def problems(layer: Path) -> list[str]:
    """What is wrong with the built layer at `layer` (the directory holding python/)."""
    python = layer / "python"
    if not (python / "peerguard" / "__init__.py").is_file():
        return [f"{python} holds no peerguard package: not a built PeerGuard layer"]
    found = [name for name in FORBIDDEN if (python / name).exists()]
    found += [p.name for p in python.glob("*.dist-info") if p.name.lower().startswith("moto-")]
    return [f"{python / name} is in the Lambda layer" for name in found]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m peerguard_lab.check_layer <.aws-sam/build/PeerGuardLayer>")
        return 2
    found = problems(Path(argv[0]))
    for p in found:
        print(f"check_layer: {p}", file=sys.stderr)
    if not found:
        print(f"check_layer: {argv[0]} holds peerguard and no moto, demo or lab code")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
