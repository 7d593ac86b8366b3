"""Invoices: building, finalizing, charging (with retries), listing, paying."""

from __future__ import annotations

from typing import Any

from sandbox.clock import DAY
from sandbox.discounts import apply_discounts, use_once_discounts
from sandbox.errors import StripeError, invalid
from sandbox.expand import render, render_list
from sandbox.resources.customers import charge
from sandbox.resources.events import emit
from sandbox.resources.payments import (
    cancel_payment,
    default_payment,
    intent_of,
    open_payment,
    record_attempt,
)
from sandbox.store import Obj, RouteSpec, Store, new_id, snapshot

# Smart-retry schedule after the 1st, 2nd and 3rd failed automatic attempt; the 4th is final.
RETRY_DELAYS = (3 * DAY, 5 * DAY, 7 * DAY)


def line(
    *,
    sub: Obj | None,
    item: Obj | None,
    price: Obj,
    quantity: int,
    amount: int,
    period: tuple[int, int],
    description: str,
    proration: bool = False,
) -> Obj:
    """Build an invoice line item (object `line_item`) for a subscription item."""
    return {
        "id": new_id("il_"),
        "object": "line_item",
        "amount": amount,
        "currency": price["currency"],
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "parent": {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": proration,
                "proration_details": {"credited_items": None},
                "subscription": sub["id"] if sub else None,
                "subscription_item": item["id"] if item else None,
            },
            "type": "subscription_item_details",
        },
        "period": {"start": period[0], "end": period[1]},
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": {"price": price["id"], "product": price["product"]},
            "type": "price_details",
            "unit_amount_decimal": str(price["unit_amount"]),
        },
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "subscription": None,
        "subtotal": amount,
        "taxes": [],
    }


def build_invoice(
    store: Store,
    customer: Obj,
    sub: Obj | None,
    lines: list[Obj],
    *,
    billing_reason: str,
    period: tuple[int, int],
    invoice_id: str | None = None,
    discount_at: int | None = None,
) -> Obj:
    """Build a draft invoice (not stored) with totals and discounts from its lines."""
    invoice_id = invoice_id or new_id("in_")
    total = sum(entry["amount"] for entry in lines)
    for entry in lines:
        entry["invoice"] = invoice_id
    currency = lines[0]["currency"] if lines else (sub or {}).get("currency") or "eur"
    invoice: Obj = {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "DE",
        "account_name": "Portier Sandbox",
        "account_tax_ids": None,
        "amount_due": max(total, 0),
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": max(total, 0),
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": True,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": store.now(),
        "currency": currency,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": customer.get("address"),
        "customer_email": customer.get("email"),
        "customer_name": customer.get("name"),
        "customer_phone": customer.get("phone"),
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        # As in Stripe: unset, so a payment falls back to the subscription's, then the
        # customer's default at the time it is attempted (a card updated later is used).
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": {
            "quote_details": None,
            "subscription_details": {
                "metadata": dict((sub or {}).get("metadata") or {}),
                "subscription": sub["id"] if sub else None,
            },
            "type": "subscription_details",
        }
        if sub
        else None,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period[1],
        "period_start": period[0],
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        # Removed from the current API (see `parent`); kept null as Stripe's example shows.
        "subscription": None,
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
    }
    apply_discounts(store, invoice, sub, store.now() if discount_at is None else discount_at)
    apply_balance(invoice, int(customer.get("balance") or 0))
    return invoice


def apply_balance(invoice: Obj, balance: int) -> int:
    """Apply the customer's invoice balance; return the balance left after this invoice.

    docs.stripe.com/billing/customer/balance: the balance "automatically applies toward the
    next invoice finalized"; a downgrade's prorations can leave a credit (a negative total
    becomes credit, negative balance) that reduces the next invoice's amount due.
    """
    net = int(invoice["total"]) + balance
    invoice["starting_balance"] = balance
    invoice["amount_due"] = invoice["amount_remaining"] = max(net, 0)
    return min(net, 0)


def issue(store: Store, invoice: Obj, sub: Obj | None, auto_finalize: bool = True) -> Obj:
    """Store a draft (invoice.created), finalize it (invoice.finalized); return it."""
    store.put(invoice)
    if sub is not None:
        sub["latest_invoice"] = invoice["id"]
        use_once_discounts(store, invoice, sub)
    emit(store, "invoice.created", invoice)
    return finalize(store, invoice) if auto_finalize else invoice


def finalize(store: Store, invoice: Obj) -> Obj:
    """Finalize a draft: number it, open it, give it hosted links (invoice.finalized)."""
    customer = store.objects[invoice["customer"]]
    now = store.now()
    balance = int(customer.get("balance") or 0)
    invoice["ending_balance"] = left = apply_balance(invoice, balance)
    if left != balance:
        before = snapshot(customer)
        customer["balance"] = left
        emit(store, "customer.updated", customer, before)
    invoice["number"] = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
    customer["next_invoice_sequence"] += 1
    invoice["status"] = "open"
    invoice["effective_at"] = now
    invoice["status_transitions"]["finalized_at"] = now
    invoice["hosted_invoice_url"] = f"{store.public_url}/pay/invoice/{invoice['id']}"
    invoice["invoice_pdf"] = f"{store.public_url}/pay/invoice/{invoice['id']}/pdf"
    invoice["webhooks_delivered_at"] = now
    open_payment(store, invoice)
    emit(store, "invoice.finalized", invoice)
    return invoice


def payment_method_for(store: Store, invoice: Obj) -> str | None:
    """Return the payment method an invoice charges: its own, its subscription's, the customer's."""
    if invoice.get("default_payment_method"):
        return str(invoice["default_payment_method"])
    sub_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    sub = store.find(sub_id, "subscription") if sub_id else None
    if sub is not None and sub.get("default_payment_method"):
        return str(sub["default_payment_method"])
    customer = store.find(invoice["customer"], "customer") or {}
    found = customer.get("invoice_settings", {}).get("default_payment_method")
    return str(found) if found else None


