"""The demo catalog: Basic and Pro, monthly and yearly, and a per-seat team price."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.control import Sandbox
    from sandbox.store import Obj

DEMO_CATALOG = (
    {"product": "Basic", "lookup_key": "basic_monthly", "unit_amount": 900, "interval": "month"},
    {"product": "Basic", "lookup_key": "basic_yearly", "unit_amount": 9000, "interval": "year"},
    {"product": "Pro", "lookup_key": "pro_monthly", "unit_amount": 2900, "interval": "month"},
    {"product": "Pro", "lookup_key": "pro_yearly", "unit_amount": 29000, "interval": "year"},
    {"product": "Team", "lookup_key": "team_seat_monthly", "unit_amount": 800, "interval": "month"},
)


def seed_demo_catalog(sb: Sandbox) -> dict[str, Obj]:
    """Create the demo products and EUR prices; return the prices by lookup key."""
    return sb.seed_catalog(dict(row, currency="eur") for row in DEMO_CATALOG)
