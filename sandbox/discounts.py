"""Invoice discounts: what a subscription's coupons take off, and `once` coupons used up."""

from __future__ import annotations

from sandbox.store import Obj, Store


def active_discounts(store: Store, sub: Obj, at: int) -> list[Obj]:
    """Return the subscription's discounts that still apply to an invoice made at `at`."""
    found = []
    for discount_id in sub.get("discounts") or []:
        discount = store.objects.get(discount_id) if isinstance(discount_id, str) else None
        if discount is None or discount.get("deleted"):
            continue
        if discount["end"] is None or discount["end"] > at:
            found.append(discount)
    return found


def _share(total: int, weights: list[int]) -> list[int]:
    """Split `total` over lines in proportion to their (positive) amounts."""
    base = sum(weights)
    if base <= 0:
        return [0] * len(weights)
    parts = [total * w // base for w in weights]
    for index in reversed(range(len(parts))):
        if weights[index] > 0:
            parts[index] += total - sum(parts)
            break
    return parts


def apply_discounts(store: Store, invoice: Obj, sub: Obj | None, at: int) -> None:
    """Set line discount_amounts and the invoice's discounts, totals and amount due."""
    lines = invoice["lines"]["data"]
    subtotal = sum(entry["amount"] for entry in lines)
    for entry in lines:
        entry["discount_amounts"] = []
    totals: list[Obj] = []
    for discount in active_discounts(store, sub, at) if sub is not None else []:
        coupon = store.objects[discount["source"]["coupon"]]
        if coupon["percent_off"] is not None:
            # Percent coupons discount each line, so credits for unused time shrink alike.
            parts = [
                round(entry["amount"] * coupon["percent_off"] / 100) if entry["discountable"] else 0
                for entry in lines
            ]
        else:
            remaining = subtotal - sum(t["amount"] for t in totals)
            off = min(int(coupon["amount_off"]), max(remaining, 0))
            parts = _share(off, [max(e["amount"], 0) if e["discountable"] else 0 for e in lines])
        for entry, part in zip(lines, parts, strict=True):
            entry["discount_amounts"].append({"amount": part, "discount": discount["id"]})
        totals.append({"amount": sum(parts), "discount": discount["id"]})
    off = sum(t["amount"] for t in totals)
    total = subtotal - off
    invoice["discounts"] = [t["discount"] for t in totals]
    invoice["total_discount_amounts"] = totals
    invoice["subtotal"] = invoice["subtotal_excluding_tax"] = subtotal
    invoice["total"] = invoice["total_excluding_tax"] = total
    invoice["amount_due"] = invoice["amount_remaining"] = max(total, 0)


def use_once_discounts(store: Store, invoice: Obj, sub: Obj) -> None:
    """Remove `once` discounts from the subscription after the invoice they applied to."""
    from sandbox.resources.coupons import remove_discount

    for discount_id in invoice.get("discounts") or []:
        discount = store.objects.get(discount_id)
        if discount is None:
            continue
        coupon = store.objects.get(discount["source"]["coupon"]) or {}
        if coupon.get("duration") == "once" and discount_id in sub["discounts"]:
            remove_discount(store, sub, discount_id)
