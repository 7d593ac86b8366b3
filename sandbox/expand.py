"""Answer objects the way Stripe does: copies, with `expand[]` paths replaced by objects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.forms import as_list
from sandbox.store import Obj, Store, snapshot

# Includable fields: left out of an object unless a request expands them (or a path below
# them), keyed by (object type, field), e.g. ("invoice", "payments"); filled by resources.
INCLUDABLE: dict[tuple[str, str], Callable[[Store, Obj], Any]] = {}


def render(store: Store, obj: Obj, params: dict[str, Any] | None = None) -> Obj:
    """Return a copy of `obj` with the request's `expand` paths expanded."""
    out = snapshot(obj)
    for path in as_list((params or {}).get("expand")):
        _expand(store, out, str(path).split("."))
    return out


def _lookup(store: Store, value: Any) -> Any:
    if isinstance(value, str) and value in store.objects:
        return snapshot(store.objects[value])
    return value


def _expand(store: Store, node: Any, parts: list[str]) -> None:
    if isinstance(node, list):
        for item in node:
            _expand(store, item, parts)
        return
    if not isinstance(node, dict):
        return
    key, rest = parts[0], parts[1:]
    if key not in node:
        include = INCLUDABLE.get((str(node.get("object")), key))
        if include is None:
            return
        node[key] = include(store, node)
    if not rest:
        value = node[key]
        node[key] = (
            [_lookup(store, v) for v in value] if isinstance(value, list) else _lookup(store, value)
        )
        return
    child = _lookup(store, node[key])
    node[key] = child
    _expand(store, child, rest)


def set_metadata(target: Obj, value: Any) -> None:
    """Apply Stripe's metadata update rules: "" clears, a key set to "" is removed."""
    if value is None:
        return
    if value == "":
        target["metadata"] = {}
        return
    if not isinstance(value, dict):
        return
    merged = dict(target.get("metadata") or {})
    for key, item in value.items():
        if item == "":
            merged.pop(key, None)
        else:
            merged[key] = str(item)
    target["metadata"] = merged


def render_list(store: Store, items: list[Obj], params: dict[str, Any], url: str) -> Obj:
    """Page a newest-first list and render it with `expand` (e.g. `data.product`)."""
    from sandbox.store import page

    return render(store, page(items, params, url), params)
