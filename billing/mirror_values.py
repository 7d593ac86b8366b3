"""Stripe objects → mirror row values, and whether an event's object is already mirrored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing.catalog import PriceBook
from billing.discounts import discount_columns
from billing.errors import NotFound
from billing.gateway import StripeGateway
from billing.shapes import card_of, coupon_of, item, next_phase, ref_id, when

Obj = Mapping[str, Any]
_coupon_labels: dict[str, str] = {}
# Subscription columns an event's (unexpanded) object fixes by itself: when all of them equal
# the stored row, the event tells the mirror nothing new and its re-read is skipped.
_PAYLOAD_COLUMNS = ("status", "price_id", "quantity", "current_period_start",
                    "current_period_end", "cancel_at_period_end", "cancel_at", "canceled_at",
                    "ended_at", "trial_end", "pause_behavior", "pause_resumes_at", "schedule_id",
                    "card_id", "latest_invoice_id")
_NO_PRICES = PriceBook()
_INVOICE_STAGE = {"draft": 0, "open": 1, "uncollectible": 2, "paid": 3, "void": 3}


def coupon_label(coupon: Obj) -> str:
    """Name a coupon as `/plan` shows it: its name, else "25% (ID)", else its id."""
    off = f"{coupon['percent_off']:g}%" if coupon.get("percent_off") else None
    label = coupon.get("name") or (f"{off} ({coupon['id']})" if off else str(coupon["id"]))
    _coupon_labels[str(coupon["id"])] = str(label)
    return str(label)


async def coupon_name(gateway: StripeGateway, coupon_id: str) -> str:
    """Return a coupon's label, asking Stripe only the first time a process meets it."""
    if coupon_id not in _coupon_labels:
        try:
            coupon_label(await gateway.coupon(coupon_id))
        except NotFound:
            _coupon_labels[coupon_id] = coupon_id
    return _coupon_labels[coupon_id]


def card_columns(method: Any) -> dict[str, Any]:
    card = card_of(method) or {}
    return {"card_id": ref_id(method), "card_brand": card.get("brand"),
            "card_last4": card.get("last4"), "card_exp_month": card.get("exp_month"),
            "card_exp_year": card.get("exp_year")}


def customer_values(data: Obj) -> dict[str, Any]:
    """Map a customer (default payment method expanded) to mirror columns."""
    if data.get("deleted"):
        return {"id": data["id"], "deleted": True}
    method = (data.get("invoice_settings") or {}).get("default_payment_method")
    return {"id": data["id"], "email": data.get("email"), "name": data.get("name"),
            **card_columns(method), "deleted": False}


def _coupon_id(discounts: Any) -> str | None:
    coupon = coupon_of(discounts)
    if isinstance(coupon, Mapping):
        coupon_label(coupon)
    return ref_id(coupon)


def subscription_values(data: Obj, prices: PriceBook) -> dict[str, Any]:
    """Map a subscription (card, schedule and discounts expanded) to mirror columns."""
    first = item(data)
    price = first["price"]
    recurring = price.get("recurring") or {}
    known = prices.by_id(price["id"])
    product = price.get("product")
    pause = data.get("pause_collection") or {}
    scheduled_price, scheduled_at = next_phase(data.get("schedule"))
    return {
        "id": data["id"], "customer_id": ref_id(data["customer"]), "status": data["status"],
        "item_id": first.get("id"), "price_id": price["id"],
        "product_name": known.product_name if known else (
            product.get("name") if isinstance(product, Mapping) else None),
        "unit_amount": price.get("unit_amount") or 0, "currency": price["currency"],
        "interval": recurring.get("interval", "month"),
        "interval_count": recurring.get("interval_count", 1),
        "quantity": first.get("quantity") or 1,
        "current_period_start": when(first.get("current_period_start")),
        "current_period_end": when(first.get("current_period_end")),
        "cancel_at_period_end": bool(data.get("cancel_at_period_end")),
        "cancel_at": when(data.get("cancel_at")), "canceled_at": when(data.get("canceled_at")),
        "ended_at": when(data.get("ended_at")), "trial_end": when(data.get("trial_end")),
        "pause_behavior": pause.get("behavior"), "pause_resumes_at": when(pause.get("resumes_at")),
        "schedule_id": ref_id(data.get("schedule")), "scheduled_price_id": scheduled_price,
        "scheduled_at": scheduled_at, "discount_coupon": _coupon_id(data.get("discounts")),
        **card_columns(data.get("default_payment_method")),
        "latest_invoice_id": ref_id(data.get("latest_invoice")), "created": when(data["created"]),
        **discount_columns(data.get("discounts")),
    }


def invoice_values(data: Obj) -> dict[str, Any]:
    """Map an invoice to mirror columns."""
    parent = (data.get("parent") or {}).get("subscription_details") or {}
    return {
        "id": data["id"], "customer_id": ref_id(data["customer"]),
        "subscription_id": ref_id(parent.get("subscription")) or ref_id(data.get("subscription")),
        "number": data.get("number"), "status": data.get("status") or "draft",
        "billing_reason": data.get("billing_reason"), "total": data.get("total") or 0,
        "amount_due": data.get("amount_due") or 0,
        "amount_remaining": data.get("amount_remaining") or 0, "currency": data["currency"],
        "attempt_count": data.get("attempt_count") or 0,
        "next_payment_attempt": when(data.get("next_payment_attempt")),
        "hosted_url": data.get("hosted_invoice_url"), "pdf_url": data.get("invoice_pdf"),
        "created": when(data["created"]),
    }


def subscription_mirrored(row: Any, payload: Obj) -> bool:
    """Tell whether a stored subscription row already shows an event's object.

    The payload is only compared, never stored: a re-read is skipped when nothing the payload
    fixes differs. Discounts arrive as ids, so a subscription with one is always re-read.
    """
    if row is None or payload.get("discounts") or row.discount_coupon is not None:
        return False
    try:
        seen = subscription_values(payload, _NO_PRICES)
    except (KeyError, IndexError, TypeError, ValueError, OverflowError):
        return False  # a shape the mirror does not know: re-read to be safe
    return all(getattr(row, column) == seen[column] for column in _PAYLOAD_COLUMNS)


def invoice_mirrored(row: Any, payload: Obj) -> bool:
    """Tell whether a stored invoice row shows an event's invoice, or a later stage of it.

    An invoice only moves forward (draft → open → paid, void or uncollectible → paid), so a
    payload at an earlier stage than the row is an event that arrived after a newer read.
    """
    if row is None:
        return False
    try:
        seen = invoice_values(payload)
    except (KeyError, TypeError, ValueError, OverflowError):
        return False
    stored, arrived = _INVOICE_STAGE.get(row.status, 0), _INVOICE_STAGE.get(seen["status"], 0)
    if stored != arrived:
        return stored > arrived and row.attempt_count >= seen["attempt_count"]
    return all(getattr(row, column) == seen[column] for column in (
        "status", "total", "amount_due", "amount_remaining", "attempt_count",
        "next_payment_attempt", "hosted_url", "pdf_url"))
