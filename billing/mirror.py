"""The local mirror: Stripe objects re-read and upserted, and read back for chat views.

Freshness (what lets `/plan` and `/invoices` answer without asking Stripe): a customer's rows
are fresh when
1. the customer's row exists — it is only ever written together with (or after) all of the
   customer's subscriptions and invoices, by `refresh_customer`, `portier sync`, or an event
   handler that adopts a customer new to the mirror;
2. the newest of the customer's rows (customer, subscriptions) was read from Stripe less than
   `MAX_AGE` (24 hours) ago — events keep rows current; the age bound is a safety net; and
3. no stored event naming the customer is still waiting to be processed.
Otherwise a view re-reads the customer from Stripe (`refresh_customer`) and fills the mirror
first. Inside an event handler only 1 and 2 apply: the handler's own transaction is read.

Writes race safely: every row carries `synced_at`, the moment the Stripe read that produced it
began, and an upsert never replaces a row read later than itself; `stripe_seen_at` keeps the
newest event time applied, so an older event arriving late skips its re-read. A write Portier
makes (a plan change, a cancel) stores the subscription from the write's own answer, so the
chat shows it at once without re-reading the customer. Mapping Stripe's objects to columns is
`billing.mirror_values`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    LABEL_STYLE_TABLENAME_PLUS_COL,
    Table,
    bindparam,
    case,
    delete,
    exists,
    lambda_stmt,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from billing.db import Rows
from billing.errors import NotFound
from billing.mirror_models import MirrorCustomer, MirrorInvoice, MirrorSubscription
from billing.mirror_values import (
    coupon_label,
    customer_values,
    invoice_values,
    subscription_values,
)
from billing.mirror_values import coupon_name as _coupon_name
from billing.models import Base, ChatLink, StripeEvent, utcnow
from billing.prefs import PROFILE, Profile, profile_of
from billing.services import Billing
from billing.webhooks import handler_session

__all__ = ["coupon_label", "customer_values", "invoice_values", "subscription_values"]
MAX_AGE = timedelta(hours=24)
PREVIEWED = ("active", "trialing", "past_due")
# What the next invoice depends on: a change in any of these asks Stripe for a new preview.
_PREVIEW_INPUTS = ("status", "price_id", "quantity", "cancel_at_period_end", "cancel_at",
                   "current_period_end", "trial_end", "pause_behavior", "discount_coupon",
                   "scheduled_price_id", "scheduled_at")
_READS = "portier_stripe_reads"  # session.info key: objects read from Stripe in this transaction
_Row = TypeVar("_Row", MirrorCustomer, MirrorSubscription)
ASK_STRIPE: Any = object()  # "the next amount is not known here: preview it if it changed"


def cast_table(table: Any) -> Table:
    """Return a model's `__table__` typed as the Table it is."""
    if not isinstance(table, Table):
        raise TypeError(f"expected a Table, got {type(table).__name__}")
    return table


async def coupon_name(billing: Billing, coupon_id: str) -> str:
    """Return a coupon's label, asking Stripe only the first time a process meets it."""
    return await _coupon_name(billing.gateway, coupon_id)


# -- objects read in this transaction ---------------------------------------------------------

def remember_read(session: AsyncSession, data: dict[str, Any]) -> None:
    """Keep an object just read from Stripe for the other handlers of the same event."""
    session.info.setdefault(_READS, {})[data["id"]] = data


async def read_subscription(billing: Billing, session: AsyncSession,
                            subscription_id: str) -> dict[str, Any]:
    """Return a subscription as Stripe has it now, read once per event transaction."""
    known = session.info.get(_READS, {}).get(subscription_id)
    if known is None:
        known = await billing.gateway.subscription(subscription_id)
        remember_read(session, known)
    return dict(known)


async def read_invoice(billing: Billing, session: AsyncSession, invoice_id: str, *,
                       payments: bool = False) -> dict[str, Any]:
    """Return an invoice as Stripe has it now, read once per event transaction."""
    known = session.info.get(_READS, {}).get(invoice_id)
    if known is None or (payments and "payments" not in known):
        known = await billing.gateway.invoice(invoice_id, payments=payments)
        remember_read(session, known)
    return dict(known)


# -- writes ----------------------------------------------------------------------------------

async def upsert(session: AsyncSession, model: type[Base], values: dict[str, Any], *,
                 read_at: datetime, seen: int = 0) -> None:
    """Insert or update one mirror row, unless a row read from Stripe later is stored."""
    table = model.__table__
    values = dict(values, synced_at=read_at)
    if "stripe_seen_at" in table.c:
        values["stripe_seen_at"] = seen
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(model).values(**values)
    changes: dict[str, Any] = {k: statement.excluded[k] for k in values if k != "id"}
    if "stripe_seen_at" in table.c:
        newest = table.c.stripe_seen_at > statement.excluded.stripe_seen_at
        changes["stripe_seen_at"] = case((newest, table.c.stripe_seen_at),
                                         else_=statement.excluded.stripe_seen_at)
    await session.execute(statement.on_conflict_do_update(
        index_elements=[table.c.id], set_=changes,
        where=table.c.synced_at <= statement.excluded.synced_at))


