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
newest event time applied, so an older event arriving late skips its re-read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    LABEL_STYLE_TABLENAME_PLUS_COL,
    String,
    Table,
    bindparam,
    case,
    cast,
    delete,
    exists,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from billing.catalog import PriceBook
from billing.errors import InvalidRequest, NotFound
from billing.mirror_models import MirrorCustomer, MirrorInvoice, MirrorSubscription
from billing.models import Base, StripeEvent, utcnow
from billing.services import Billing
from billing.webhooks import handler_session

MAX_AGE = timedelta(hours=24)
PREVIEWED = ("active", "trialing", "past_due")
SUBSCRIPTION_EXPAND = ["default_payment_method", "schedule", "discounts",
                       "discounts.source.coupon"]
CUSTOMER_EXPAND = ["invoice_settings.default_payment_method"]
# What the next invoice depends on: a change in any of these asks Stripe for a new preview.
_PREVIEW_INPUTS = ("status", "price_id", "quantity", "cancel_at_period_end", "cancel_at",
                   "current_period_end", "trial_end", "pause_behavior", "discount_coupon",
                   "scheduled_price_id", "scheduled_at")
Obj = Mapping[str, Any]
_Row = TypeVar("_Row", MirrorCustomer, MirrorSubscription)


def cast_table(table: Any) -> Table:
    """Return a model's `__table__` typed as the Table it is."""
    if not isinstance(table, Table):
        raise TypeError(f"expected a Table, got {type(table).__name__}")
    return table


_coupon_labels: dict[str, str] = {}


def ref_id(value: Any) -> str | None:
    """Return the id of a reference, expanded (an object) or not (an id)."""
    if isinstance(value, str):
        return value
    return str(value["id"]) if isinstance(value, Mapping) and value.get("id") else None


