"""Events (recorded, listed, pushed to webhooks) and webhook endpoints."""

from __future__ import annotations

from typing import Any

from sandbox.errors import invalid
from sandbox.expand import render, render_list, set_metadata
from sandbox.forms import as_int, as_list
from sandbox.store import Obj, RouteSpec, Store, new_id, snapshot

API_VERSION = "2026-10-28.endive"


def emit(store: Store, type_: str, obj: Obj, previous: Obj | None = None) -> Obj:
    """Record an event about `obj` (its state now) and hand it to the webhook sender."""
    data: Obj = {"object": snapshot(obj)}
    if previous is not None:
        data["previous_attributes"] = {k: v for k, v in previous.items() if obj.get(k) != v}
    endpoints = [e for e in store.all("webhook_endpoint") if _wants(e, type_)]
    event: Obj = {
        "id": new_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": store.now(),
        "data": data,
        "livemode": False,
        "pending_webhooks": len(endpoints),
        "request": dict(store.request_context),
        "type": type_,
    }
    store.put(event)
    if store.on_event is not None:
        store.on_event(event)
    return event


def _wants(endpoint: Obj, type_: str) -> bool:
    if endpoint.get("status") != "enabled":
        return False
    enabled = endpoint.get("enabled_events") or []
    return "*" in enabled or type_ in enabled


def endpoints_for(store: Store, type_: str) -> list[tuple[str, str]]:
    """Return (url, secret) of every enabled endpoint listening to this event type."""
    return [
        (e["url"], store.webhook_secrets[e["id"]])
        for e in reversed(store.all("webhook_endpoint"))
        if _wants(e, type_)
    ]


def _type_matches(pattern: str, type_: str) -> bool:
    if pattern.endswith("*"):
        return type_.startswith(pattern[:-1])
    return pattern == type_


def list_events(store: Store, params: dict[str, Any]) -> Obj:
    """GET /v1/events with type, types[], created[gte|gt|lte|lt] and cursors."""
    wanted = [str(t) for t in as_list(params.get("types"))]
    if params.get("type"):
        wanted.append(str(params["type"]))
    created = params.get("created")
    bounds: dict[str, int] = {}
    if isinstance(created, dict):
        bounds = {k: as_int(v, f"created[{k}]") or 0 for k, v in created.items()}
    elif created not in (None, ""):
        bounds = {"eq": as_int(created, "created") or 0}

    def keep(event: Obj) -> bool:
        if wanted and not any(_type_matches(p, event["type"]) for p in wanted):
            return False
        c = event["created"]
        checks = {
            "gte": lambda b: c >= b,
            "gt": lambda b: c > b,
            "lte": lambda b: c <= b,
            "lt": lambda b: c < b,
            "eq": lambda b: c == b,
        }
        return all(checks[k](b) for k, b in bounds.items() if k in checks)

    return render_list(store, store.all("event", keep), params, "/v1/events")


def retrieve_event(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/events/{id}."""
    return render(store, store.get(id, "event", "event"), params)


def create_endpoint(store: Store, params: dict[str, Any], secret: str | None = None) -> Obj:
    """POST /v1/webhook_endpoints: the answer is the only one that shows `secret`."""
    url = params.get("url")
    if not url:
        raise invalid("Missing required param: url.", param="url")
    events = [str(e) for e in as_list(params.get("enabled_events"))]
    if not events:
        raise invalid("Missing required param: enabled_events.", param="enabled_events")
    endpoint: Obj = {
        "id": new_id("we_"),
        "object": "webhook_endpoint",
        "api_version": params.get("api_version"),
        "application": None,
        "created": store.now(),
        "description": params.get("description"),
        "enabled_events": events,
        "livemode": False,
        "metadata": {},
        "status": "enabled",
        "url": str(url),
    }
    set_metadata(endpoint, params.get("metadata"))
    store.put(endpoint)
    store.webhook_secrets[endpoint["id"]] = secret or new_id("whsec_", 32)
    answer = render(store, endpoint, params)
    answer["secret"] = store.webhook_secrets[endpoint["id"]]
    return answer


def update_endpoint(store: Store, params: dict[str, Any], id: str) -> Obj:
    """POST /v1/webhook_endpoints/{id}: url, enabled_events, disabled, description, metadata."""
    endpoint = store.get(id, "webhook_endpoint", "webhook_endpoint")
    if params.get("url"):
        endpoint["url"] = str(params["url"])
    if params.get("enabled_events"):
        endpoint["enabled_events"] = [str(e) for e in as_list(params["enabled_events"])]
    if params.get("disabled") is not None:
        endpoint["status"] = "disabled" if str(params["disabled"]) == "true" else "enabled"
    if "description" in params:
        endpoint["description"] = params["description"] or None
    set_metadata(endpoint, params.get("metadata"))
    return render(store, endpoint, params)


def list_endpoints(store: Store, params: dict[str, Any]) -> Obj:
    """GET /v1/webhook_endpoints."""
    return render_list(store, store.all("webhook_endpoint"), params, "/v1/webhook_endpoints")


def retrieve_endpoint(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/webhook_endpoints/{id}."""
    return render(store, store.get(id, "webhook_endpoint", "webhook_endpoint"), params)


def delete_endpoint(store: Store, params: dict[str, Any], id: str) -> Obj:
    """DELETE /v1/webhook_endpoints/{id}."""
    endpoint = store.get(id, "webhook_endpoint", "webhook_endpoint")
    endpoint["deleted"] = True
    store.webhook_secrets.pop(id, None)
    return {"id": id, "object": "webhook_endpoint", "deleted": True}


ROUTES: list[RouteSpec] = [
    ("GET", "/v1/events", list_events),
    ("GET", "/v1/events/{id}", retrieve_event),
    ("POST", "/v1/webhook_endpoints", create_endpoint),
    ("GET", "/v1/webhook_endpoints", list_endpoints),
    ("GET", "/v1/webhook_endpoints/{id}", retrieve_endpoint),
    ("POST", "/v1/webhook_endpoints/{id}", update_endpoint),
    ("DELETE", "/v1/webhook_endpoints/{id}", delete_endpoint),
]
