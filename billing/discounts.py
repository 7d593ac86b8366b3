"""A subscription's discount terms as the mirror keeps them, for MRR (billing.revenue)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from billing.shapes import when

NONE: dict[str, Any] = {"discount_percent_off": None, "discount_amount_off": None,
                        "discount_currency": None, "discount_duration": None,
                        "discount_end": None}


def discount_columns(discounts: Any) -> dict[str, Any]:
    """Return the first expanded discount's terms (`discounts.source.coupon` expanded).

    The same discount `coupon_of` names: Portier applies one coupon at a time. A discount
    Stripe sent only as an id has no terms here, and none are stored.
    """
    for discount in discounts or []:
        if not isinstance(discount, Mapping):
            continue
        coupon = (discount.get("source") or {}).get("coupon") or discount.get("coupon")
        if not isinstance(coupon, Mapping):
            return dict(NONE)
        percent = coupon.get("percent_off")
        amount = coupon.get("amount_off")
        return {"discount_percent_off": float(percent) if percent else None,
                "discount_amount_off": int(amount) if amount else None,
                "discount_currency": coupon.get("currency") or None,
                "discount_duration": coupon.get("duration") or None,
                "discount_end": when(discount.get("end"))}
    return dict(NONE)