async def seen_at(session: AsyncSession, model: type[MirrorSubscription | MirrorInvoice],
                  object_id: str) -> int:
    """Return the newest event time applied to a mirrored object (0 when unknown)."""
    value = await session.scalar(select(model.stripe_seen_at).where(model.id == object_id))
    return int(value or 0)


async def stored(session: AsyncSession, model: type[MirrorSubscription | MirrorInvoice],
                 object_id: str) -> Any:
    """Return a mirrored row as the database holds it now (None when not mirrored)."""
    return (await session.execute(select(model).where(model.id == object_id)
                                  .execution_options(populate_existing=True))
            ).scalar_one_or_none()


async def _next_amount(billing: Billing, session: AsyncSession, values: dict[str, Any],
                       known: Any) -> int | None:
    """Return the next invoice's amount: kept while its inputs stay, else Stripe's preview."""
    if (values["status"] not in PREVIEWED or values["cancel_at_period_end"]
            or values["cancel_at"] is not None):
        return None
    if known is not ASK_STRIPE:
        return int(known) if known is not None else None
    row = await stored(session, MirrorSubscription, values["id"])
    if row is not None and all(getattr(row, k) == values[k] for k in _PREVIEW_INPUTS):
        return int(row.next_amount) if row.next_amount is not None else None
    return await billing.gateway.next_invoice_amount(values["customer_id"], values["id"])


async def subscription_row(billing: Billing, session: AsyncSession, data: dict[str, Any], *,
                           next_amount: Any = ASK_STRIPE) -> dict[str, Any]:
    """Return a subscription's mirror columns with its next invoice amount (reads only)."""
    values = subscription_values(data, billing.prices)
    values["next_amount"] = await _next_amount(billing, session, values, next_amount)
    return values


async def save_subscription(billing: Billing, session: AsyncSession, data: dict[str, Any], *,
                            read_at: datetime, seen: int = 0,
                            next_amount: Any = ASK_STRIPE) -> None:
    """Upsert a subscription read from Stripe, with its next invoice amount."""
    values = await subscription_row(billing, session, data, next_amount=next_amount)
    await upsert(session, MirrorSubscription, values, read_at=read_at, seen=seen)


async def save_invoice(session: AsyncSession, data: dict[str, Any], *, read_at: datetime,
                       seen: int = 0) -> None:
    """Upsert an invoice read from Stripe."""
    await upsert(session, MirrorInvoice, invoice_values(data), read_at=read_at, seen=seen)


async def save_customer(session: AsyncSession, data: dict[str, Any], *,
                        read_at: datetime) -> None:
    """Upsert a customer read from Stripe (a deleted one as deleted)."""
    await upsert(session, MirrorCustomer, customer_values(data), read_at=read_at)


async def written(billing: Billing, subscription: dict[str, Any], *, read_at: datetime,
                  next_amount: Any = ASK_STRIPE) -> None:
    """Store the subscription a write of Portier's answered with: `/plan` shows it at once."""
    async with _writing(billing) as session:
        if await known(session, str(subscription["customer"])):
            await save_subscription(billing, session, subscription, read_at=read_at,
                                    next_amount=next_amount)


async def invoice_written(billing: Billing, invoice: dict[str, Any], *,
                          read_at: datetime) -> None:
    """Store the invoice a write of Portier's (Pay now) answered with."""
    async with _writing(billing) as session:
        if await known(session, str(invoice["customer"])):
            await save_invoice(session, invoice, read_at=read_at)


@asynccontextmanager
async def _writing(billing: Billing) -> AsyncIterator[AsyncSession]:
    current = handler_session()
    if current is not None:
        yield current
        return
    async with billing.db.session() as session:
        yield session


async def refresh_customer(billing: Billing, customer_id: str,
                           session: AsyncSession | None = None) -> None:
    """Re-read a customer with all their subscriptions and invoices and store them."""
    gateway, read_at = billing.gateway, utcnow()
    customer = await gateway.customer_or_deleted(customer_id)
    subscriptions = await gateway.customer_subscriptions(customer_id)
    invoices = await gateway.customer_invoices(customer_id)
    if session is not None:
        await _store_customer(billing, session, customer, subscriptions, invoices, read_at)
        return
    async with billing.db.session() as own:
        await _store_customer(billing, own, customer, subscriptions, invoices, read_at)


