"""Portier runtime: settings, HTTP server, channel adapters, scheduler, outbox and CLI."""
