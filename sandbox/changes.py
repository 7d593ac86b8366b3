"""Plan and quantity changes on a subscription: proration maths, applying, previewing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox import limits
from sandbox.errors import invalid
from sandbox.forms import as_bool, as_int, as_list, as_quantity
from sandbox.resources.customers import charge
from sandbox.resources.invoices import (
    attempt,
    build_invoice,
    issue,
    line,
    payment_method_for,
    set_status,
)
from sandbox.resources.subscriptions import describe, make_item, next_period_end, plan_of
from sandbox.store import Obj, Store, snapshot

PRORATION_BEHAVIORS = ("create_prorations", "always_invoice", "none")
PAYMENT_BEHAVIORS = (
    "allow_incomplete",
    "default_incomplete",
    "error_if_incomplete",
    "pending_if_incomplete",
)


@dataclass
class Change:
    """What an `items[]` update would do to a subscription at a given moment."""

    when: int
    # (existing item or None, price, quantity) for every item that remains.
    items: list[tuple[Obj | None, Obj, int]] = field(default_factory=list)
    removed: list[Obj] = field(default_factory=list)
    lines: list[Obj] = field(default_factory=list)
    reset: bool = False  # the billing interval changed: the period restarts `when`


def _interval(price: Obj) -> tuple[str, int]:
    recurring = price["recurring"] or {}
    return recurring.get("interval", "month"), recurring.get("interval_count", 1)


def _fraction(item: Obj, when: int) -> float:
    start, end = item["current_period_start"], item["current_period_end"]
    if end <= start:
        return 0.0
    return float(min(max((end - when) / (end - start), 0.0), 1.0))


def plan_change(store: Store, sub: Obj, raw_items: Any, when: int) -> Change:
    """Work out items and proration lines for `items[i][id|price|quantity|deleted]`."""
    current = {item["id"]: item for item in sub["items"]["data"]}
    kept: dict[str, tuple[Obj | None, Obj, int]] = {
        item_id: (item, item["price"], item["quantity"]) for item_id, item in current.items()
    }
    added: list[tuple[Obj | None, Obj, int]] = []
    change = Change(when=when)
    for index, entry in enumerate(as_list(raw_items)):
        entry = entry if isinstance(entry, dict) else {}
        param = f"items[{index}]"
        price = None
        if entry.get("price"):
            price = store.get(str(entry["price"]), "price", param=f"{param}[price]")
        quantity = as_quantity(entry.get("quantity"), f"{param}[quantity]")
        item_id = entry.get("id")
        if item_id:
            if item_id not in current:
                raise invalid(f"Invalid subscription_item id: {item_id}", param=f"{param}[id]")
            if as_bool(entry.get("deleted")):
                change.removed.append(current[item_id])
                kept.pop(item_id, None)
                continue
            old = kept[item_id]
            kept[item_id] = (old[0], price or old[1], old[2] if quantity is None else quantity)
        elif price is not None:
            added.append((None, price, 1 if quantity is None else quantity))
        else:
            raise invalid("Missing required param: price.", param=f"{param}[price]")
    change.items = [*kept.values(), *added]
    if not change.items:
        raise invalid("A subscription must have at least one item.", param="items")
    first = sub["items"]["data"][0]
    change.reset = _interval(change.items[0][1]) != _interval(first["price"])
    _proration_lines(store, sub, change, first)
    return change


def _proration_lines(store: Store, sub: Obj, change: Change, first: Obj) -> None:
    when = change.when
    period = (when, first["current_period_end"])
    olds = [(item, item["price"], item["quantity"]) for item in change.removed]
    news: list[tuple[Obj | None, Obj, int]] = []
    for item, price, qty in change.items:
        if item is None:
            news.append((None, price, qty))
        elif change.reset or price["id"] != item["price"]["id"] or qty != item["quantity"]:
            olds.append((item, item["price"], item["quantity"]))
            news.append((item, price, qty))
    for item, price, qty in olds:
        amount = round(price["unit_amount"] * qty * _fraction(item, when))
        change.lines.append(
            line(
                sub=sub,
                item=item,
                price=price,
                quantity=qty,
                amount=-amount,
                period=period,
                description=f"Unused time on {describe(store, price, qty)}",
                proration=True,
            )
        )
    for item, price, qty in news:
        if change.reset:
            end = next_period_end(price, when, when)
            change.lines.append(
                line(
                    sub=sub,
                    item=item,
                    price=price,
                    quantity=qty,
                    amount=price["unit_amount"] * qty,
                    period=(when, end),
                    description=describe(store, price, qty),
                )
            )
            continue
        amount = round(price["unit_amount"] * qty * _fraction(item or first, when))
        change.lines.append(
            line(
                sub=sub,
                item=item,
                price=price,
                quantity=qty,
                amount=amount,
                period=period,
                description=f"Remaining time on {describe(store, price, qty)}",
                proration=True,
            )
        )


def _options(params: dict[str, Any], store: Store, prefix: str = "") -> tuple[str, int]:
    behavior = str(params.get("proration_behavior") or "create_prorations")
    if behavior not in PRORATION_BEHAVIORS:
        raise invalid(
            f"Invalid proration_behavior: {behavior}", param=f"{prefix}proration_behavior"
        )
    when = as_int(params.get("proration_date"), f"{prefix}proration_date") or store.now()
    return behavior, when


def change_lines(store: Store, sub: Obj, change: Change, behavior: str) -> tuple[list[Obj], bool]:
    """Return the lines a change bills and whether Stripe invoices them at once.

    An interval switch or `always_invoice` invoices now, pulling in pending prorations;
    otherwise the prorations wait for the next renewal. `none` drops the prorations.
    """
    invoice_now = change.reset or behavior == "always_invoice"
    lines = change.lines
    if behavior == "none":
        lines = [e for e in lines if not e["parent"]["subscription_item_details"]["proration"]]
    if invoice_now:
        lines = [*(snapshot(e) for e in store.pending_items.get(sub["id"], [])), *lines]
    return lines, invoice_now


def set_items(store: Store, sub: Obj, change: Change, lines: list[Obj] | None = None) -> None:
    """Put the changed items on the subscription (restarting the period on an interval switch)."""
    first = sub["items"]["data"][0]
    period = (first["current_period_start"], first["current_period_end"])
    if change.reset:
        period = (change.when, next_period_end(change.items[0][1], change.when, change.when))
        sub["billing_cycle_anchor"] = change.when
    items = []
    for item, price, qty in change.items:
        if item is None:
            item = make_item(store, sub["id"], price, qty, period)
        item["price"], item["quantity"] = snapshot(price), qty
        item["plan"] = plan_of(price)
        item["current_period_start"], item["current_period_end"] = period
        items.append(item)
    sub["items"]["data"] = items
    sub["items"]["total_count"] = len(items)
    for entry in lines or []:
        details = entry["parent"]["subscription_item_details"]
        if details["subscription_item"] is None:
            details["subscription_item"] = items[-1]["id"]


def apply_change(store: Store, sub: Obj, params: dict[str, Any]) -> None:
    """Apply an items update to `sub`, invoicing or queueing prorations as asked."""
    behavior, when = _options(params, store)
    change = plan_change(store, sub, params.get("items"), when)
    quantity_update = limits.changes_quantity(change)
    if quantity_update:
        limits.check_quantity_update(store, sub["id"])
    _apply(store, sub, change, behavior, params)
    if quantity_update:
        limits.record_quantity_update(store, sub["id"])


def _apply(store: Store, sub: Obj, change: Change, behavior: str, params: dict[str, Any]) -> None:
    when = change.when
    lines, invoice_now = change_lines(store, sub, change, behavior)
    mode = str(params.get("payment_behavior") or "allow_incomplete")
    if mode not in PAYMENT_BEHAVIORS:
        raise invalid(f"Invalid payment_behavior: {mode}", param="payment_behavior")
    if invoice_now:
        limits.check_new_invoice(store, sub["id"])
    if not invoice_now:
        set_items(store, sub, change, lines)
        if lines:
            store.pending_items.setdefault(sub["id"], []).extend(lines)
        return
    customer = store.objects[sub["customer"]]
    invoice = build_invoice(
        store, customer, sub, lines, billing_reason="subscription_update", period=(when, when)
    )
    if mode == "pending_if_incomplete" and invoice["amount_due"] > 0:
        from sandbox.pending import start_pending

        store.pending_items.pop(sub["id"], None)
        start_pending(store, sub, change, invoice)
        return
    if mode == "error_if_incomplete" and invoice["amount_due"] > 0:
        # Stripe refuses the whole update when the invoice cannot be paid.
        charge(store, payment_method_for(store, invoice))
    store.pending_items.pop(sub["id"], None)
    set_items(store, sub, change, lines)
    issue(store, invoice, sub)
    if mode == "default_incomplete" and invoice["amount_due"] > 0:
        set_status(store, sub, "past_due")
        return
    attempt(store, invoice, automatic=True)
