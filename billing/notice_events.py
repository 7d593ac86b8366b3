"""Stripe events that push a notice into the customer's chats (SPEC §7).

Each handler runs in the transaction that processes the event, after the local mirror's
handlers (registered with `first=True`; billing.mirror_events is also imported before the
handlers below are registered), so the notice is written together with the state change.
Objects are re-read from Stripe: a notice goes out only when the current state still says
what the event said (events arrive late, twice and out of order).

A linked team's notice is written as one waiting row, which becomes its billing admins'
copies once this transaction is over (billing.team_notices): no handler asks a chat app.

Events caused by Portier's own requests (idempotency keys `portier-…`) notify nobody: the
chat that acted was answered directly. Everything else (renewals, retries, changes made in
the dashboard or another app) is announced to every chat linked to the customer. One
exception, a team's seat change told to every billing admin wherever it was made, is
billing.seat_events'.
"""

from __future__ import annotations

import importlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import mirror
from billing.errors import NotFound
from billing.gateway import ref_id
from billing.mirror_models import MirrorCustomer, MirrorInvoice, MirrorSubscription
from billing.notices import (
    existing_keys,
    notify,
    recipient_key,
    recipients,
)
from billing.services import Billing
from billing.subscriptions import LIVE_STATUSES
from billing.webhooks import on

try:  # the mirror's handlers first (they also register with first=True)
    importlib.import_module("billing.mirror_events")
except ModuleNotFoundError as missing:  # not landed yet: nothing to order
    if missing.name != "billing.mirror_events":
        raise

Event = dict[str, Any]
OUR_KEYS = "portier-"  # billing.gateway.idempotency_key's prefix


def request_key(event: Event) -> str:
    """Return the idempotency key of the API request that caused the event ("" if none)."""
    return str((event.get("request") or {}).get("idempotency_key") or "")


def made_by_portier(event: Event) -> bool:
    """Tell whether Portier's own request caused the event (its `portier-…` keys)."""
    return request_key(event).startswith(OUR_KEYS)


def _object(event: Event) -> dict[str, Any]:
    obj: dict[str, Any] = event["data"]["object"]
    return obj


async def _send(billing: Billing, session: AsyncSession, customer: str | None, kind: str,
                key: str, params: dict[str, Any], *, only_reminded: bool = False) -> None:
    if customer:
        await notify(session, customer_id=customer, kind=kind, key=key, params=params,
                     quiet_hours=billing.catalog.quiet_hours, only_reminded=only_reminded)


# -- invoices ------------------------------------------------------------------------------

def decline_code(invoice: dict[str, Any]) -> str | None:
    """Return why the invoice's last payment failed, where Stripe's objects say it.

    That is the `last_payment_error` of a PaymentIntent in the invoice's `payments` (newest
    first, the PaymentIntents expanded: see `StripeGateway.invoice(payments=True)`); its
    `decline_code` (insufficient_funds) is more telling than its `code` (card_declined).
    """
    for payment in (invoice.get("payments") or {}).get("data") or []:
        intent = (payment.get("payment") or {}).get("payment_intent")
        error = intent.get("last_payment_error") if isinstance(intent, dict) else None
        if error:
            return str(error.get("decline_code") or error.get("code") or "") or None
    error = invoice.get("last_finalization_error") or {}
    return str(error.get("code") or "") or None


def _invoice_params(invoice: dict[str, Any]) -> dict[str, Any]:
    return {"invoice": invoice["id"], "number": invoice.get("number"),
            "amount": int(invoice.get("amount_remaining") or invoice.get("amount_due") or 0),
            "total": int(invoice.get("total") or 0), "currency": invoice["currency"],
            "hosted_url": invoice.get("hosted_invoice_url")}


