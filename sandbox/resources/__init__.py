"""Stripe resource families served by the sandbox, one module each."""
