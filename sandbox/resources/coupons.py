"""Coupons, and the discounts they become when applied to a subscription."""

from __future__ import annotations

from typing import Any

from sandbox.clock import add_interval
from sandbox.errors import invalid
from sandbox.expand import render, render_list, set_metadata
from sandbox.forms import as_int, as_list
from sandbox.resources.events import emit
from sandbox.store import Obj, RouteSpec, Store, new_id, snapshot

DURATIONS = ("once", "repeating", "forever")


def _percent(value: Any) -> float | None:
    if value in (None, ""):
        return None
    try:
        percent = float(str(value))
    except ValueError:
        raise invalid(f"Invalid decimal: {value}", param="percent_off") from None
    if not 0 < percent <= 100:
        raise invalid("percent_off must be between 0 and 100.", param="percent_off")
    return int(percent) if percent.is_integer() else percent


def create_coupon(store: Store, params: dict[str, Any]) -> Obj:
    """POST /v1/coupons: percent_off or amount_off+currency, duration, duration_in_months."""
    percent = _percent(params.get("percent_off"))
    amount = as_int(params.get("amount_off"), "amount_off")
    if (percent is None) == (amount is None):
        raise invalid("You must pass exactly one of percent_off or amount_off.", param="amount_off")
    currency = str(params.get("currency") or "").lower() or None
    if amount is not None and not currency:
        raise invalid("You must pass currency when passing amount_off.", param="currency")
    duration = str(params.get("duration") or "once")
    if duration not in DURATIONS:
        raise invalid(f"Invalid duration: {duration}", param="duration")
    months = as_int(params.get("duration_in_months"), "duration_in_months")
    if duration == "repeating" and not months:
        raise invalid(
            "You must pass duration_in_months when duration is repeating.",
            param="duration_in_months",
        )
    if duration != "repeating" and months is not None:
        raise invalid(
            "duration_in_months can only be set when duration is repeating.",
            param="duration_in_months",
        )
    coupon_id = str(params.get("id") or new_id("", 8))
    if coupon_id in store.objects:
        raise invalid("Coupon already exists.", param="id", code="resource_already_exists")
    coupon: Obj = {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": amount,
        "created": store.now(),
        "currency": currency if amount is not None else None,
        "duration": duration,
        "duration_in_months": months,
        "livemode": False,
        "max_redemptions": as_int(params.get("max_redemptions"), "max_redemptions"),
        "metadata": {},
        "name": params.get("name") or None,
        "percent_off": percent,
        "redeem_by": as_int(params.get("redeem_by"), "redeem_by"),
        "times_redeemed": 0,
        "valid": True,
    }
    set_metadata(coupon, params.get("metadata"))
    store.put(coupon)
    emit(store, "coupon.created", coupon)
    return render(store, coupon, params)


def retrieve_coupon(store: Store, params: dict[str, Any], id: str) -> Obj:
    """GET /v1/coupons/{id}."""
    return render(store, store.get(id, "coupon"), params)


def list_coupons(store: Store, params: dict[str, Any]) -> Obj:
    """GET /v1/coupons."""
    return render_list(store, store.all("coupon"), params, "/v1/coupons")


def delete_coupon(store: Store, params: dict[str, Any], id: str) -> Obj:
    """DELETE /v1/coupons/{id}: existing discounts keep working, new ones cannot use it."""
    coupon = store.get(id, "coupon")
    coupon["deleted"] = True
    emit(store, "coupon.deleted", coupon)
    return {"id": id, "object": "coupon", "deleted": True}


def _redeemable(store: Store, coupon: Obj) -> bool:
    limit, by = coupon["max_redemptions"], coupon["redeem_by"]
    return (limit is None or coupon["times_redeemed"] < limit) and (by is None or by > store.now())


def new_discount(store: Store, coupon: Obj, sub: Obj, param: str) -> Obj:
    """Redeem a coupon on a subscription: store the discount (customer.discount.created)."""
    if not coupon["valid"] or not _redeemable(store, coupon):
        raise invalid(f"Coupon expired: {coupon['id']}", param=param)
    if coupon["currency"] and coupon["currency"] != sub["currency"]:
        raise invalid(
            "The coupon's currency does not match the subscription's currency.", param=param
        )
    now = store.now()
    months = coupon["duration_in_months"]
    discount: Obj = {
        "id": new_id("di_"),
        "object": "discount",
        "checkout_session": None,
        "customer": sub["customer"],
        "customer_account": None,
        "end": add_interval(now, "month", months) if coupon["duration"] == "repeating" else None,
        "invoice": None,
        "invoice_item": None,
        "promotion_code": None,
        "source": {"coupon": coupon["id"], "type": "coupon"},
        "start": now,
        "subscription": sub["id"],
        "subscription_item": None,
    }
    coupon["times_redeemed"] += 1
    coupon["valid"] = _redeemable(store, coupon)
    store.put(discount)
    emit(store, "customer.discount.created", discount)
    return discount


def remove_discount(store: Store, sub: Obj, discount_id: str) -> None:
    """Take a discount off a subscription (customer.discount.deleted)."""
    sub["discounts"] = [d for d in sub["discounts"] if d != discount_id]
    discount = store.find(discount_id, "discount")
    if discount is not None and not discount.get("deleted"):
        discount["deleted"] = True
        emit(store, "customer.discount.deleted", discount)


def set_discounts(store: Store, sub: Obj, raw: Any) -> None:
    """Apply `discounts[i][coupon|discount]` ("" clears) to a subscription, like Stripe."""
    wanted: list[str] = []
    for index, entry in enumerate(as_list(raw)):
        param = f"discounts[{index}]"
        entry = entry if isinstance(entry, dict) else {}
        if entry.get("discount"):
            found = store.get(str(entry["discount"]), "discount", param=f"{param}[discount]")
            wanted.append(found["id"])
        elif entry.get("coupon"):
            coupon = store.get(str(entry["coupon"]), "coupon", param=f"{param}[coupon]")
            same = [
                d for d in sub["discounts"] if store.objects[d]["source"]["coupon"] == coupon["id"]
            ]
            wanted.append(
                same[0] if same else new_discount(store, coupon, sub, f"{param}[coupon]")["id"]
            )
        else:
            raise invalid("Missing required param: coupon.", param=f"{param}[coupon]")
    for old in list(sub["discounts"]):
        if old not in wanted:
            remove_discount(store, sub, old)
    sub["discounts"] = wanted


def delete_subscription_discount(store: Store, params: dict[str, Any], id: str) -> Obj:
    """DELETE /v1/subscriptions/{id}/discount: remove its discounts; answer the deleted one."""
    sub = store.get(id, "subscription")
    if not sub["discounts"]:
        raise invalid(f"No active discount for subscription: '{id}'", code="resource_missing")
    before = snapshot(sub)
    first = store.objects[sub["discounts"][0]]
    for discount_id in list(sub["discounts"]):
        remove_discount(store, sub, discount_id)
    emit(store, "customer.subscription.updated", sub, before)
    answer = {k: v for k, v in snapshot(first).items() if k != "end"}
    answer["deleted"] = True
    return answer


ROUTES: list[RouteSpec] = [
    ("POST", "/v1/coupons", create_coupon),
    ("GET", "/v1/coupons", list_coupons),
    ("GET", "/v1/coupons/{id}", retrieve_coupon),
    ("DELETE", "/v1/coupons/{id}", delete_coupon),
    ("DELETE", "/v1/subscriptions/{id}/discount", delete_subscription_discount),
]