@on("invoice.payment_failed")
async def payment_failed(billing: Billing, session: AsyncSession, event: Event) -> None:
    """Tell the customer a payment failed: amount, reason, next retry; Update card, Pay now."""
    seen = _object(event)
    if made_by_portier(event):
        return  # a Pay now or an upgrade in the chat: the chat already said "declined"
    invoice = await mirror.read_invoice(billing, session, seen["id"], payments=True)
    attempt = int(seen.get("attempt_count") or 0)
    if invoice.get("status") != "open" or int(invoice.get("attempt_count") or 0) != attempt:
        return  # paid, voided or tried again since: a later event speaks for it
    customer = ref_id(invoice.get("customer"))
    params = _invoice_params(invoice) | {
        "reason": decline_code(invoice) or decline_code(seen) or "card_declined",
        "next_retry": invoice.get("next_payment_attempt"),
        "customer": customer}  # its Update card button opens this customer's card page
    await _send(billing, session, customer, "payment_failed",
                f"payment_failed:{invoice['id']}:{attempt}", params)


@on("invoice.payment_action_required")
async def action_required(billing: Billing, session: AsyncSession, event: Event) -> None:
    """Ask the customer to confirm a payment on the hosted invoice page."""
    seen = _object(event)
    invoice = await mirror.read_invoice(billing, session, seen["id"])
    if invoice.get("status") != "open" or not invoice.get("hosted_invoice_url"):
        return
    attempt = int(seen.get("attempt_count") or 0)
    await _send(billing, session, ref_id(invoice.get("customer")), "action_required",
                f"action_required:{invoice['id']}:{attempt}", _invoice_params(invoice))


@on("invoice.paid")
async def payment_received(billing: Billing, session: AsyncSession, event: Event) -> None:
    """Confirm a payment that follows a failure, or every renewal when the catalog says so."""
    seen = _object(event)
    if made_by_portier(event):
        return  # paid with Pay now: the chat answered "Paid"
    after_failure = int(seen.get("attempt_count") or 0) > 1
    renewal = (seen.get("billing_reason") == "subscription_cycle"
               and billing.catalog.renewal_receipts and int(seen.get("amount_paid") or 0) > 0)
    if not (after_failure or renewal):
        return
    invoice = await mirror.read_invoice(billing, session, seen["id"])
    if invoice.get("status") != "paid":
        return
    params = _invoice_params(invoice) | {"amount": int(invoice.get("amount_paid") or 0),
                                         "after_failure": after_failure}
    await _send(billing, session, ref_id(invoice.get("customer")), "payment_received",
                f"payment_received:{invoice['id']}:paid", params)


# -- subscriptions ---------------------------------------------------------------------------

def _price(sub: dict[str, Any]) -> dict[str, Any]:
    items = (sub.get("items") or {}).get("data") or [{}]
    price: dict[str, Any] = items[0].get("price") or {}
    return price