def _when(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value else None


def plain(obj: Any) -> dict[str, Any]:
    """Return a Stripe object (or an event's dict) as plain nested dicts."""
    to_dict = getattr(obj, "to_dict", None)  # for_json: decimals back to Stripe's strings
    return dict(to_dict(for_json=True)) if callable(to_dict) else dict(obj)


def coupon_label(coupon: Obj) -> str:
    """Name a coupon as `/plan` shows it: its name, else "25% (ID)", else its id."""
    off = f"{coupon['percent_off']:g}%" if coupon.get("percent_off") else None
    label = coupon.get("name") or (f"{off} ({coupon['id']})" if off else str(coupon["id"]))
    _coupon_labels[str(coupon["id"])] = str(label)
    return str(label)


async def coupon_name(billing: Billing, coupon_id: str) -> str:
    """Return a coupon's label, asking Stripe only the first time a process meets it."""
    if coupon_id not in _coupon_labels:
        try:
            coupon_label(plain(await billing.gateway.coupon(coupon_id)))
        except NotFound:
            _coupon_labels[coupon_id] = coupon_id
    return _coupon_labels[coupon_id]


# -- Stripe objects → row values ------------------------------------------------------------

def customer_values(data: Obj) -> dict[str, Any]:
    """Map a customer (default payment method expanded) to mirror columns."""
    method = (data.get("invoice_settings") or {}).get("default_payment_method")
    card = method.get("card") if isinstance(method, Mapping) else None
    return {"id": data["id"], "email": data.get("email"), "name": data.get("name"),
            "card_id": ref_id(method), "card_brand": card and card.get("brand"),
            "card_last4": card and card.get("last4"),
            "card_exp_month": card and card.get("exp_month"),
            "card_exp_year": card and card.get("exp_year"),
            "deleted": bool(data.get("deleted"))}


def _next_phase(schedule: Any) -> tuple[str | None, datetime | None]:
    if not isinstance(schedule, Mapping) or schedule.get("status") not in ("active",
                                                                          "not_started"):
        return None, None
    current = schedule.get("current_phase") or {}
    end = current.get("end_date")
    later = [p for p in schedule.get("phases") or []
             if (end is None and current == {}) or (end is not None and p["start_date"] >= end)]
    if not later or not later[0].get("items"):
        return None, None
    return ref_id(later[0]["items"][0].get("price")), _when(later[0]["start_date"])


def _coupon(discounts: Any) -> str | None:
    for discount in discounts or []:
        if not isinstance(discount, Mapping):
            continue
        source = discount.get("source") or {}
        coupon = source.get("coupon") or discount.get("coupon")
        if isinstance(coupon, Mapping):
            coupon_label(coupon)
        if ref_id(coupon):
            return ref_id(coupon)
    return None


def subscription_values(data: Obj, prices: PriceBook) -> dict[str, Any]:
    """Map a subscription (card, schedule and discounts expanded) to mirror columns."""
    item = data["items"]["data"][0]
    price = item["price"]
    recurring = price.get("recurring") or {}
    known = prices.by_id(price["id"])
    product = price.get("product")
    pause = data.get("pause_collection") or {}
    scheduled_price, scheduled_at = _next_phase(data.get("schedule"))
    return {
        "id": data["id"], "customer_id": ref_id(data["customer"]), "status": data["status"],
        "item_id": item.get("id"), "price_id": price["id"],
        "product_name": known.product_name if known else (
            product.get("name") if isinstance(product, Mapping) else None),
        "unit_amount": price.get("unit_amount") or 0, "currency": price["currency"],
        "interval": recurring.get("interval", "month"),
        "interval_count": recurring.get("interval_count", 1),
        "quantity": item.get("quantity") or 1,
        "current_period_start": _when(item.get("current_period_start")),
        "current_period_end": _when(item.get("current_period_end")),
        "cancel_at_period_end": bool(data.get("cancel_at_period_end")),
        "cancel_at": _when(data.get("cancel_at")), "canceled_at": _when(data.get("canceled_at")),
        "ended_at": _when(data.get("ended_at")), "trial_end": _when(data.get("trial_end")),
        "pause_behavior": pause.get("behavior"), "pause_resumes_at": _when(pause.get("resumes_at")),
        "schedule_id": ref_id(data.get("schedule")), "scheduled_price_id": scheduled_price,
        "scheduled_at": scheduled_at, "discount_coupon": _coupon(data.get("discounts")),
        "card_id": ref_id(data.get("default_payment_method")),
        "latest_invoice_id": ref_id(data.get("latest_invoice")), "created": _when(data["created"]),
    }


def invoice_values(data: Obj) -> dict[str, Any]:
    """Map an invoice to mirror columns."""
    parent = (data.get("parent") or {}).get("subscription_details") or {}
    return {
        "id": data["id"], "customer_id": ref_id(data["customer"]),
        "subscription_id": ref_id(parent.get("subscription")) or ref_id(data.get("subscription")),
        "number": data.get("number"), "status": data.get("status") or "draft",
        "billing_reason": data.get("billing_reason"), "total": data.get("total") or 0,
        "amount_due": data.get("amount_due") or 0,
        "amount_remaining": data.get("amount_remaining") or 0, "currency": data["currency"],
        "attempt_count": data.get("attempt_count") or 0,
        "next_payment_attempt": _when(data.get("next_payment_attempt")),
        "hosted_url": data.get("hosted_invoice_url"), "pdf_url": data.get("invoice_pdf"),
        "created": _when(data["created"]),
    }


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


async def _next_amount(billing: Billing, session: AsyncSession,
                       values: dict[str, Any]) -> int | None:
    """Return the next invoice's amount: kept while its inputs stay, else Stripe's preview."""
    if (values["status"] not in PREVIEWED or values["cancel_at_period_end"]
            or values["cancel_at"] is not None):
        return None
    row = (await session.execute(select(MirrorSubscription).where(
        MirrorSubscription.id == values["id"]).execution_options(populate_existing=True))
    ).scalar_one_or_none()
    if row is not None and all(getattr(row, k) == values[k] for k in _PREVIEW_INPUTS):
        return row.next_amount
    try:
        preview = await billing.gateway.upcoming_invoice(values["customer_id"], values["id"])
    except (InvalidRequest, NotFound):
        return None
    return int(preview.amount_due)


async def subscription_row(billing: Billing, session: AsyncSession,
                           data: Obj) -> dict[str, Any]:
    """Return a subscription's mirror columns with its next invoice amount (reads only)."""
    values = subscription_values(data, billing.prices)
    values["next_amount"] = await _next_amount(billing, session, values)
    return values


async def save_subscription(billing: Billing, session: AsyncSession, data: Obj, *,
                            read_at: datetime, seen: int = 0) -> None:
    """Upsert a subscription read from Stripe, with its next invoice amount."""
    values = await subscription_row(billing, session, data)
    await upsert(session, MirrorSubscription, values, read_at=read_at, seen=seen)


async def pages(billing: Billing, method: Any, params: dict[str, Any]) -> AsyncIterator[
        list[dict[str, Any]]]:
    """Yield every page of a Stripe list (100 a page), following `starting_after`."""
    params = dict(params, limit=100)
    while True:
        page = await billing.gateway.call(method, params)
        items = [plain(item) for item in page.data]
        if items:
            yield items
        if not page.has_more or not items:
            return
        params["starting_after"] = items[-1]["id"]


async def refresh_customer(billing: Billing, customer_id: str,
                           session: AsyncSession | None = None) -> None:
    """Re-read a customer with all their subscriptions and invoices and store them."""
    v1, read_at = billing.gateway.v1, utcnow()
    customer = plain(await billing.gateway.call(
        v1.customers.retrieve_async, customer_id, {"expand": CUSTOMER_EXPAND}))
    subscriptions = [s async for page in pages(billing, v1.subscriptions.list_async, {
        "customer": customer_id, "status": "all",
        "expand": [f"data.{path}" for path in SUBSCRIPTION_EXPAND]}) for s in page]
    invoices = [i async for page in pages(billing, v1.invoices.list_async,
                                          {"customer": customer_id}) for i in page]
    if session is not None:
        await _store_customer(billing, session, customer, subscriptions, invoices, read_at)
        return
    async with billing.db.session() as own:
        await _store_customer(billing, own, customer, subscriptions, invoices, read_at)


async def _store_customer(billing: Billing, session: AsyncSession, customer: Obj,
                          subscriptions: list[dict[str, Any]], invoices: list[dict[str, Any]],
                          read_at: datetime) -> None:
    # Stripe first (previews), then the writes: SQLite's write lock is held only briefly.
    rows = [await subscription_row(billing, session, s) for s in subscriptions]
    for values in rows:
        await upsert(session, MirrorSubscription, values, read_at=read_at)
    for invoice in invoices:
        await upsert(session, MirrorInvoice, invoice_values(invoice), read_at=read_at)
    await session.execute(delete(MirrorInvoice).where(  # drafts deleted in Stripe
        MirrorInvoice.customer_id == customer["id"],
        MirrorInvoice.id.not_in([i["id"] for i in invoices]),
        MirrorInvoice.synced_at <= read_at))
    if customer.get("deleted"):
        await upsert(session, MirrorCustomer, {"id": customer["id"], "deleted": True},
                     read_at=read_at)
    else:
        await upsert(session, MirrorCustomer, customer_values(customer), read_at=read_at)


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


def _like_escaped(text: str) -> str:
    return "%" + text.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def _pending_naming(pattern: Any) -> Any:
    return exists().where(StripeEvent.status == "pending",
                          cast(StripeEvent.payload, String).like(pattern, escape="/"))


# A chat view's one read: the customer, their subscriptions, and whether an event naming them
# waits. Core rather than ORM (every `/plan` runs it), built once so its compiled form is kept.
_CUSTOMERS = cast_table(MirrorCustomer.__table__)
_SUBSCRIPTIONS = cast_table(MirrorSubscription.__table__)
_VIEW = (select(_CUSTOMERS, _SUBSCRIPTIONS)
         .select_from(_CUSTOMERS.outerjoin(
             _SUBSCRIPTIONS, _SUBSCRIPTIONS.c.customer_id == _CUSTOMERS.c.id))
         .where(_CUSTOMERS.c.id == bindparam("customer_id"))
         .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL))
