"""Subscriptions and their items: create, retrieve, update, list, cancel."""

from __future__ import annotations

from typing import Any

from sandbox.clock import add_interval, day_of
from sandbox.errors import invalid
from sandbox.expand import render, render_list, set_metadata
from sandbox.forms import as_bool, as_int, as_list, as_quantity
from sandbox.money import format_amount, interval_label
from sandbox.resources.customers import attach, charge
from sandbox.resources.events import emit
from sandbox.resources.invoices import attempt, build_invoice, issue, line
from sandbox.store import Obj, RouteSpec, Store, new_id, snapshot

LIVE = ("active", "past_due", "trialing", "incomplete", "unpaid", "paused")


def plan_of(price: Obj) -> Obj:
    """Return the legacy `plan` view of a recurring price, as items still carry it."""
    recurring = price.get("recurring") or {}
    return {
        "id": price["id"],
        "object": "plan",
        "active": price["active"],
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "interval": recurring.get("interval"),
        "interval_count": recurring.get("interval_count", 1),
        "livemode": False,
        "metadata": dict(price["metadata"]),
        "meter": None,
        "nickname": price["nickname"],
        "product": price["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def make_item(store: Store, sub_id: str, price: Obj, quantity: int, period: tuple[int, int]) -> Obj:
    """Build a subscription item holding a copy of its price and its billing period."""
    return {
        "id": new_id("si_", 14),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": store.now(),
        "current_period_end": period[1],
        "current_period_start": period[0],
        "discounts": [],
        "metadata": {},
        "plan": plan_of(price),
        "price": snapshot(price),
        "quantity": quantity,
        "subscription": sub_id,
        "tax_rates": [],
    }


def next_period_end(price: Obj, start: int, anchor: int) -> int:
    """Return the end of the billing period starting at `start` for this price."""
    recurring = price.get("recurring") or {"interval": "month", "interval_count": 1}
    return add_interval(start, recurring["interval"], recurring["interval_count"], day_of(anchor))


def describe(store: Store, price: Obj, quantity: int) -> str:
    """Return Stripe's line description, e.g. `1 × Basic (at €9.00 / month)`."""
    product = store.objects.get(price["product"], {})
    amount = format_amount(price["unit_amount"], price["currency"])
    return f"{quantity} × {product.get('name', 'Product')} (at {amount} / {interval_label(price)})"


def cycle_lines(store: Store, sub: Obj) -> list[Obj]:
    """Return the lines billing every item of `sub` for its current period."""
    return [
        line(
            sub=sub,
            item=item,
            price=item["price"],
            quantity=item["quantity"],
            amount=item["price"]["unit_amount"] * item["quantity"],
            period=(item["current_period_start"], item["current_period_end"]),
            description=describe(store, item["price"], item["quantity"]),
        )
        for item in sub["items"]["data"]
    ]


def resolve_items(store: Store, raw: Any, param: str = "items") -> list[tuple[Obj, int]]:
    """Turn `items[i][price]`/`[quantity]` params into (price, quantity) pairs."""
    pairs = []
    for index, entry in enumerate(as_list(raw)):
        if not isinstance(entry, dict) or not entry.get("price"):
            raise invalid("Missing required param: price.", param=f"{param}[{index}][price]")
        price = store.get(str(entry["price"]), "price", param=f"{param}[{index}][price]")
        if price["recurring"] is None:
            raise invalid("The price specified is not recurring.", param=f"{param}[{index}][price]")
        quantity = as_quantity(entry.get("quantity"), f"{param}[{index}][quantity]")
        pairs.append((price, 1 if quantity is None else quantity))
    if not pairs:
        raise invalid("Missing required param: items.", param=param)
    return pairs


def new_subscription(
    store: Store,
    customer: Obj,
    pairs: list[tuple[Obj, int]],
    *,
    pm_id: str | None = None,
    metadata: Any = None,
    trial_days: int | None = None,
    payment_behavior: str = "allow_incomplete",
    description: str | None = None,
    discounts: Any = None,
) -> Obj:
    """Create a subscription and bill its first invoice (events in Stripe's order)."""
    now = store.now()
    if pm_id:
        pm_id = attach(store, pm_id, customer["id"])["id"]
    paying = not trial_days and sum(p["unit_amount"] * q for p, q in pairs) > 0
    if payment_behavior == "error_if_incomplete" and paying:
        charge(store, pm_id or customer["invoice_settings"]["default_payment_method"])
    sub_id = new_id("sub_")
    end = now + trial_days * 86400 if trial_days else next_period_end(pairs[0][0], now, now)
    items = [make_item(store, sub_id, price, qty, (now, end)) for price, qty in pairs]
    sub: Obj = {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": end if trial_days else now,
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": now,
        "currency": pairs[0][0]["currency"],
        "customer": customer["id"],
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": pm_id,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": items,
            "has_more": False,
            "total_count": len(items),
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": {},
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": now,
        "status": "trialing" if trial_days else "incomplete",
        "test_clock": None,
        "transfer_data": None,
        "trial_end": end if trial_days else None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": now if trial_days else None,
    }
    set_metadata(sub, metadata)
    store.put(sub)
    if discounts:
        from sandbox.resources.coupons import set_discounts

        set_discounts(store, sub, discounts)
    emit(store, "customer.subscription.created", sub)
    lines = cycle_lines(store, sub)
    if trial_days:
        for entry in lines:
            entry["amount"] = entry["subtotal"] = 0
            entry["description"] = (
                f"Trial period for {product_name(store, entry_price(store, entry))}"
            )
    invoice = issue(
        store,
        build_invoice(
            store, customer, sub, lines, billing_reason="subscription_create", period=(now, now)
        ),
        sub,
    )
    if payment_behavior != "default_incomplete" or not paying:
        attempt(store, invoice, automatic=False)
    return sub


def product_name(store: Store, price: Obj) -> str:
    """Return the name of a price's product."""
    return str(store.objects.get(price["product"], {}).get("name", "Product"))


def entry_price(store: Store, entry: Obj) -> Obj:
    """Return the price a line item bills."""
    return store.objects[entry["pricing"]["price_details"]["price"]]


def end_subscription(store: Store, sub: Obj, reason: str = "cancellation_requested") -> None:
    """End a subscription now (customer.subscription.deleted)."""
    now = store.now()
    sub["status"] = "canceled"
    sub["ended_at"] = now
    sub["canceled_at"] = sub["canceled_at"] or now
    sub["cancellation_details"]["reason"] = reason
    emit(store, "customer.subscription.deleted", sub)


def create_subscription(store: Store, params: dict[str, Any]) -> Obj:
    """POST /v1/subscriptions: customer, items, default_payment_method, payment_behavior, trials."""
    if not params.get("customer"):
        raise invalid("Missing required param: customer.", param="customer")
    customer = store.get(str(params["customer"]), "customer", param="customer")
    sub = new_subscription(
        store,
        customer,
        resolve_items(store, params.get("items")),
        pm_id=params.get("default_payment_method") or None,
        metadata=params.get("metadata"),
        trial_days=as_int(params.get("trial_period_days"), "trial_period_days"),
        payment_behavior=str(params.get("payment_behavior") or "allow_incomplete"),
        description=params.get("description") or None,
        discounts=params.get("discounts"),
    )
    from sandbox.resources.subscription_updates import set_cancel

    if as_bool(params.get("cancel_at_period_end")):
        set_cancel(store, sub, params)
    return render(store, sub, params)


def cancel_subscription(store: Store, params: dict[str, Any], id: str) -> Obj:
    """DELETE /v1/subscriptions/{id}: cancel now."""
    sub = store.get(id, "subscription")
    if sub["status"] == "canceled":
        raise invalid("This subscription has already been canceled.", code="resource_missing")
    from sandbox.resources.subscription_updates import set_details

    set_details(sub, params)
    end_subscription(store, sub)
    if as_bool(params.get("invoice_now")):
        customer = store.objects[sub["customer"]]
        pending = store.pending_items.pop(sub["id"], [])
        if pending:
            now = store.now()
            invoice = build_invoice(
                store,
                customer,
                sub,
                pending,
                billing_reason="subscription_update",
                period=(now, now),
            )
            attempt(store, issue(store, invoice, sub))
    return render(store, sub, params)


def retrieve_subscription(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/subscriptions/{id}."""
    return render(store, store.get(id, "subscription"), params)


def list_subscriptions(store: Store, params: dict[str, Any]) -> Obj:
    """GET /v1/subscriptions with customer, price, status (default: not canceled; `all`)."""
    status = params.get("status") or None
    customer, price = params.get("customer"), params.get("price")

    def keep(sub: Obj) -> bool:
        if status == "ended":
            ok = sub["status"] in ("canceled", "incomplete_expired")
        elif status and status != "all":
            ok = sub["status"] == status
        else:
            ok = status == "all" or sub["status"] not in ("canceled", "incomplete_expired")
        return (
            ok
            and (not customer or sub["customer"] == customer)
            and (not price or any(i["price"]["id"] == price for i in sub["items"]["data"]))
        )

    return render_list(store, store.all("subscription", keep), params, "/v1/subscriptions")


ROUTES: list[RouteSpec] = [
    ("POST", "/v1/subscriptions", create_subscription),
    ("GET", "/v1/subscriptions", list_subscriptions),
    ("GET", "/v1/subscriptions/{id}", retrieve_subscription),
    ("DELETE", "/v1/subscriptions/{id}", cancel_subscription),
]