def _item(sub: dict[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = ((sub.get("items") or {}).get("data") or [{}])[0]
    return item


def _sub_params(billing: Billing, sub: dict[str, Any]) -> dict[str, Any]:
    price = _price(sub)
    known = billing.prices.by_id(str(price.get("id")))
    plan = next((p.name for p in billing.catalog.plans
                 if known is not None and known.lookup_key in p.prices), None)
    product = price.get("product")
    recurring = price.get("recurring") or {}
    return {"subscription": sub["id"],
            "plan": plan or (product.get("name") if isinstance(product, dict) else None)
            or (known.product_name if known else None) or price.get("id"),
            "amount": int(price.get("unit_amount") or 0) * int(_item(sub).get("quantity") or 1),
            "currency": price.get("currency") or "eur",
            "interval": recurring.get("interval") or "month",
            "interval_count": int(recurring.get("interval_count") or 1),
            "period_end": _item(sub).get("current_period_end")}


def _canceling(sub: dict[str, Any]) -> bool:
    return bool(sub.get("cancel_at_period_end") or sub.get("cancel_at"))


def changes(previous: dict[str, Any], seen: dict[str, Any]) -> list[str]:
    """Name what a customer.subscription.updated event changed, from previous_attributes."""
    found: list[str] = []
    if "items" in previous:
        before = (((previous["items"] or {}).get("data") or [{}])[0].get("price") or {})
        if before.get("id") and before.get("id") != _price(seen).get("id"):
            found.append("plan_changed")
    if "cancel_at_period_end" in previous or "cancel_at" in previous:
        was = {"cancel_at_period_end": seen.get("cancel_at_period_end"),
               "cancel_at": seen.get("cancel_at")} | {
            k: previous[k] for k in ("cancel_at_period_end", "cancel_at") if k in previous}
        if _canceling(seen) and not _canceling(was):
            found.append("canceled")
        elif not _canceling(seen) and _canceling(was):
            found.append("resumed")
    if "pause_collection" in previous:
        if seen.get("pause_collection") and not previous["pause_collection"]:
            found.append("paused")
        elif not seen.get("pause_collection") and previous["pause_collection"]:
            found.append("resumed")
    return found


def _confirmed(kind: str, seen: dict[str, Any], now: dict[str, Any]) -> bool:
    """Return whether the subscription as Stripe has it now still shows the change."""
    if now.get("status") in ("canceled", "incomplete_expired"):
        return False  # it ended meanwhile: the "ended" notice says what matters
    if kind == "plan_changed":
        return _price(now).get("id") == _price(seen).get("id")
    if kind == "canceled":
        return _canceling(now)
    if kind == "paused":
        return bool(now.get("pause_collection")) or now.get("status") == "paused"
    return not _canceling(now) and not now.get("pause_collection") and now.get(
        "status") != "paused"


@on("customer.subscription.updated")
async def subscription_changed(billing: Billing, session: AsyncSession, event: Event) -> None:
    """Announce a plan change, a scheduled cancel, a pause or a resume, wherever it was made."""
    if made_by_portier(event):
        return  # made in the chat, which confirmed it
    seen = _object(event)
    found = changes(event["data"].get("previous_attributes") or {}, seen)
    if not found:
        return
    now = await mirror.read_subscription(billing, session, seen["id"])
    for kind in found:
        if _confirmed(kind, seen, now):
            params = _sub_params(billing, now) | {
                "ends_at": now.get("cancel_at") or (
                    _item(now).get("current_period_end") if now.get("cancel_at_period_end")
                    else None),
                "resumes_at": (now.get("pause_collection") or {}).get("resumes_at")}
            await _send(billing, session, ref_id(now.get("customer")), kind,
                        f"{kind}:{now['id']}:{event['id']}", params)


@on("customer.subscription.paused")
@on("customer.subscription.resumed")
async def subscription_paused(billing: Billing, session: AsyncSession, event: Event) -> None:
    """Announce a subscription paused or resumed by status (a trial ended without a card)."""
    kind = "paused" if event["type"].endswith(".paused") else "resumed"
    if made_by_portier(event):
        return
    seen = _object(event)
    now = await mirror.read_subscription(billing, session, seen["id"])
    if (now.get("status") == "paused") != (kind == "paused"):
        return
    await _send(billing, session, ref_id(now.get("customer")), kind,
                f"{kind}:{now['id']}:{event['id']}", _sub_params(billing, now))


@on("customer.subscription.deleted")
async def subscription_ended(billing: Billing, session: AsyncSession, event: Event) -> None:
    """Announce that a subscription has ended (canceled, or after failed payments)."""
    if made_by_portier(event):
        return
    seen = _object(event)
    now = await mirror.read_subscription(billing, session, seen["id"])
    if now.get("status") != "canceled":
        return
    reason = (now.get("cancellation_details") or {}).get("reason")
    await _send(billing, session, ref_id(now.get("customer")), "ended",
                f"ended:{now['id']}:{now.get('ended_at') or event['id']}",
                _sub_params(billing, now) | {"reason": reason, "ended_at": now.get("ended_at")})


@on("customer.subscription.trial_will_end")
async def trial_ending(billing: Billing, session: AsyncSession, event: Event) -> None:
    """Tell the customer their trial ends soon and what it will cost after."""
    seen = _object(event)
    now = await mirror.read_subscription(billing, session, seen["id"])
    if now.get("status") != "trialing" or not now.get("trial_end"):
        return
    await _send(billing, session, ref_id(now.get("customer")), "trial_ending",
                f"trial_ending:{now['id']}:{now['trial_end']}",
                _sub_params(billing, now) | {"trial_end": now["trial_end"]})


# -- cards -----------------------------------------------------------------------------------

def new_default_card(event: Event) -> tuple[str | None, str | None]:
    """Return (customer, card) when the event put a card in the place of another as a
    default: the customer's invoice default (customer.updated) or a subscription's own
    (customer.subscription.updated). A first default (a customer set up with a card, a
    subscription given its own) replaces nothing: the welcome speaks for a new subscription."""
    seen = _object(event)
    previous = event["data"].get("previous_attributes") or {}
    if event["type"] == "customer.updated":
        before = previous.get("invoice_settings") or {}
        now = (seen.get("invoice_settings") or {}).get("default_payment_method")
        customer = ref_id(seen.get("id"))
    else:
        before, now, customer = previous, seen.get("default_payment_method"), ref_id(
            seen.get("customer"))
    if not before.get("default_payment_method") or not now:
        return None, None
    return customer, ref_id(now)


async def pays(session: AsyncSession, customer_id: str, card_id: str) -> bool:
    """Return whether the mirror shows the card paying the customer's live subscriptions
    (its own default card, else the customer's), or, with none, as the customer's default."""
    default = await session.scalar(select(MirrorCustomer.card_id)
                                   .where(MirrorCustomer.id == customer_id))
    live = (await session.scalars(select(MirrorSubscription.card_id).where(
        MirrorSubscription.customer_id == customer_id,
        MirrorSubscription.status.in_(LIVE_STATUSES)))).all()
    if not live:
        return default == card_id
    return any((own or default) == card_id for own in live)


async def _open_invoice(session: AsyncSession, customer_id: str) -> dict[str, Any]:
    row = await session.scalar(select(MirrorInvoice).where(
        MirrorInvoice.customer_id == customer_id, MirrorInvoice.status == "open",
        MirrorInvoice.amount_remaining > 0).order_by(MirrorInvoice.created.desc()).limit(1))
    if row is None:
        return {}
    return {"invoice": row.id, "amount": row.amount_remaining, "currency": row.currency}


@on("customer.updated")
@on("customer.subscription.updated")
async def card_updated(billing: Billing, session: AsyncSession, event: Event) -> None:
    """Confirm a newly saved card once it pays: "Card updated: Visa •••• 4242", with Pay now
    while an invoice is open.

    Saving a card on Stripe's portal page attaches it (payment_method.attached, which also
    fires for a card Checkout saves with a new subscription, and for cards that pay nothing)
    and makes it a default: the customer's, a subscription's, or both, each with its event.
    Those default changes are what announce it, once per card (`card_updated:<card>`) however
    many of them arrive and however often; the card is re-read (brand, last four, expiry, still
    this customer's) and must pay per the mirror, which the mirror's handlers brought up to
    date in this transaction. A redelivered event asks Stripe nothing.
    """
    customer, card_id = new_default_card(event)
    if not customer or not card_id:
        return
    chats = await recipients(session, customer)
    key = f"card_updated:{card_id}"
    wanted = [recipient_key(key, to.channel, to.user_id) for to in chats]
    if not wanted or len(await existing_keys(session, wanted)) == len(wanted):
        return
    if not await pays(session, customer, card_id):
        return  # another card pays (a later event names it), or it was replaced meanwhile
    try:
        card = await billing.gateway.payment_method(card_id)
    except NotFound:
        return
    if card.customer_id != customer or not card.last4:
        return  # detached meanwhile, or not a card
    params = {"customer": customer, "payment_method": card.id, "brand": card.brand,
              "last4": card.last4, "exp_month": card.exp_month, "exp_year": card.exp_year}
    # The customer has just acted (on Stripe's page): no quiet hours hold the answer back.
    await notify(session, customer_id=customer, kind="card_updated", key=key,
                 params=params | await _open_invoice(session, customer), quiet_hours=None)