# Its own statement: inside the one above, SQLite took five times as long to answer it.
_PENDING = select(_pending_naming(bindparam("pattern")))


_LABELS = {model: [(column.key, f"{table.name}_{column.key}") for column in table.c]
           for model, table in ((MirrorCustomer, _CUSTOMERS),
                                (MirrorSubscription, _SUBSCRIPTIONS))}


def _from_row(model: type[_Row], mapping: RowMapping) -> _Row:
    """Return a detached instance holding a row's values, as the ORM's own loader fills one
    (into the instance's dict, without the change events a constructor fires per column)."""
    instance: _Row = model.__mapper__.class_manager.new_instance()
    instance.__dict__.update({key: mapping[label] for key, label in _LABELS[model]})
    return instance


async def view_rows(billing: Billing, customer_id: str
                    ) -> tuple[MirrorCustomer | None, list[MirrorSubscription]]:
    """Return the customer's rows for a chat view, re-reading Stripe first if not fresh."""
    current = handler_session()
    if current is not None:
        customer, subscriptions = await customer_rows(current, customer_id)
        if not recent(customer, subscriptions, utcnow()):
            await refresh_customer(billing, customer_id, current)
            customer, subscriptions = await customer_rows(current, customer_id)
        return customer, subscriptions
    async with billing.db.read_rows() as rows:
        found = [row._mapping for row in await rows.execute(_VIEW, {"customer_id": customer_id})]
        pending = found and await rows.scalar(_PENDING, {"pattern": _like_escaped(customer_id)})
    if found and not pending:
        customer = _from_row(MirrorCustomer, found[0])
        subscriptions = [_from_row(MirrorSubscription, row) for row in found
                         if row[f"{_SUBSCRIPTIONS.name}_id"] is not None]
        if recent(customer, subscriptions, utcnow()):
            return customer, subscriptions
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
