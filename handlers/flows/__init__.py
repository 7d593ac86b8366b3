"""The customer conversations; importing this package registers them on the router."""

from handlers.flows import (
    broadcast,
    cancel,
    card,
    change,
    forget,
    help,
    invoices,
    plan,
    settings,
    start,
    stats,
    subscribe,
    team,
    team_invoices,
)

__all__ = ["broadcast", "cancel", "card", "change", "forget", "help", "invoices", "plan",
           "settings", "start", "stats", "subscribe", "team",
           "team_invoices"]
