"""Mutations of real-shaped inputs: one to three fields of a valid event changed at random.

The values are the shapes that broke PeerGuard before (a list where a string belongs, a
lone surrogate, a region with a newline, an empty id, deep nesting) plus random JSON.
"""

from __future__ import annotations

import random
from typing import Any

Json = Any


def _deep(levels: int) -> Json:
    value: Json = "rtb-0a1b2c3d"
    for _ in range(levels):
        value = {"items": [value]}
    return value


ODD_VALUES: tuple[Json, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**63,
    1.5,
    float("inf"),
    "",
    " ",
    "x" * 5000,
    "\ud83d",
    "rtb-\ud83d",
    "us-east-1\n",
    "xx-fake-9",
    "us east 1",
    "us-east-99",
    "../../etc/passwd",
    "vpc-1; DROP TABLE",
    "\x00",
    "é漢字",
    ["CreateRoute"],
    ["rtb-0a1b2c3d", 5],
    [],
    {},
    {"items": []},
    {"items": [{"item": None}]},
    {"content": 5, "tag": 1},
    _deep(40),
    _deep(300),
)


def copy_json(value: Json) -> Json:
    """A deep copy without recursion (mutated inputs can nest hundreds of levels)."""
    root: list[Json] = [None]
    stack: list[tuple[Json, Any, Any]] = [(value, root, 0)]
    while stack:
        item, parent, key = stack.pop()
        if isinstance(item, dict):
            new: Json = {}
            stack.extend((v, new, k) for k, v in item.items())
        elif isinstance(item, list):
            new = [None] * len(item)
            stack.extend((v, new, i) for i, v in enumerate(item))
        else:
            new = item
        parent[key] = new
    return root[0]


def _paths(value: Json, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `value` (iteratively: inputs may be deep)."""
    out: list[tuple[Any, ...]] = []
    stack = [(value, prefix)]
    while stack and len(out) < 5000:
        item, path = stack.pop()
        if isinstance(item, dict):
            for k, v in item.items():
                out.append((*path, k))
                stack.append((v, (*path, k)))
        elif isinstance(item, list):
            for i, v in enumerate(item):
                out.append((*path, i))
                stack.append((v, (*path, i)))
    return out


def _random_value(rng: random.Random, old: Json) -> Json:
    roll = rng.random()
    if roll < 0.55:
        return copy_json(rng.choice(ODD_VALUES))
    if roll < 0.65:
        return [old]
    if roll < 0.75:
        return str(old)
    if roll < 0.85:
        return {"items": [old]}
    alphabet = "abcdef0123456789-_/:. \n\t\"'{}[]\\\u00e9\u2028"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))


def mutate(seed: Json, rng: random.Random, changes: int | None = None) -> Json:
    """A copy of `seed` with 1 to 3 random changes (replace, delete, add, wrap)."""
    event = copy_json(seed)
    for _ in range(changes or rng.randint(1, 3)):
        paths = _paths(event)
        if not paths:
            return _random_value(rng, event)
        path = rng.choice(paths)
        parent = event
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        op = rng.random()
        if op < 0.15 and isinstance(parent, dict):
            del parent[last]
        elif op < 0.25 and isinstance(parent, dict):
            parent[rng.choice(["unexpected", "eventName", "items", "Records", ""])] = _random_value(
                rng, None
            )
        else:
            parent[last] = _random_value(rng, parent[last])
    return event