def subscription_of(store: Store, invoice: Obj) -> Obj | None:
    """Return the subscription an invoice was billed for, if any."""
    sub_id = ((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    return store.find(sub_id, "subscription") if sub_id else None


def set_status(store: Store, sub: Obj, status: str) -> None:
    """Change a subscription's status, emitting customer.subscription.updated."""
    if sub["status"] != status:
        before = snapshot(sub)
        sub["status"] = status
        emit(store, "customer.subscription.updated", sub, before)


def mark_paid(store: Store, invoice: Obj) -> None:
    """Record a successful payment (invoice.paid, invoice.payment_succeeded)."""
    invoice["amount_paid"] = invoice["amount_due"]
    invoice["amount_remaining"] = 0
    invoice["status"] = "paid"
    invoice["next_payment_attempt"] = None
    invoice["status_transitions"]["paid_at"] = store.now()
    invoice["receipt_number"] = invoice["number"] and f"{invoice['number']}-R"
    emit(store, "invoice.paid", invoice)
    emit(store, "invoice.payment_succeeded", invoice)
    from sandbox.pending import on_paid

    on_paid(store, invoice)
    sub = subscription_of(store, invoice)
    if sub is not None and sub["status"] in ("past_due", "incomplete", "unpaid"):
        set_status(store, sub, "active")


def attempt(
    store: Store, invoice: Obj, pm_id: str | None = None, automatic: bool = True
) -> StripeError | None:
    """Charge an open invoice; on decline record the attempt and return the card error."""
    if invoice["amount_due"] <= 0:
        mark_paid(store, invoice)
        return None
    invoice["attempted"] = True
    invoice["attempt_count"] += 1
    pm_id = pm_id or payment_method_for(store, invoice)
    try:
        charge(store, pm_id)
    except StripeError as err:
        record_attempt(store, invoice, pm_id, err)
        _record_failure(store, invoice, err, automatic)
        return err
    record_attempt(store, invoice, pm_id, None)
    mark_paid(store, invoice)
    return None


def _record_failure(store: Store, invoice: Obj, err: StripeError, automatic: bool) -> None:
    count = invoice["attempt_count"]
    if automatic or invoice["next_payment_attempt"] is not None:
        delay = RETRY_DELAYS[count - 1] if count - 1 < len(RETRY_DELAYS) else None
        invoice["next_payment_attempt"] = store.now() + delay if delay else None
    if err.decline_code == "authentication_required":
        emit(store, "invoice.payment_action_required", invoice)
    emit(store, "invoice.payment_failed", invoice)
    from sandbox.pending import is_pending_invoice

    sub = subscription_of(store, invoice)
    if sub is None or is_pending_invoice(store, invoice):
        return
    if sub["status"] == "active":
        set_status(store, sub, "past_due")
    if automatic and invoice["next_payment_attempt"] is None and sub["status"] == "past_due":
        # What Stripe's "subscription status after all retries fail" setting chooses.
        if store.after_final_retry == "unpaid":
            set_status(store, sub, "unpaid")
        elif store.after_final_retry == "canceled":
            from sandbox.resources.subscriptions import end_subscription

            end_subscription(store, sub, reason="payment_failed")


def list_invoices(store: Store, params: dict[str, Any]) -> Obj:
    """GET /v1/invoices with customer, subscription, status."""
    customer, status = params.get("customer"), params.get("status")
    sub_id = params.get("subscription")

    def keep(inv: Obj) -> bool:
        return (
            (not customer or inv["customer"] == customer)
            and (not status or inv["status"] == status)
            and (not sub_id or (subscription_of(store, inv) or {}).get("id") == sub_id)
        )

    return render_list(store, store.all("invoice", keep), params, "/v1/invoices")


def retrieve_invoice(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/invoices/{id}."""
    return render(store, store.get(id, "invoice"), params)


def pay(store: Store, invoice: Obj, pm_id: str | None = None, out_of_band: bool = False) -> Obj:
    """Pay an open invoice now (the hosted page and POST /v1/invoices/{id}/pay)."""
    if invoice["status"] == "paid":
        raise invalid("Invoice is already paid", code="invoice_already_paid")
    if invoice["status"] != "open":
        raise invalid(
            f"You cannot pay this invoice because it is {invoice['status']}.",
            code="invoice_not_open",
        )
    if out_of_band:
        cancel_payment(store, invoice, reason="abandoned")
        mark_paid(store, invoice)
        return invoice
    if pm_id:
        from sandbox.resources.customers import attach

        pm_id = attach(store, pm_id, invoice["customer"])["id"]
    err = attempt(store, invoice, pm_id, automatic=False)
    if err is not None:
        err.extra["invoice"] = invoice["id"]
        payment = default_payment(store, invoice)
        if payment is not None:  # as Stripe does: the PaymentIntent that failed
            err.extra["payment_intent"] = snapshot(intent_of(store, payment))
        raise err
    return invoice


def pay_invoice(store: Store, params: dict[str, Any], id: str) -> Obj:
    """POST /v1/invoices/{id}/pay with payment_method or paid_out_of_band."""
    invoice = store.get(id, "invoice")
    oob = str(params.get("paid_out_of_band") or "").lower() == "true"
    pay(store, invoice, params.get("payment_method") or None, oob)
    return render(store, invoice, params)


ROUTES: list[RouteSpec] = [
    ("GET", "/v1/invoices", list_invoices),
    ("GET", "/v1/invoices/{id}", retrieve_invoice),
    ("POST", "/v1/invoices/{id}/pay", pay_invoice),
]
