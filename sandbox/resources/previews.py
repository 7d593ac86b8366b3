"""POST /v1/invoices/create_preview: what the next invoice, or a change, would cost."""

from __future__ import annotations

from typing import Any

from sandbox.changes import _options, change_lines, plan_change
from sandbox.errors import invalid
from sandbox.expand import render
from sandbox.resources.invoices import build_invoice, line
from sandbox.resources.subscriptions import describe, next_period_end, resolve_items
from sandbox.store import Obj, RouteSpec, Store, new_id, snapshot


def next_cycle(
    store: Store,
    sub: Obj,
    items: list[tuple[Obj, int]] | None = None,
    prorations: list[Obj] | None = None,
) -> tuple[list[Obj], tuple[int, int]]:
    """Return the lines and period of `sub`'s next renewal invoice (prorations included).

    Pending items come first, then a previewed change's `prorations`, then the period: the
    order in which the renewal invoice will list them once the change is applied.
    """
    from sandbox.phases import upcoming_phase_pairs

    first = sub["items"]["data"][0]
    start = first["current_period_end"]
    pairs = (
        items
        or upcoming_phase_pairs(store, sub)
        or [(i["price"], i["quantity"]) for i in sub["items"]["data"]]
    )
    end = next_period_end(pairs[0][0], start, sub["billing_cycle_anchor"])
    lines = [snapshot(entry) for entry in store.pending_items.get(sub["id"], [])]
    lines += prorations or []
    for index, (price, qty) in enumerate(pairs):
        item = sub["items"]["data"][min(index, len(sub["items"]["data"]) - 1)]
        lines.append(
            line(
                sub=sub,
                item=item,
                price=price,
                quantity=qty,
                amount=price["unit_amount"] * qty,
                period=(start, end),
                description=describe(store, price, qty),
            )
        )
    return lines, (first["current_period_start"], start)


def create_preview(store: Store, params: dict[str, Any]) -> Obj:
    """Preview the upcoming invoice of a customer or subscription, with optional changes."""
    details = params.get("subscription_details")
    details = details if isinstance(details, dict) else {}
    sub_id = params.get("subscription")
    customer_id = params.get("customer")
    if not sub_id and not customer_id:
        raise invalid("Missing required param: customer or subscription.", param="customer")
    preview_id = new_id("upcoming_in_")
    if sub_id:
        sub = store.get(str(sub_id), "subscription", param="subscription")
        customer = store.objects[sub["customer"]]
        if customer_id and customer_id != customer["id"]:
            raise invalid(
                "The subscription does not belong to this customer.", param="subscription"
            )
        invoice = _for_subscription(store, customer, sub, details, preview_id)
    else:
        customer = store.get(str(customer_id), "customer", param="customer")
        pairs = resolve_items(store, details.get("items"), "subscription_details[items]")
        now = store.now()
        end = next_period_end(pairs[0][0], now, now)
        lines = [
            line(
                sub=None,
                item=None,
                price=p,
                quantity=q,
                amount=p["unit_amount"] * q,
                period=(now, end),
                description=describe(store, p, q),
            )
            for p, q in pairs
        ]
        invoice = build_invoice(
            store,
            customer,
            None,
            lines,
            billing_reason="subscription_create",
            period=(now, now),
            invoice_id=preview_id,
        )
        invoice["next_payment_attempt"] = now
    invoice["id"] = preview_id
    invoice["lines"]["url"] = "/v1/invoices/create_preview/lines"
    return render(store, invoice, params)


def _for_subscription(
    store: Store, customer: Obj, sub: Obj, details: dict[str, Any], preview_id: str
) -> Obj:
    if sub["status"] in ("canceled", "incomplete_expired"):
        raise invalid("No upcoming invoices for customer", code="invoice_upcoming_none")
    behavior, when = _options(details, store, "subscription_details[")
    if details.get("items"):
        change = plan_change(store, sub, details["items"], when)
        lines, invoice_now = change_lines(store, sub, change, behavior)
        if invoice_now:
            invoice = build_invoice(
                store,
                customer,
                sub,
                lines,
                billing_reason="subscription_update",
                period=(when, when),
                invoice_id=preview_id,
            )
            invoice["next_payment_attempt"] = when
            return invoice
        pairs = [(price, qty) for _, price, qty in change.items]
        lines, period = next_cycle(store, sub, pairs, lines)
    else:
        at_end = details.get("cancel_at_period_end")
        if (
            sub["cancel_at_period_end"]
            and str(at_end).lower() != "false"
            or str(at_end).lower() == "true"
        ):
            raise invalid("No upcoming invoices for customer", code="invoice_upcoming_none")
        lines, period = next_cycle(store, sub)
    invoice = build_invoice(
        store,
        customer,
        sub,
        lines,
        billing_reason="subscription_cycle",
        period=period,
        invoice_id=preview_id,
        discount_at=period[1],
    )
    invoice["created"] = invoice["next_payment_attempt"] = period[1]
    return invoice


ROUTES: list[RouteSpec] = [("POST", "/v1/invoices/create_preview", create_preview)]
