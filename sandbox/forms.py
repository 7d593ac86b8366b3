"""Decode Stripe's form bracket syntax (`a[b][0][c]=v`, `expand[]=x`) into nested values."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def parse_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Turn decoded (key, value) pairs into nested dicts and lists."""
    root: dict[str, Any] = {}
    counters: dict[str, int] = {}
    for key, value in pairs:
        while "[]" in key:
            # `a[]=x&a[]=y` appends: number the slots in order of appearance.
            prefix = key[: key.index("[]")]
            slot = counters.get(prefix, 0)
            counters[prefix] = slot + 1
            key = f"{prefix}[{slot}]{key[len(prefix) + 2 :]}"
        match = _KEY.match(key)
        if not match:
            root[key] = value
            continue
        parts = [match.group(1), *_PART.findall(match.group(2))]
        _assign(root, parts, value)
    decoded: dict[str, Any] = _listify(root)
    return decoded


def parse_query(query: str) -> dict[str, Any]:
    """Decode a URL-encoded query string or body."""
    return parse_pairs(parse_qsl(query, keep_blank_values=True))


def _assign(node: dict[str, Any], parts: list[str], value: str) -> None:
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _listify(value: Any) -> Any:
    """Turn dicts whose keys are all 0..n-1 into lists, recursively."""
    if not isinstance(value, dict):
        return value
    converted = {k: _listify(v) for k, v in value.items()}
    keys = list(converted)
    if keys and all(k.isdigit() for k in keys):
        ordered = sorted(keys, key=int)
        if [int(k) for k in ordered] == list(range(len(ordered))):
            return [converted[k] for k in ordered]
    return converted


def as_list(value: Any) -> list[Any]:
    """Return a parameter that may be a single value or a list as a list."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def as_int(value: Any, param: str) -> int | None:
    """Parse an integer parameter, or None when absent."""
    from sandbox.errors import invalid

    if value is None or value == "":
        return None
    try:
        return int(str(value))
    except ValueError:
        raise invalid(f"Invalid integer: {value}", param=param) from None


def as_quantity(value: Any, param: str) -> int | None:
    """Parse an item quantity: a non-negative integer, or None when absent."""
    from sandbox.errors import invalid

    quantity = as_int(value, param)
    if quantity is not None and quantity < 0:
        raise invalid("This value must be greater than or equal to 0.", param=param)
    return quantity


def as_bool(value: Any) -> bool | None:
    """Parse a boolean parameter ("true"/"false"), or None when absent."""
    if value is None or value == "":
        return None
    return str(value).lower() in ("true", "1", "yes")
