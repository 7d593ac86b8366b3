"""Billing portal sessions and their completion (a new default card)."""

from __future__ import annotations

from typing import Any

from sandbox.errors import invalid
from sandbox.expand import render
from sandbox.resources.customers import set_default_payment_method
from sandbox.resources.events import emit
from sandbox.store import Obj, RouteSpec, Store, new_id, snapshot

FLOWS = (
    "payment_method_update",
    "subscription_cancel",
    "subscription_update",
    "subscription_update_confirm",
)


def create_session(store: Store, params: dict[str, Any]) -> Obj:
    """POST /v1/billing_portal/sessions: customer, return_url, flow_data[type]."""
    if not params.get("customer"):
        raise invalid("Missing required param: customer.", param="customer")
    customer = store.get(str(params["customer"]), "customer", param="customer")
    flow_data = params.get("flow_data") if isinstance(params.get("flow_data"), dict) else None
    flow = None
    if flow_data is not None:
        kind = flow_data.get("type")
        if kind not in FLOWS:
            raise invalid(f"Invalid flow_data[type]: {kind}", param="flow_data[type]")
        after = (
            flow_data.get("after_completion")
            if isinstance(flow_data.get("after_completion"), dict)
            else {}
        )
        redirect = after.get("redirect") if isinstance(after.get("redirect"), dict) else None
        flow = {
            "after_completion": {
                "hosted_confirmation": None,
                "redirect": {"return_url": redirect.get("return_url")} if redirect else None,
                "type": after.get("type") or "portal_homepage",
            },
            "subscription_cancel": None,
            "subscription_update": None,
            "subscription_update_confirm": None,
            "type": kind,
        }
    session_id = new_id("bps_")
    session: Obj = {
        "id": session_id,
        "object": "billing_portal.session",
        "configuration": "bpc_sandbox_default",
        "created": store.now(),
        "customer": customer["id"],
        "customer_account": None,
        "flow": flow,
        "livemode": False,
        "locale": params.get("locale") or None,
        "on_behalf_of": None,
        "return_url": params.get("return_url") or None,
        "url": f"{store.public_url}/pay/portal/{session_id}",
    }
    store.put(session)
    return render(store, session, params)


def complete(store: Store, session_id: str, payment_method: str = "pm_card_visa") -> Obj:
    """Save a new card as the hosted portal does: customer and subscription defaults."""
    session = store.get(session_id, "billing_portal.session", "billing_portal.session")
    customer = store.get(session["customer"], "customer", param="customer")
    set_default_payment_method(store, customer, payment_method)
    new_pm = customer["invoice_settings"]["default_payment_method"]
    for sub in store.all(
        "subscription",
        lambda s: (
            s["customer"] == customer["id"]
            and s["status"] not in ("canceled", "incomplete_expired")
        ),
    ):
        if sub["default_payment_method"] not in (None, new_pm):
            before = snapshot(sub)
            sub["default_payment_method"] = new_pm
            emit(store, "customer.subscription.updated", sub, before)
    return session


def return_url(session: Obj) -> str | None:
    """Return where the portal sends the customer when done."""
    flow = session.get("flow") or {}
    redirect = (flow.get("after_completion") or {}).get("redirect") or {}
    return redirect.get("return_url") or session.get("return_url")


ROUTES: list[RouteSpec] = [("POST", "/v1/billing_portal/sessions", create_session)]
