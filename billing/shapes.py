"""Reading Stripe's JSON shapes: one home for each small helper the billing modules share."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from billing.gateway import plain, ref_id

__all__ = ["card_of", "coupon_of", "item", "next_phase", "plain", "ref_id", "when"]
Obj = Mapping[str, Any]


def when(value: Any) -> datetime | None:
    """Return a Unix time from Stripe as an aware UTC datetime (None for none)."""
    return datetime.fromtimestamp(int(value), UTC) if value else None


def item(subscription: Obj) -> dict[str, Any]:
    """Return a subscription's first item (Portier sells one price per subscription)."""
    first: dict[str, Any] = subscription["items"]["data"][0]
    return first


def card_of(method: Any) -> Obj | None:
    """Return the card of an expanded payment method (None for an id, nothing or no card)."""
    card = method.get("card") if isinstance(method, Mapping) else None
    return card if isinstance(card, Mapping) else None


def coupon_of(discounts: Any) -> Obj | str | None:
    """Return the coupon of a subscription's first discount: the object when expanded."""
    for discount in discounts or []:
        if not isinstance(discount, Mapping):
            continue
        coupon = (discount.get("source") or {}).get("coupon") or discount.get("coupon")
        if coupon:
            return coupon if isinstance(coupon, Mapping | str) else None
    return None


def next_phase(schedule: Any) -> tuple[str | None, datetime | None]:
    """Return the price and start of the phase after the current one of an active schedule."""
    if not isinstance(schedule, Mapping) or schedule.get("status") not in ("active",
                                                                          "not_started"):
        return None, None
    current = schedule.get("current_phase") or {}
    end = current.get("end_date")
    later = [p for p in schedule.get("phases") or []
             if (end is None and current == {}) or (end is not None and p["start_date"] >= end)]
    if not later or not later[0].get("items"):
        return None, None
    return ref_id(later[0]["items"][0].get("price")), when(later[0]["start_date"])
