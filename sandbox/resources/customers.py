"""Customers and their payment methods."""

from __future__ import annotations

import secrets
from typing import Any

from sandbox.cards import CARDS, TestCard, card_for, decline
from sandbox.errors import StripeError, invalid
from sandbox.expand import render, render_list, set_metadata
from sandbox.forms import as_list
from sandbox.resources.events import emit
from sandbox.store import Obj, RouteSpec, Store, new_id, snapshot


def _address() -> Obj:
    return {k: None for k in ("city", "country", "line1", "line2", "postal_code", "state")}


def new_customer(store: Store, params: dict[str, Any]) -> Obj:
    """Create and store a customer (emits customer.created), attaching any payment method."""
    customer: Obj = {
        "id": new_id("cus_", 14),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": store.now(),
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": params.get("description") or None,
        "discount": None,
        "email": params.get("email") or None,
        "invoice_prefix": secrets.token_hex(4).upper()[:8],
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": params.get("name") or None,
        "next_invoice_sequence": 1,
        "phone": params.get("phone") or None,
        "preferred_locales": [str(x) for x in as_list(params.get("preferred_locales"))],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    set_metadata(customer, params.get("metadata"))
    store.put(customer)
    emit(store, "customer.created", customer)
    pm = params.get("payment_method")
    if pm:
        attach(store, str(pm), customer["id"])
    settings = params.get("invoice_settings")
    if isinstance(settings, dict) and settings.get("default_payment_method"):
        set_default_payment_method(store, customer, str(settings["default_payment_method"]))
    return customer


def create_customer(store: Store, params: dict[str, Any]) -> Obj:
    """POST /v1/customers: email, name, description, phone, metadata, payment_method."""
    return render(store, new_customer(store, params), params)


def retrieve_customer(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/customers/{id} (a deleted customer answers `deleted: true`)."""
    found = store.objects.get(id)
    if found is not None and found.get("object") == "customer" and found.get("deleted"):
        return {"id": id, "object": "customer", "deleted": True}
    return render(store, store.get(id, "customer"), params)


def update_customer(store: Store, params: dict[str, Any], id: str) -> Obj:
    """POST /v1/customers/{id}: email, name, phone, description, metadata, invoice_settings."""
    customer = store.get(id, "customer")
    before = snapshot(customer)
    for key in ("email", "name", "phone", "description"):
        if key in params:
            customer[key] = params[key] or None
    if "preferred_locales" in params:
        customer["preferred_locales"] = [str(x) for x in as_list(params["preferred_locales"])]
    set_metadata(customer, params.get("metadata"))
    settings = params.get("invoice_settings")
    if isinstance(settings, dict) and "default_payment_method" in settings:
        pm = settings["default_payment_method"]
        if pm:
            payment_method = store.get(
                str(pm), "payment_method", param="invoice_settings[default_payment_method]"
            )
            if payment_method["customer"] != id:
                raise invalid(
                    f"The customer does not have a payment method with the ID {pm}.",
                    param="invoice_settings[default_payment_method]",
                )
        customer["invoice_settings"]["default_payment_method"] = pm or None
    if customer != before:
        emit(store, "customer.updated", customer, before)
    return render(store, customer, params)


def delete_customer(store: Store, params: dict[str, Any], id: str) -> Obj:
    """DELETE /v1/customers/{id}: cancels the customer's subscriptions."""
    from sandbox.resources.subscriptions import end_subscription

    customer = store.get(id, "customer")
    for sub in store.all(
        "subscription", lambda s: s["customer"] == id and s["status"] != "canceled"
    ):
        end_subscription(store, sub)
    customer["deleted"] = True
    emit(store, "customer.deleted", customer)
    return {"id": id, "object": "customer", "deleted": True}


def list_customers(store: Store, params: dict[str, Any]) -> Obj:
    """GET /v1/customers with email."""
    email = params.get("email")
    items = store.all("customer", lambda c: not email or c["email"] == email)
    return render_list(store, items, params, "/v1/customers")


def _payment_method(store: Store, card: TestCard) -> Obj:
    return store.put(
        {
            "id": new_id("pm_"),
            "object": "payment_method",
            "allow_redisplay": "unspecified",
            "billing_details": {
                "address": _address(),
                "email": None,
                "name": None,
                "phone": None,
                "tax_id": None,
            },
            "card": {
                "brand": card.brand,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "country": "US",
                "display_brand": card.brand,
                "exp_month": 12,
                "exp_year": 2034,
                "fingerprint": secrets.token_hex(8),
                "funding": card.funding,
                "generated_from": None,
                "last4": card.last4,
                "networks": {"available": [card.brand], "preferred": None},
                "regulated_status": "unregulated",
                "three_d_secure_usage": {"supported": True},
                "wallet": None,
            },
            "created": store.now(),
            "customer": None,
            "customer_account": None,
            "livemode": False,
            "metadata": {},
            "type": "card",
        }
    )


def resolve_payment_method(store: Store, pm_id: str, param: str = "payment_method") -> Obj:
    """Return a stored payment method; a test token (`pm_card_visa`) makes a fresh one."""
    if pm_id in CARDS:
        return _payment_method(store, CARDS[pm_id])
    return store.get(pm_id, "payment_method", param=param)


def attach(store: Store, pm_id: str, customer_id: str) -> Obj:
    """Attach a payment method to a customer (emits payment_method.attached)."""
    customer = store.get(customer_id, "customer", param="customer")
    card = CARDS.get(pm_id)
    if card is not None and card.attach_decline:
        raise decline(card.attach_decline)
    pm = resolve_payment_method(store, pm_id)
    if pm["customer"] == customer["id"]:
        return pm
    if pm["customer"] is not None:
        raise invalid(
            "The payment method you provided has already been attached to a customer.",
            param="payment_method",
        )
    pm["customer"] = customer["id"]
    emit(store, "payment_method.attached", pm)
    return pm


def set_default_payment_method(store: Store, customer: Obj, pm_id: str) -> None:
    """Make a payment method the customer's invoice default (emits customer.updated)."""
    before = snapshot(customer)
    pm = attach(store, pm_id, customer["id"])
    customer["invoice_settings"]["default_payment_method"] = pm["id"]
    if customer != before:
        emit(store, "customer.updated", customer, before)


def charge(store: Store, pm_id: str | None) -> Obj:
    """Charge a stored payment method: return it, or raise the card's decline."""
    if not pm_id:
        raise StripeError(
            402,
            "card_error",
            "This customer has no attached payment source or default payment method.",
            code="missing",
        )
    pm = store.get(pm_id, "payment_method", param="payment_method")
    card = card_for(pm["card"]["brand"], pm["card"]["last4"])
    if card is not None and (card.charge_decline or card.attach_decline):
        raise decline(card.charge_decline or card.attach_decline or "generic_decline")
    return pm


def attach_payment_method(store: Store, params: dict[str, Any], id: str) -> Obj:
    """POST /v1/payment_methods/{id}/attach with customer."""
    if not params.get("customer"):
        raise invalid("Missing required param: customer.", param="customer")
    return render(store, attach(store, id, str(params["customer"])), params)


def detach_payment_method(store: Store, params: dict[str, Any], id: str) -> Obj:
    """POST /v1/payment_methods/{id}/detach: also clears defaults that named it."""
    pm = store.get(id, "payment_method")
    if pm["customer"] is None:
        raise invalid(
            "The payment method you provided is not attached to a customer "
            "so detachment is impossible.",
            param="payment_method",
        )
    customer = store.find(pm["customer"], "customer")
    if customer is not None and customer["invoice_settings"]["default_payment_method"] == id:
        before = snapshot(customer)
        customer["invoice_settings"]["default_payment_method"] = None
        emit(store, "customer.updated", customer, before)
    for sub in store.all("subscription", lambda s: s["default_payment_method"] == id):
        sub["default_payment_method"] = None
    previous = {"customer": pm["customer"]}
    pm["customer"] = None
    emit(store, "payment_method.detached", pm, previous)
    return render(store, pm, params)


def retrieve_payment_method(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/payment_methods/{id}."""
    return render(store, resolve_payment_method(store, id, "id"), params)


def list_payment_methods(store: Store, params: dict[str, Any]) -> Obj:
    """GET /v1/payment_methods with customer (and type)."""
    customer = params.get("customer")
    if customer:
        store.get(str(customer), "customer", param="customer")
    return _list_for(store, params, str(customer or ""), "/v1/payment_methods")


def list_customer_payment_methods(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/customers/{id}/payment_methods."""
    store.get(id, "customer")
    return _list_for(store, params, id, f"/v1/customers/{id}/payment_methods")


def _list_for(store: Store, params: dict[str, Any], customer: str, url: str) -> Obj:
    kind = params.get("type")
    items = store.all(
        "payment_method",
        lambda p: (
            p["customer"] is not None
            and (not customer or p["customer"] == customer)
            and (not kind or p["type"] == kind)
        ),
    )
    return render_list(store, items, params, url)


ROUTES: list[RouteSpec] = [
    ("POST", "/v1/customers", create_customer),
    ("GET", "/v1/customers", list_customers),
    ("GET", "/v1/customers/{id}", retrieve_customer),
    ("POST", "/v1/customers/{id}", update_customer),
    ("DELETE", "/v1/customers/{id}", delete_customer),
    ("GET", "/v1/customers/{id}/payment_methods", list_customer_payment_methods),
    ("GET", "/v1/payment_methods", list_payment_methods),
    ("GET", "/v1/payment_methods/{id}", retrieve_payment_method),
    ("POST", "/v1/payment_methods/{id}/attach", attach_payment_method),
    ("POST", "/v1/payment_methods/{id}/detach", detach_payment_method),
]
