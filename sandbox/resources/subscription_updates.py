"""POST /v1/subscriptions/{id}: items, cancellation, pause_collection, discounts, metadata."""

from __future__ import annotations

from typing import Any

from sandbox.errors import StripeError, invalid
from sandbox.expand import render, set_metadata
from sandbox.forms import as_bool, as_int
from sandbox.resources.coupons import set_discounts
from sandbox.resources.customers import attach
from sandbox.resources.events import emit
from sandbox.store import Obj, RouteSpec, Store, snapshot

FEEDBACK = (
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
)
PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")


def set_details(sub: Obj, params: dict[str, Any]) -> None:
    """Record `cancellation_details[feedback|comment]` ("" clears), checking Stripe's enum."""
    details = params.get("cancellation_details")
    if details == "":
        sub["cancellation_details"]["feedback"] = sub["cancellation_details"]["comment"] = None
    if not isinstance(details, dict):
        return
    feedback = details.get("feedback")
    if feedback and feedback not in FEEDBACK:
        raise invalid(
            f"Invalid cancellation_details[feedback]: must be one of {', '.join(FEEDBACK)}",
            param="cancellation_details[feedback]",
        )
    for key in ("comment", "feedback"):
        if key in details:
            sub["cancellation_details"][key] = details[key] or None


def set_cancel(store: Store, sub: Obj, params: dict[str, Any]) -> None:
    """Apply cancel_at_period_end / cancel_at and cancellation_details like Stripe."""
    at_end = as_bool(params.get("cancel_at_period_end"))
    if at_end is None and "cancel_at" not in params:
        set_details(sub, params)
        return
    if at_end:
        when: int | None = sub["items"]["data"][0]["current_period_end"]
    elif at_end is None:
        when = as_int(params["cancel_at"], "cancel_at")  # "" unsets it
    else:
        when = None
    sub["cancel_at_period_end"] = bool(at_end)
    sub["cancel_at"] = when
    # Stripe stamps canceled_at with the request time and clears it (and the reason) on undo.
    sub["canceled_at"] = store.now() if when else None
    sub["cancellation_details"]["reason"] = "cancellation_requested" if when else None
    set_details(sub, params)


def _pause(store: Store, raw: Any) -> Obj | None:
    """Validate `pause_collection` ("" unsets it, as Stripe clears any field)."""
    if raw in ("", None):
        return None
    if not isinstance(raw, dict):
        raise invalid("Invalid pause_collection: must be an object or ''.", "pause_collection")
    behavior = raw.get("behavior")
    if behavior not in PAUSE_BEHAVIORS:
        raise invalid(
            f"Invalid pause_collection[behavior]: must be one of {', '.join(PAUSE_BEHAVIORS)}",
            param="pause_collection[behavior]",
        )
    resumes_at = as_int(raw.get("resumes_at"), "pause_collection[resumes_at]")
    if resumes_at is not None and resumes_at <= store.now():
        raise invalid(
            "pause_collection[resumes_at] must be in the future.",
            param="pause_collection[resumes_at]",
        )
    return {"behavior": behavior, "resumes_at": resumes_at}


def update_subscription(store: Store, params: dict[str, Any], id: str) -> Obj:
    """POST /v1/subscriptions/{id}: items, prorations, cancel_at_period_end, pause_collection, …"""
    from sandbox.changes import apply_change

    sub = store.get(id, "subscription")
    if sub["status"] in ("canceled", "incomplete_expired"):
        if set(params) - {"cancellation_details", "metadata", "expand"}:
            raise invalid(
                "A canceled subscription can only update its cancellation_details and metadata."
            )
    before = snapshot(sub)
    pause = _pause(store, params.get("pause_collection"))
    set_details(snapshot(sub), params)  # validate before anything changes
    try:
        if "discounts" in params:
            set_discounts(store, sub, params["discounts"])
        if params.get("items"):
            apply_change(store, sub, params)
    except StripeError:
        sub.clear()
        sub.update(before)  # a refused update (e.g. error_if_incomplete) changes nothing
        raise
    set_cancel(store, sub, params)
    if "pause_collection" in params:
        sub["pause_collection"] = pause
    if "default_payment_method" in params:
        pm = params["default_payment_method"]
        sub["default_payment_method"] = attach(store, pm, sub["customer"])["id"] if pm else None
    if "description" in params:
        sub["description"] = params["description"] or None
    set_metadata(sub, params.get("metadata"))
    if sub != before:
        emit(store, "customer.subscription.updated", sub, before)
    return render(store, sub, params)


ROUTES: list[RouteSpec] = [("POST", "/v1/subscriptions/{id}", update_subscription)]