async def _store_customer(billing: Billing, session: AsyncSession, customer: dict[str, Any],
                          subscriptions: list[dict[str, Any]], invoices: list[dict[str, Any]],
                          read_at: datetime) -> None:
    # Stripe first (previews), then the writes: SQLite's write lock is held only briefly.
    rows = [await subscription_row(billing, session, s) for s in subscriptions]
    for values in rows:
        await upsert(session, MirrorSubscription, values, read_at=read_at)
    for invoice in invoices:
        await save_invoice(session, invoice, read_at=read_at)
    await session.execute(delete(MirrorInvoice).where(  # drafts deleted in Stripe
        MirrorInvoice.customer_id == customer["id"],
        MirrorInvoice.id.not_in([i["id"] for i in invoices]),
        MirrorInvoice.synced_at <= read_at))
    await save_customer(session, customer, read_at=read_at)


async def adopt(billing: Billing, session: AsyncSession, customer_id: str | None) -> bool:
    """Load a customer new to the mirror whole; return True if that happened (or is moot)."""
    if customer_id is None:
        return True
    if await known(session, customer_id):
        return False
    try:
        await refresh_customer(billing, customer_id, session)
    except NotFound:  # deleted meanwhile, or not a customer of this account
        pass
    return True


# -- reads -----------------------------------------------------------------------------------

async def known(session: AsyncSession, customer_id: str) -> bool:
    """Tell whether the mirror holds the customer (and so all their subscriptions)."""
    return await session.get(MirrorCustomer, customer_id) is not None


async def customer_rows(session: AsyncSession, customer_id: str
                        ) -> tuple[MirrorCustomer | None, list[MirrorSubscription]]:
    """Return the customer's mirror row and subscription rows."""
    customer = (await session.execute(select(MirrorCustomer).where(
        MirrorCustomer.id == customer_id).execution_options(populate_existing=True))
    ).scalar_one_or_none()
    subscriptions = list(await session.scalars(select(MirrorSubscription).where(
        MirrorSubscription.customer_id == customer_id)
        .execution_options(populate_existing=True)))
    return customer, subscriptions


def recent(customer: MirrorCustomer | None, subscriptions: list[MirrorSubscription],
           now: datetime) -> bool:
    """Tell whether the customer is mirrored and one of their rows was read within MAX_AGE."""
    if customer is None:
        return False
    newest = max([customer.synced_at, *(s.synced_at for s in subscriptions)])
    return now - newest < MAX_AGE


def _waiting(customer_id: Any) -> Any:
    """Whether a stored event naming the customer still waits to be processed."""
    return exists().where(StripeEvent.customer_id == customer_id,
                          StripeEvent.status == "pending").label("pending")


# A chat view's one read: the customer, their subscriptions, and whether an event naming them
# waits. Core rather than ORM (every `/plan` runs it), built once and run as a lambda
# statement, whose cache key is its code's place rather than a walk over its sixty columns
# (https://docs.sqlalchemy.org/en/20/core/connections.html#quick-guidelines-for-lambdas).
_CUSTOMERS = cast_table(MirrorCustomer.__table__)
_SUBSCRIPTIONS = cast_table(MirrorSubscription.__table__)
_VIEW = (select(_CUSTOMERS, _SUBSCRIPTIONS, _waiting(_CUSTOMERS.c.id))
         .select_from(_CUSTOMERS.outerjoin(
             _SUBSCRIPTIONS, _SUBSCRIPTIONS.c.customer_id == _CUSTOMERS.c.id))
         .where(_CUSTOMERS.c.id == bindparam("customer_id"))
         .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL))
# The same joined to the chat user's profile: an update's whole first read in one statement.
_CONTEXT = (PROFILE.add_columns(_CUSTOMERS, _SUBSCRIPTIONS, _waiting(ChatLink.customer_id))
            .outerjoin(_CUSTOMERS, _CUSTOMERS.c.id == ChatLink.customer_id)
            .outerjoin(_SUBSCRIPTIONS, _SUBSCRIPTIONS.c.customer_id == _CUSTOMERS.c.id)
            .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL))
_RUN_VIEW = lambda_stmt(lambda: _VIEW)
_RUN_CONTEXT = lambda_stmt(lambda: _CONTEXT)


@dataclass(frozen=True)
class _Layout:
    """Where a statement's row holds the customer's and a subscription's columns (in their
    tables' order, as selected above) and the pending flag."""

    customer: slice
    subscription: slice
    pending: int

    @classmethod
    def after(cls, statement: Any, first: int) -> _Layout:
        customer = slice(first, first + len(_CUSTOMERS.c))
        subscription = slice(customer.stop, customer.stop + len(_SUBSCRIPTIONS.c))
        if len(statement.selected_columns) != subscription.stop + 1:
            raise RuntimeError("the view's columns are not where its reader takes them")
        return cls(customer, subscription, subscription.stop)


