"""JSON from outside, parsed strictly: whatever a sender puts in a body is bad input or data.

Python's json module accepts more than JSON and fails in ways a caller would not catch as bad
input: it raises RecursionError on deep nesting, reads `NaN`, `Infinity` and `1e400` as
floats no database stores, and decodes `"\\ud800"` to a lone surrogate no UTF-8 encoder takes.
Data that parsed but nests deeper than anything real (a few hundred levels) still trips the
recursion limit later, when a library or the database walks it. `parse` turns all of that
into one `MalformedPayload`.
"""

from __future__ import annotations

import json
import math
from typing import Any

# Stripe events and Telegram updates nest about a dozen levels (an event's invoice lines'
# price's recurring; an update's message's reply's entities); 64 leaves room to grow.
MAX_DEPTH = 64


class MalformedPayload(ValueError):
    """A body that is not JSON Portier can take."""


def _constant(name: str) -> float:
    raise MalformedPayload(f"{name} is not JSON")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise MalformedPayload("a number out of range")
    return number


def parse(body: bytes | str, *, text: bool = False, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a JSON body, refusing deep nesting, non-finite numbers and, with `text`,
    strings that cannot be encoded as UTF-8 (lone surrogates)."""
    try:
        data = json.loads(body, parse_constant=_constant, parse_float=_finite)
    except RecursionError:  # nesting deeper than the interpreter's stack
        raise MalformedPayload("nested too deeply") from None
    except MalformedPayload:
        raise
    except ValueError as error:  # JSONDecodeError, not UTF-8, an integer of 4,301+ digits
        raise MalformedPayload(f"not JSON: {type(error).__name__}") from None
    _check(data, text=text, max_depth=max_depth)
    return data


def _check(data: Any, *, text: bool, max_depth: int) -> None:
    # An explicit stack: walking recursively is what this guards against.
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            items: Any = node.values()
            if text:
                for key in node:
                    _encodable(key)
        elif isinstance(node, list):
            items = node
        else:
            if text and isinstance(node, str):
                _encodable(node)
            continue
        if depth > max_depth:
            raise MalformedPayload("nested too deeply")
        for item in items:
            if isinstance(item, dict | list):
                stack.append((item, depth + 1))
            elif text and isinstance(item, str):
                _encodable(item)


def _encodable(value: str) -> None:
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedPayload("a string that is not valid Unicode") from None
