"""The customer conversations; importing this package registers them on the router."""

from handlers.flows import card, forget, help, invoices, plan, start, subscribe

__all__ = ["card", "forget", "help", "invoices", "plan", "start", "subscribe"]
