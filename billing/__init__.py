"""Portier's billing domain: Stripe gateway, catalog, links, subscriptions, invoices, events."""
