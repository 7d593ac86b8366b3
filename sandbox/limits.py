"""Stripe's per-subscription limits (docs.stripe.com/rate-limits, "Subscriptions API").

At most 200 quantity updates per subscription an hour, and at most 10 new invoices a minute
and 20 a day per subscription. Past a limit Stripe answers `429 Too Many Requests` with the
error code `rate_limit` and changes nothing; the SDK raises `RateLimitError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sandbox.errors import StripeError
from sandbox.store import Obj, Store

if TYPE_CHECKING:
    from sandbox.changes import Change

HOUR, DAY = 3600, 86400
QUANTITY_UPDATES_AN_HOUR = 200
INVOICES = ((60, 10, "minute"), (DAY, 20, "day"))


def _limited(message: str) -> StripeError:
    return StripeError(429, "invalid_request_error", message, code="rate_limit")


def changes_quantity(change: Change) -> bool:
    """Tell whether an items update changes the quantity of an existing item."""
    return any(item is not None and qty != item["quantity"] for item, _, qty in change.items)


def check_quantity_update(store: Store, sub_id: str) -> None:
    """Refuse a quantity update past 200 within the last hour for this subscription."""
    since = store.now() - HOUR
    recent = [t for t in store.quantity_updates.get(sub_id, []) if t > since]
    store.quantity_updates[sub_id] = recent
    if len(recent) >= QUANTITY_UPDATES_AN_HOUR:
        raise _limited(
            f"This subscription has had more than {QUANTITY_UPDATES_AN_HOUR} quantity updates "
            "in the last hour. Try again later, or make fewer, larger changes."
        )


def record_quantity_update(store: Store, sub_id: str) -> None:
    """Count one applied quantity update of this subscription."""
    store.quantity_updates.setdefault(sub_id, []).append(store.now())


def _subscription_of(invoice: Obj) -> str | None:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    sub_id = details.get("subscription")
    return str(sub_id) if sub_id else None


def check_new_invoice(store: Store, sub_id: str) -> None:
    """Refuse an update invoicing now past 10 a minute or 20 a day for this subscription."""
    now = store.now()
    created = [
        int(i["created"]) for i in store.all("invoice", lambda i: _subscription_of(i) == sub_id)
    ]
    for window, limit, label in INVOICES:
        if sum(1 for t in created if t > now - window) >= limit:
            raise _limited(
                f"This subscription has had {limit} new invoices in the last {label}. "
                "Create prorations for the next invoice instead of invoicing each change."
            )
