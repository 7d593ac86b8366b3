"""Backfill the local mirror from Stripe: every subscription, invoice and customer.

`portier sync` runs this once after installing (customers who subscribed before Portier ran)
and whenever the mirror should be rebuilt. Lists are read 100 objects a page; each page is
stored in one transaction. Customers come last: a customer's row means all of their
subscriptions and invoices are in the mirror already (see `billing.mirror`). Safe to run while
Portier serves: rows read later by the webhook worker are never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from billing import mirror
from billing.mirror_models import MirrorSubscription
from billing.models import utcnow
from billing.services import Billing

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class Synced:
    """How many objects of each kind `sync_mirror` stored."""

    subscriptions: int
    invoices: int
    customers: int


def _quiet(_kind: str, _done: int) -> None:
    return None


async def sync_mirror(billing: Billing, *, progress: Progress = _quiet) -> Synced:
    """Copy every subscription, invoice and customer from Stripe into the mirror."""
    gateway = billing.gateway
    counts = {"subscriptions": 0, "invoices": 0, "customers": 0}
    progress("subscriptions", 0)
    async for page in gateway.every("subscriptions"):
        read_at = utcnow()
        async with billing.db.session() as session:
            rows = []
            for subscription in page:  # previews first, then the page's writes
                rows.append(await mirror.subscription_row(billing, session, subscription))
                progress("subscriptions", counts["subscriptions"] + len(rows))
            for values in rows:
                await mirror.upsert(session, MirrorSubscription, values, read_at=read_at)
        counts["subscriptions"] += len(rows)
    progress("invoices", 0)
    async for page in gateway.every("invoices"):
        read_at = utcnow()
        async with billing.db.session() as session:
            for invoice in page:
                await mirror.save_invoice(session, invoice, read_at=read_at)
        counts["invoices"] += len(page)
        progress("invoices", counts["invoices"])
    progress("customers", 0)
    async for page in gateway.every("customers"):
        read_at = utcnow()
        async with billing.db.session() as session:
            for customer in page:
                await mirror.save_customer(session, customer, read_at=read_at)
        counts["customers"] += len(page)
        progress("customers", counts["customers"])
    return Synced(**counts)