_KEYS = {MirrorCustomer: [column.key for column in _CUSTOMERS.c],
         MirrorSubscription: [column.key for column in _SUBSCRIPTIONS.c]}
_ID = _KEYS[MirrorCustomer].index("id")  # the same place in both tables
_VIEW_LAYOUT = _Layout.after(_VIEW, 0)
_CONTEXT_LAYOUT = _Layout.after(_CONTEXT, len(PROFILE.selected_columns))


def _from_row(model: type[_Row], values: Sequence[Any]) -> _Row:
    """Return a detached instance holding a row's values, as the ORM's own loader fills one
    (into the instance's dict, without the change events a constructor fires per column)."""
    instance: _Row = model.__mapper__.class_manager.new_instance()
    instance.__dict__.update(zip(_KEYS[model], values, strict=True))
    return instance


@dataclass(frozen=True)
class View:
    """A customer's rows as one read of the mirror found them, for a chat view."""

    customer_id: str
    customer: MirrorCustomer | None
    subscriptions: list[MirrorSubscription]
    pending: bool  # an event naming the customer was still waiting to be processed

    def fresh(self, now: datetime) -> bool:
        """Tell whether a chat view may show these rows without asking Stripe (see above)."""
        return not self.pending and recent(self.customer, self.subscriptions, now)


async def read_view(rows: Rows, customer_id: str) -> View:
    """Read the customer's rows for a chat view in an open read (`Database.read_rows`)."""
    found = list(await rows.execute(_RUN_VIEW, {"customer_id": customer_id}))
    return _view_of(customer_id, found, _VIEW_LAYOUT)


async def read_context(rows: Rows, *, channel: str, user_id: str, chat_id: str
                       ) -> tuple[Profile, View | None]:
    """Read the chat user's profile and, when they are linked, their customer's rows for a
    chat view, in one statement of an open read."""
    found = list(await rows.execute(
        _RUN_CONTEXT, {"channel": channel, "user_id": user_id, "chat_id": chat_id}))
    profile = profile_of(found[0]._mapping, channel=channel, user_id=user_id)
    if profile.link is None:
        return profile, None
    return profile, _view_of(profile.link.customer_id, found, _CONTEXT_LAYOUT)


def _view_of(customer_id: str, found: list[Row[Any]], layout: _Layout) -> View:
    first = found[0][layout.customer] if found else None
    if first is None or first[_ID] is None:
        return View(customer_id, None, [], pending=False)
    return View(customer_id, _from_row(MirrorCustomer, first),
                [_from_row(MirrorSubscription, values) for row in found
                 if (values := row[layout.subscription])[_ID] is not None],
                pending=bool(found[0][layout.pending]))


async def view_rows(billing: Billing, customer_id: str, *, read: View | None = None
                    ) -> tuple[MirrorCustomer | None, list[MirrorSubscription]]:
    """Return the customer's rows for a chat view, re-reading Stripe first if not fresh;
    `read` is what `read_view` found for this update already."""
    current = handler_session()
    if current is not None:
        customer, subscriptions = await customer_rows(current, customer_id)
        if not recent(customer, subscriptions, utcnow()):
            await refresh_customer(billing, customer_id, current)
            customer, subscriptions = await customer_rows(current, customer_id)
        return customer, subscriptions
    if read is None or read.customer_id != customer_id:
        async with billing.db.read_rows() as rows:
            read = await read_view(rows, customer_id)
    if read.fresh(utcnow()):
        return read.customer, read.subscriptions
    await refresh_customer(billing, customer_id)
    async with billing.db.read() as session:
        return await customer_rows(session, customer_id)


async def invoice_rows(billing: Billing, customer_id: str, *, after: MirrorInvoice | None,
                       limit: int) -> list[MirrorInvoice]:
    """Return up to `limit` of the customer's non-draft invoices, newest first, after one."""
    query = select(MirrorInvoice).where(MirrorInvoice.customer_id == customer_id,
                                        MirrorInvoice.status != "draft")
    if after is not None:
        query = query.where(
            (MirrorInvoice.created < after.created)
            | ((MirrorInvoice.created == after.created) & (MirrorInvoice.id < after.id)))
    query = query.order_by(MirrorInvoice.created.desc(), MirrorInvoice.id.desc()).limit(limit)
    async with _reading(billing) as session:
        return list(await session.scalars(query))


async def invoice_row(billing: Billing, invoice_id: str) -> MirrorInvoice | None:
    """Return one mirrored invoice."""
    async with _reading(billing) as session:
        return await session.get(MirrorInvoice, invoice_id)


@asynccontextmanager
async def _reading(billing: Billing) -> AsyncIterator[AsyncSession]:
    current = handler_session()  # inside an event handler: read its own transaction
    if current is not None:
        yield current
        return
    async with billing.db.read() as session:
        yield session
