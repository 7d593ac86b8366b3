"""Checkout Sessions (mode subscription) and their completion by the hosted page."""

from __future__ import annotations

from typing import Any

from sandbox.cards import CARDS, decline
from sandbox.errors import invalid
from sandbox.expand import render, render_list, set_metadata
from sandbox.forms import as_int
from sandbox.resources.customers import attach, new_customer, resolve_payment_method
from sandbox.resources.events import emit
from sandbox.resources.subscriptions import new_subscription, resolve_items
from sandbox.store import Obj, RouteSpec, Store, new_id


def create_session(store: Store, params: dict[str, Any]) -> Obj:
    """POST /v1/checkout/sessions: mode=subscription with line_items, customer or customer_email."""
    mode = params.get("mode")
    if mode != "subscription":
        raise invalid("The sandbox supports only mode=subscription.", param="mode")
    if not params.get("success_url") and params.get("ui_mode") not in ("embedded", "custom"):
        raise invalid("Missing required param: success_url.", param="success_url")
    pairs = resolve_items(store, params.get("line_items"), "line_items")
    customer = None
    if params.get("customer"):
        customer = store.get(str(params["customer"]), "customer", param="customer")
    if customer and params.get("customer_email"):
        raise invalid(
            "You may only specify one of these parameters: customer, customer_email.",
            param="customer_email",
        )
    raw_data = params.get("subscription_data")
    subscription_data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    session_id = new_id("cs_test_", 58)
    now = store.now()
    total = sum(price["unit_amount"] * qty for price, qty in pairs)
    email = (customer or {}).get("email") or params.get("customer_email")
    session: Obj = {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": params.get("allow_promotion_codes") == "true" or None,
        "amount_subtotal": total,
        "amount_total": total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": params.get("billing_address_collection") or None,
        "cancel_url": params.get("cancel_url") or None,
        "client_reference_id": params.get("client_reference_id") or None,
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": now,
        "currency": pairs[0][0]["currency"],
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": customer["id"] if customer else None,
        "customer_account": None,
        "customer_creation": None if customer else "always",
        "customer_details": {
            "address": None,
            "business_name": None,
            "email": email,
            "individual_name": None,
            "name": None,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": None,
        }
        if email
        else None,
        "customer_email": params.get("customer_email") or None,
        "discounts": [],
        "expires_at": now + 24 * 3600,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": None,
        "livemode": False,
        "locale": params.get("locale") or None,
        "managed_payments": None,
        "metadata": {},
        "mode": "subscription",
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always",
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": params.get("success_url") or None,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": params.get("ui_mode") or "hosted",
        "url": f"{store.public_url}/pay/checkout/{session_id}",
        "wallet_options": None,
    }
    set_metadata(session, params.get("metadata"))
    store.put(session)
    # Kept beside the session (not in it): what the page sells and how to set up the subscription.
    store.checkout_plans[session_id] = {
        "items": [(price["id"], qty) for price, qty in pairs],
        "metadata": subscription_data.get("metadata"),
        "trial_days": as_int(
            subscription_data.get("trial_period_days"), "subscription_data[trial_period_days]"
        ),
        "description": subscription_data.get("description"),
    }
    return render(store, session, params)


def complete(
    store: Store, session_id: str, payment_method: str = "pm_card_visa", email: str | None = None
) -> Obj:
    """Pay a session as the hosted page does: customer, card, subscription, first invoice."""
    session = store.get(session_id, "checkout.session", "checkout.session")
    if session["status"] != "open":
        raise invalid(
            f"This Checkout Session is {session['status']}.", code="checkout_session_not_open"
        )
    if session["expires_at"] <= store.now():
        raise invalid("This Checkout Session has expired.", code="checkout_session_expired")
    plan = store.checkout_plans[session_id]
    card = CARDS.get(payment_method)
    if payment_method not in CARDS:
        resolve_payment_method(store, payment_method)
    elif (
        card is not None and (card.attach_decline or card.charge_decline) and not plan["trial_days"]
    ):
        # The page refuses the card before anything is created, as Checkout does.
        raise decline(card.attach_decline or card.charge_decline or "generic_decline")
    customer = store.find(session["customer"], "customer") if session["customer"] else None
    email = email or (session["customer_details"] or {}).get("email")
    if customer is None:
        customer = new_customer(store, {"email": email})
    # Checkout in subscription mode attaches the card to the customer and makes it the
    # *subscription's* default_payment_method; the customer's invoice default stays as it was
    # (docs.stripe.com/payments/checkout/subscriptions/update-payment-details sets the customer
    # default as a separate, explicit step).
    card_id = attach(store, payment_method, customer["id"])["id"]
    pairs = [(store.objects[price_id], qty) for price_id, qty in plan["items"]]
    sub = new_subscription(
        store,
        customer,
        pairs,
        pm_id=card_id,
        metadata=plan["metadata"],
        trial_days=plan["trial_days"],
        description=plan["description"],
    )
    session.update(
        customer=customer["id"],
        subscription=sub["id"],
        invoice=None,
        status="complete",
        payment_status="paid" if sub["status"] == "active" else "no_payment_required",
        url=None,
        customer_details={
            "address": None,
            "business_name": None,
            "email": customer["email"],
            "individual_name": None,
            "name": customer["name"],
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
    )
    emit(store, "checkout.session.completed", session)
    return session


def expire(store: Store, params: dict[str, Any], id: str) -> Obj:
    """POST /v1/checkout/sessions/{id}/expire."""
    session = store.get(id, "checkout.session", "checkout.session")
    if session["status"] != "open":
        raise invalid("Only open Checkout Sessions can be expired.")
    session.update(status="expired", url=None)
    emit(store, "checkout.session.expired", session)
    return render(store, session, params)


def retrieve_session(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/checkout/sessions/{id}."""
    return render(store, store.get(id, "checkout.session", "checkout.session"), params)


def list_sessions(store: Store, params: dict[str, Any]) -> Obj:
    """GET /v1/checkout/sessions with customer, subscription, status."""
    wanted = {k: params[k] for k in ("customer", "subscription", "status") if params.get(k)}
    items = store.all("checkout.session", lambda s: all(s[k] == v for k, v in wanted.items()))
    return render_list(store, items, params, "/v1/checkout/sessions")


ROUTES: list[RouteSpec] = [
    ("POST", "/v1/checkout/sessions", create_session),
    ("GET", "/v1/checkout/sessions", list_sessions),
    ("GET", "/v1/checkout/sessions/{id}", retrieve_session),
    ("POST", "/v1/checkout/sessions/{id}/expire", expire),
]
