"""Event handlers that keep the local mirror current: each re-reads its object from Stripe.

They are registered with `on(..., first=True)`, so for any event they run before every other
handler of its type (notices, welcome messages) whatever the import order, and those handlers
read the rows just written, in the same transaction. `billing.events` also imports this module
before registering its own handlers.

A customer new to the mirror is adopted whole (customer, every subscription and invoice), so a
customer row always means the customer's subscriptions are all there. An event older than the
newest one already applied to its object skips its re-read: the stored state is newer; so does
an event whose own object the mirror already shows (a change Portier made and stored from
Stripe's answer). An object re-read here is kept for the event's other handlers, which then
ask Stripe nothing more.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from billing import mirror
from billing.errors import NotFound
from billing.mirror_models import MirrorCustomer, MirrorInvoice, MirrorSubscription
from billing.mirror_values import card_columns, invoice_mirrored, subscription_mirrored
from billing.models import utcnow
from billing.services import Billing
from billing.shapes import next_phase, ref_id
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


def _created(event: dict[str, Any]) -> int:
    return int(event.get("created") or 0)


async def refresh_subscription(billing: Billing, session: AsyncSession, subscription_id: str,
                               customer_id: str | None, created: int,
                               payload: dict[str, Any] | None = None) -> None:
    """Re-read a subscription into the mirror unless the mirror already shows the event.

    Skipped when a newer event was applied to it, or when the event's own object equals the
    stored row (a write of Portier's stored from its answer, or a duplicate): at most one
    re-read per changed object.
    """
    if await mirror.adopt(billing, session, customer_id):
        return
    if await mirror.seen_at(session, MirrorSubscription, subscription_id) > created:
        return
    if payload is not None and subscription_mirrored(
            await mirror.stored(session, MirrorSubscription, subscription_id), payload):
        return
    read_at = utcnow()
    data = await billing.gateway.subscription(subscription_id)
    mirror.remember_read(session, data)
    await mirror.save_subscription(billing, session, data, read_at=read_at, seen=created)


@on("checkout.session.completed", first=True)
async def mirror_checkout(billing: Billing, session: AsyncSession,
                          event: dict[str, Any]) -> None:
    """Load the paying customer whole, unless the mirror holds them (their new subscription's
    own events keep it current)."""
    customer_id = ref_id(_object(event).get("customer"))
    subscription_id = ref_id(_object(event).get("subscription"))
    if customer_id is None:
        return
    if await mirror.adopt(billing, session, customer_id) or subscription_id is None:
        return
    await refresh_subscription(billing, session, subscription_id, customer_id, _created(event))


async def mirror_customer(billing: Billing, session: AsyncSession,
                          event: dict[str, Any]) -> None:
    """Re-read the customer an event is about (their default card), unless already shown."""
    payload = _object(event)
    customer_id = payload["id"]
    if await mirror.adopt(billing, session, customer_id):
        return
    row = await session.get(MirrorCustomer, customer_id, populate_existing=True)
    method = (payload.get("invoice_settings") or {}).get("default_payment_method")
    if (row is not None and not payload.get("deleted") and event["type"] != "customer.deleted"
            and (row.email, row.name, row.card_id) == (
                payload.get("email"), payload.get("name"), ref_id(method))):
        return
    read_at = utcnow()
    try:
        data = await billing.gateway.customer_or_deleted(customer_id)
    except NotFound:
        return
    await mirror.save_customer(session, data, read_at=read_at)


async def mirror_payment_method(billing: Billing, session: AsyncSession,
                                event: dict[str, Any]) -> None:
    """Keep the details of a card the mirror shows: new expiry, or gone once detached.

    Attaching a card changes no default (a `customer.updated` or subscription event says so);
    an update (a new expiry from the card network) re-reads the card once for every row that
    shows it; a detached card pays nothing any more.
    """
    method = _object(event)
    method_id = method.get("id")
    if not method_id or event["type"] == "payment_method.attached":
        return
    customers = select(MirrorCustomer.id).where(MirrorCustomer.card_id == method_id)
    subscriptions = select(MirrorSubscription.id).where(MirrorSubscription.card_id == method_id)
    if not (await session.scalars(customers)).first() and not (
            await session.scalars(subscriptions)).first():
        return
    if event["type"] == "payment_method.detached":
        card: dict[str, Any] = {"card_id": None, "card_brand": None, "card_last4": None,
                                "card_exp_month": None, "card_exp_year": None}
    else:
        try:
            card = card_columns(await billing.gateway.payment_method_card(method_id))
        except NotFound:
            return
    for model in (MirrorCustomer, MirrorSubscription):
        await session.execute(update(model).where(model.card_id == method_id).values(**card))


async def mirror_subscription(billing: Billing, session: AsyncSession,
                              event: dict[str, Any]) -> None:
    """Re-read the subscription an event is about, unless the mirror already shows it."""
    sub = _object(event)
    payload = sub if event["type"] != "customer.subscription.deleted" else None
    await refresh_subscription(billing, session, sub["id"], ref_id(sub.get("customer")),
                               _created(event), payload)


async def mirror_schedule(billing: Billing, session: AsyncSession,
                          event: dict[str, Any]) -> None:
    """Re-read the subscription a schedule changes (its next phase), unless already shown."""
    schedule = _object(event)
    subscription = ref_id(schedule.get("subscription") or schedule.get(
        "released_subscription"))
    if subscription is None:
        return
    row = await mirror.stored(session, MirrorSubscription, subscription)
    upcoming = next_phase(schedule)
    attached = schedule.get("subscription") is not None and upcoming != (None, None)
    if row is not None and attached and (row.schedule_id, row.scheduled_price_id,
                                         row.scheduled_at) == (schedule.get("id"), *upcoming):
        return
    await refresh_subscription(billing, session, subscription,
                               ref_id(schedule.get("customer")), _created(event))


async def mirror_discount(billing: Billing, session: AsyncSession,
                          event: dict[str, Any]) -> None:
    """Re-read the subscription a discount applies to."""
    discount = _object(event)
    subscription = ref_id(discount.get("subscription"))
    if subscription is not None:
        await refresh_subscription(billing, session, subscription,
                                   ref_id(discount.get("customer")), _created(event))


async def mirror_invoice(billing: Billing, session: AsyncSession,
                         event: dict[str, Any]) -> None:
    """Re-read the invoice an event is about (forget a deleted draft), unless already shown."""
    invoice = _object(event)
    invoice_id, created = invoice.get("id"), _created(event)
    if not invoice_id or await mirror.adopt(billing, session,
                                            ref_id(invoice.get("customer"))):
        return
    if await mirror.seen_at(session, MirrorInvoice, invoice_id) > created:
        return
    deleted = event["type"] == "invoice.deleted"
    if not deleted and invoice_mirrored(
            await mirror.stored(session, MirrorInvoice, invoice_id), invoice):
        return
    read_at = utcnow()
    try:
        data = await billing.gateway.invoice(invoice_id)
    except NotFound:
        await session.execute(delete(MirrorInvoice).where(MirrorInvoice.id == invoice_id))
        return
    mirror.remember_read(session, data)
    await mirror.save_invoice(session, data, read_at=read_at, seen=created)


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
