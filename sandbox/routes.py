"""The table of Stripe endpoints the sandbox serves, matched by method and path."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.resources import (
    catalog,
    checkout,
    coupons,
    customers,
    events,
    invoices,
    payments,
    portal,
    previews,
    schedules,
    subscription_updates,
    subscriptions,
)
from sandbox.store import Obj, RouteSpec, Store

Handler = Callable[..., Obj]

_TABLES: tuple[list[RouteSpec], ...] = (
    previews.ROUTES,
    catalog.ROUTES,
    customers.ROUTES,
    subscriptions.ROUTES,
    subscription_updates.ROUTES,
    coupons.ROUTES,
    schedules.ROUTES,
    invoices.ROUTES,
    payments.ROUTES,
    checkout.ROUTES,
    portal.ROUTES,
    events.ROUTES,
)


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{pattern}$")


ROUTES: list[tuple[str, re.Pattern[str], Handler]] = [
    (method, _compile(template), handler)
    for table in _TABLES
    for method, template, handler in table
]


def dispatch(store: Store, method: str, path: str, params: dict[str, Any]) -> Obj | None:
    """Run the handler for this request, or return None when no route matches."""
    for route_method, pattern, handler in ROUTES:
        match = pattern.match(path)
        if match and route_method == method:
            return handler(store, params, **match.groupdict())
    return None


def path_known(path: str) -> bool:
    """Tell whether any method is served on this path (405 rather than 404)."""
    return any(pattern.match(path) for _, pattern, _ in ROUTES)
