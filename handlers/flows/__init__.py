"""The customer conversations; importing this package registers them on the router."""

from handlers.flows import (
    assign,
    audit,
    broadcast,
    cancel,
    card,
    change,
    forget,
    help,
    invoices,
    plan,
    seat_requests,
    settings,
    start,
    stats,
    subscribe,
    team,
    team_admins,
    team_invoices,
)

__all__ = ["assign", "audit", "broadcast", "cancel", "card", "change", "forget", "help",
           "invoices", "plan", "seat_requests", "settings", "start", "stats", "subscribe",
           "team", "team_admins", "team_invoices"]
