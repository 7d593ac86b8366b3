"""A saved card as chat texts name it: brand, last four digits, expiry, and whose it is."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SavedCard:
    """A card payment method: its id, the customer it is attached to, brand, last4, expiry."""

    id: str
    customer_id: str | None
    brand: str
    last4: str
    exp_month: int
    exp_year: int
