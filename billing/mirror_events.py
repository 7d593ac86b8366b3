"""Event handlers that keep the local mirror current: each re-reads its object from Stripe.

They are registered with `on(..., first=True)`, so for any event they run before every other
handler of its type (notices, welcome messages) whatever the import order, and those handlers
read the rows just written, in the same transaction. `billing.events` also imports this module
before registering its own handlers.

A customer new to the mirror is adopted whole (customer, every subscription and invoice), so a
customer row always means the customer's subscriptions are all there. An event older than the
newest one already applied to its object skips its re-read: the stored state is newer.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from billing import mirror
from billing.errors import NotFound
from billing.mirror_models import MirrorCustomer, MirrorInvoice, MirrorSubscription
from billing.models import utcnow
from billing.services import Billing
from billing.webhooks import on

CUSTOMER_EVENTS = ("customer.created", "customer.updated", "customer.deleted")
PAYMENT_METHOD_EVENTS = ("payment_method.attached", "payment_method.detached",
                         "payment_method.updated", "payment_method.automatically_updated")
SUBSCRIPTION_EVENTS = tuple(f"customer.subscription.{kind}" for kind in (
    "created", "updated", "deleted", "paused", "resumed", "trial_will_end",
    "pending_update_applied", "pending_update_expired"))
INVOICE_EVENTS = tuple(f"invoice.{kind}" for kind in (
    "created", "finalized", "finalization_failed", "updated", "paid", "payment_succeeded",
    "payment_failed", "payment_action_required", "voided", "marked_uncollectible", "deleted",
    "overdue", "sent"))
SCHEDULE_EVENTS = tuple(f"subscription_schedule.{kind}" for kind in (
    "created", "updated", "released", "canceled", "completed", "aborted", "expiring"))
DISCOUNT_EVENTS = ("customer.discount.created", "customer.discount.updated",
                   "customer.discount.deleted")


def _object(event: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = event["data"]["object"]
    return data


async def _adopted(billing: Billing, session: AsyncSession, customer_id: str | None) -> bool:
    """Load a customer new to the mirror whole; return True if that happened (or is moot)."""
    if customer_id is None:
        return True
    if await mirror.known(session, customer_id):
        return False
    try:
        await mirror.refresh_customer(billing, customer_id, session)
    except NotFound:  # deleted meanwhile, or not a customer of this account
        pass
    return True


async def refresh_customer_row(billing: Billing, session: AsyncSession,
                               customer_id: str | None) -> None:
    """Re-read a customer (their default card) into the mirror."""
    if customer_id is None or await _adopted(billing, session, customer_id):
        return
    read_at, gateway = utcnow(), billing.gateway
    try:
        data = mirror.plain(await gateway.call(gateway.v1.customers.retrieve_async, customer_id,
                                               {"expand": mirror.CUSTOMER_EXPAND}))
    except NotFound:
        return
    values = ({"id": customer_id, "deleted": True} if data.get("deleted")
              else mirror.customer_values(data))
    await mirror.upsert(session, MirrorCustomer, values, read_at=read_at)


async def refresh_subscription(billing: Billing, session: AsyncSession, subscription_id: str,
                               customer_id: str | None, created: int) -> None:
    """Re-read a subscription into the mirror unless a newer event was applied to it."""
    if await _adopted(billing, session, customer_id):
        return
    if await mirror.seen_at(session, MirrorSubscription, subscription_id) > created:
        return
    read_at, gateway = utcnow(), billing.gateway
    data = mirror.plain(await gateway.call(gateway.v1.subscriptions.retrieve_async,
                                           subscription_id,
                                           {"expand": mirror.SUBSCRIPTION_EXPAND}))
    await mirror.save_subscription(billing, session, data, read_at=read_at, seen=created)


@on("checkout.session.completed", first=True)
async def mirror_checkout(billing: Billing, session: AsyncSession,
                          event: dict[str, Any]) -> None:
    """Load the paying customer whole: their new subscription and first invoice."""
    customer_id = mirror.ref_id(_object(event).get("customer"))
    if customer_id is not None:
        try:
            await mirror.refresh_customer(billing, customer_id, session)
        except NotFound:
            pass


async def mirror_customer(billing: Billing, session: AsyncSession,
                          event: dict[str, Any]) -> None:
    """Re-read the customer an event is about."""
    await refresh_customer_row(billing, session, _object(event)["id"])


async def mirror_payment_method(billing: Billing, session: AsyncSession,
                                event: dict[str, Any]) -> None:
    """Re-read the card's customer, whose default card may have changed."""
    method = _object(event)
    owner = method.get("customer") or (event["data"].get("previous_attributes") or {}).get(
        "customer")
    await refresh_customer_row(billing, session, mirror.ref_id(owner))


async def mirror_subscription(billing: Billing, session: AsyncSession,
                              event: dict[str, Any]) -> None:
    """Re-read the subscription an event is about."""
    sub = _object(event)
    await refresh_subscription(billing, session, sub["id"], mirror.ref_id(sub.get("customer")),
                               int(event.get("created") or 0))


async def mirror_schedule(billing: Billing, session: AsyncSession,
                          event: dict[str, Any]) -> None:
    """Re-read the subscription a schedule changes (its next phase)."""
    schedule = _object(event)
    subscription = mirror.ref_id(schedule.get("subscription") or schedule.get(
        "released_subscription"))
    if subscription is not None:
        await refresh_subscription(billing, session, subscription,
                                   mirror.ref_id(schedule.get("customer")),
                                   int(event.get("created") or 0))


async def mirror_discount(billing: Billing, session: AsyncSession,
                          event: dict[str, Any]) -> None:
    """Re-read the subscription a discount applies to."""
    discount = _object(event)
    subscription = mirror.ref_id(discount.get("subscription"))
    if subscription is not None:
        await refresh_subscription(billing, session, subscription,
                                   mirror.ref_id(discount.get("customer")),
                                   int(event.get("created") or 0))


async def mirror_invoice(billing: Billing, session: AsyncSession,
                         event: dict[str, Any]) -> None:
    """Re-read the invoice an event is about (forget a deleted draft)."""
    invoice = _object(event)
    invoice_id, created = invoice.get("id"), int(event.get("created") or 0)
    if not invoice_id or await _adopted(billing, session, mirror.ref_id(invoice.get("customer"))):
        return
    if await mirror.seen_at(session, MirrorInvoice, invoice_id) > created:
        return
    read_at, gateway = utcnow(), billing.gateway
    try:
        data = mirror.plain(await gateway.call(gateway.v1.invoices.retrieve_async, invoice_id))
    except NotFound:
        await session.execute(delete(MirrorInvoice).where(MirrorInvoice.id == invoice_id))
        return
    await mirror.upsert(session, MirrorInvoice, mirror.invoice_values(data), read_at=read_at,
                        seen=created)


for _type in CUSTOMER_EVENTS:
    on(_type, first=True)(mirror_customer)
for _type in PAYMENT_METHOD_EVENTS:
    on(_type, first=True)(mirror_payment_method)
for _type in SUBSCRIPTION_EVENTS:
    on(_type, first=True)(mirror_subscription)
for _type in SCHEDULE_EVENTS:
    on(_type, first=True)(mirror_schedule)
for _type in DISCOUNT_EVENTS:
    on(_type, first=True)(mirror_discount)
for _type in INVOICE_EVENTS:
    on(_type, first=True)(mirror_invoice)
