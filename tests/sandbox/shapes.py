"""Check sandbox answers against Stripe's example objects (tests/fixtures/stripe)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLES: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "stripe" / "examples.json").read_text()
)["resources"]
LIST_KEYS = {"object", "data", "has_more", "url"}


def missing_keys(value: Any, where: str = "$") -> list[str]:
    """Return `path: key` for every top-level key of Stripe's example an object lacks."""
    problems: list[str] = []
    if isinstance(value, list):
        for index, item in enumerate(value):
            problems += missing_keys(item, f"{where}[{index}]")
        return problems
    if not isinstance(value, dict):
        return problems
    kind = value.get("object") if isinstance(value.get("object"), str) else None
    if kind == "list":
        problems += [f"{where}: {key}" for key in sorted(LIST_KEYS - value.keys())]
    elif kind in EXAMPLES and not value.get("deleted"):
        problems += [f"{where} ({kind}): {k}" for k in sorted(EXAMPLES[kind].keys() - value.keys())]
    for key, child in value.items():
        problems += missing_keys(child, f"{where}.{key}")
    return problems


def kinds(value: Any) -> set[str]:
    """Return every `object` type found in a nested answer."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= kinds(item)
    elif isinstance(value, dict):
        if isinstance(value.get("object"), str):
            found.add(value["object"])
        for child in value.values():
            found |= kinds(child)
    return found
