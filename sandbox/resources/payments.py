"""PaymentIntents and InvoicePayments: how an invoice's charge attempts are recorded.

As in Stripe's current API, finalizing an invoice with an amount due opens its default
InvoicePayment (object `invoice_payment`, `payment: {type: payment_intent, payment_intent}`),
backed by one PaymentIntent that every attempt confirms again: automatic retries, the hosted
page and `POST /v1/invoices/{id}/pay`. A declined attempt leaves the PaymentIntent in
`requires_payment_method` with the card error in `last_payment_error`; a successful one marks
both paid. The invoice's `payments` list is includable: it is not in the invoice by default
(nor in events) and appears when a request expands `payments` or a path below it, such as
`payments.data.payment.payment_intent`.
"""

from __future__ import annotations

import secrets
from typing import Any

from sandbox.errors import StripeError
from sandbox.expand import INCLUDABLE, render, render_list
from sandbox.store import Obj, RouteSpec, Store, new_id, snapshot

PAYMENTS_URL = "/v1/invoice_payments"


def _description(invoice: Obj) -> str | None:
    reason = invoice.get("billing_reason")
    if reason == "subscription_create":
        return "Subscription creation"
    if reason in ("subscription_cycle", "subscription_update", "subscription_threshold"):
        return "Subscription update"
    return None


def _payment_intent(store: Store, invoice: Obj) -> Obj:
    intent_id = new_id("pi_")
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": invoice["amount_remaining"],
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{intent_id}_secret_{secrets.token_urlsafe(18)}",
        "confirmation_method": "automatic",
        "created": store.now(),
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "customer_account": None,
        "description": _description(invoice),
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def default_payment(store: Store, invoice: Obj) -> Obj | None:
    """Return the invoice's default InvoicePayment, if it has one."""
    for payment_id in store.invoice_payments.get(invoice["id"], []):
        payment = store.objects[payment_id]
        if payment["is_default"]:
            return payment
    return None


def intent_of(store: Store, payment: Obj) -> Obj:
    """Return the PaymentIntent behind an InvoicePayment."""
    return store.objects[payment["payment"]["payment_intent"]]


def open_payment(store: Store, invoice: Obj) -> Obj | None:
    """Open the default InvoicePayment and its PaymentIntent for a finalized invoice."""
    found = default_payment(store, invoice)
    if found is not None or invoice["amount_remaining"] <= 0:
        return found
    intent = store.put(_payment_intent(store, invoice))
    payment = store.put(
        {
            "id": new_id("inpay_"),
            "object": "invoice_payment",
            "amount_paid": None,
            "amount_requested": invoice["amount_remaining"],
            "created": store.now(),
            "currency": invoice["currency"],
            "invoice": invoice["id"],
            "is_default": True,
            "livemode": False,
            "payment": {"type": "payment_intent", "payment_intent": intent["id"]},
            "status": "open",
            "status_transitions": {"canceled_at": None, "paid_at": None},
        }
    )
    store.invoice_payments.setdefault(invoice["id"], []).append(payment["id"])
    return payment


def _last_payment_error(store: Store, err: StripeError, pm_id: str) -> Obj:
    """Stripe's error object as a PaymentIntent keeps it, with the card that failed."""
    error: Obj = {
        key: value
        for key, value in err.body()["error"].items()
        if key in ("type", "code", "decline_code", "doc_url", "message", "param")
    }
    pm = store.find(pm_id, "payment_method")
    error["payment_method"] = snapshot(pm) if pm is not None else None
    error["payment_method_type"] = "card"
    return error


def record_attempt(
    store: Store, invoice: Obj, pm_id: str | None, err: StripeError | None
) -> Obj | None:
    """Record one charge attempt on the invoice's PaymentIntent; return its InvoicePayment."""
    payment = open_payment(store, invoice)
    if payment is None:
        return None
    intent = intent_of(store, payment)
    now = store.now()
    intent["amount"] = payment["amount_requested"] = invoice["amount_remaining"]
    if err is None:
        intent.update(
            status="succeeded",
            amount_received=intent["amount"],
            payment_method=pm_id,
            last_payment_error=None,
            next_action=None,
        )
        payment["status"] = "paid"
        payment["amount_paid"] = payment["amount_requested"]
        payment["status_transitions"]["paid_at"] = now
        return payment
    if not pm_id or err.type != "card_error" or err.code == "missing":
        intent.update(
            status="requires_payment_method",
            payment_method=None,
            next_action=None,
            last_payment_error=None,
        )
        return payment  # no card was charged: no decline to report
    intent["last_payment_error"] = _last_payment_error(store, err, pm_id)
    if err.code == "authentication_required":
        # The bank wants the customer to authenticate (the hosted invoice page does it).
        intent.update(
            status="requires_action",
            payment_method=pm_id,
            next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure"}},
        )
    else:
        intent.update(status="requires_payment_method", payment_method=None, next_action=None)
    return payment


def cancel_payment(store: Store, invoice: Obj, reason: str = "void_invoice") -> None:
    """Cancel the invoice's open payment (the invoice was voided or paid out of band)."""
    payment = default_payment(store, invoice)
    if payment is None or payment["status"] != "open":
        return
    now = store.now()
    payment["status"] = "canceled"
    payment["status_transitions"]["canceled_at"] = now
    intent_of(store, payment).update(
        status="canceled", canceled_at=now, cancellation_reason=reason, next_action=None
    )


def payments_list(store: Store, invoice: Obj) -> Obj:
    """Return the invoice's `payments` list (an includable field), newest first."""
    ids = store.invoice_payments.get(str(invoice.get("id")), [])
    data = [snapshot(store.objects[i]) for i in reversed(ids)]
    return {
        "object": "list",
        "data": data,
        "has_more": False,
        "total_count": len(data),
        "url": PAYMENTS_URL,
    }


INCLUDABLE[("invoice", "payments")] = payments_list


def retrieve_payment_intent(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/payment_intents/{id}."""
    return render(store, store.get(id, "payment_intent"), params)


def list_invoice_payments(store: Store, params: dict[str, Any]) -> Obj:
    """GET /v1/invoice_payments with invoice, status, payment[type], payment[payment_intent]."""
    invoice, status = params.get("invoice"), params.get("status")
    raw = params.get("payment")
    by: dict[str, Any] = raw if isinstance(raw, dict) else {}

    def keep(payment: Obj) -> bool:
        return (
            (not invoice or payment["invoice"] == invoice)
            and (not status or payment["status"] == status)
            and (not by.get("type") or payment["payment"]["type"] == by["type"])
            and (
                not by.get("payment_intent")
                or payment["payment"].get("payment_intent") == by["payment_intent"]
            )
        )

    return render_list(store, store.all("invoice_payment", keep), params, PAYMENTS_URL)


def retrieve_invoice_payment(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/invoice_payments/{id}."""
    return render(store, store.get(id, "invoice_payment", "invoice_payment"), params)


ROUTES: list[RouteSpec] = [
    ("GET", "/v1/payment_intents/{id}", retrieve_payment_intent),
    ("GET", "/v1/invoice_payments", list_invoice_payments),
    ("GET", "/v1/invoice_payments/{id}", retrieve_invoice_payment),
]
