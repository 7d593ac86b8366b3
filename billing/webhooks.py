"""Stripe events: verified on the raw body, stored under their unique id, processed after.

Like dj-stripe: the endpoint only verifies and records; processing is idempotent on the event
id and dispatched through a registry of handlers per event type, and handlers re-read the
object from Stripe instead of trusting the payload (events arrive late and out of order).

Processing rules:
- Events are taken in arrival order, one at a time per Stripe object (`data.object.id`): an
  event waits while an earlier event about the same object is still pending, including one
  waiting for a retry.
- A claim is a row lock taken with `FOR UPDATE SKIP LOCKED` (PostgreSQL), so replicas never
  process one event twice nor wait on each other; within a process one processor runs at a
  time (SQLite has no row locks, and one SQLite file means one process).
- A failed attempt is recorded (`attempts`, `last_error`) and retried with exponential backoff
  (30 s, 1 min, 2 min, 4 min); the fifth failure marks the event `failed`. For a pending event
  `processed_at` holds when it was last tried (no schema change needed for the backoff).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from billing.db import Database
from billing.errors import StripeProblem, WebhookRejected
from billing.models import StripeEvent, utcnow
from billing.notices import expand_team_notices
from billing.payloads import MalformedPayload, parse
from billing.services import Billing

log = logging.getLogger(__name__)
MAX_BODY = 512 * 1024
TOLERANCE = stripe.Webhook.DEFAULT_TOLERANCE  # seconds, either side of now
MAX_ID = 255  # the columns' sizes (stripe_events.id, .type, .created)
MAX_TYPE = 128
MAX_CREATED = 2**31 - 1
MAX_ATTEMPTS = 5
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=1)
SCAN = 500  # pending events looked at per pass

EventHandler = Callable[[Billing, AsyncSession, dict[str, Any]], Awaitable[None]]
_registry: dict[str, list[EventHandler]] = {}
_leading: dict[str, int] = {}
_handler_session: ContextVar[AsyncSession | None] = ContextVar("portier_handler_session",
                                                               default=None)
_locks: weakref.WeakKeyDictionary[Database, asyncio.Lock] = weakref.WeakKeyDictionary()


def on(event_type: str, *, first: bool = False) -> Callable[[EventHandler], EventHandler]:
    """Register a handler for one Stripe event type (several may share a type; they run in
    registration order, in one transaction; `first=True` handlers, the local mirror's, run
    before all others whatever the import order)."""
    def register(handler: EventHandler) -> EventHandler:
        handlers = _registry.setdefault(event_type, [])
        if first:
            handlers.insert(_leading.get(event_type, 0), handler)
            _leading[event_type] = _leading.get(event_type, 0) + 1
        else:
            handlers.append(handler)
        return handler
    return register


def handler_session() -> AsyncSession | None:
    """Return the session of the event being processed, when called from one of its handlers."""
    return _handler_session.get()


def verify(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """Check Stripe's signature on the raw body and return the event as a dict."""
    if len(payload) > MAX_BODY:
        raise WebhookRejected("body too large")
    if not signature:
        raise WebhookRejected("missing Stripe-Signature")
    try:
        stripe.WebhookSignature.verify_header(payload, signature, secret, TOLERANCE)
        signed_at = _signed_at(signature)
    except (ValueError, stripe.SignatureVerificationError):
        raise WebhookRejected("signature does not verify") from None
    # stripe-python bounds only the past. A signature dated ahead stays "recent" until that
    # time comes, so a captured delivery could be replayed for as long (with t=10**20,
    # forever); Stripe signs at the moment it sends, so beyond clock skew (the same
    # tolerance) a future date is a forgery or a broken clock either way.
    if signed_at > time.time() + TOLERANCE:
        raise WebhookRejected("signature dated in the future")
    # Signed is not well-formed: a proxy that rewrites, a bug upstream or anyone holding the
    # secret can send what the SDK and the database choke on.
    try:
        data: Any = parse(payload, text=True)
    except MalformedPayload as error:
        raise WebhookRejected(f"not an event: {error}") from None
    problem = _malformed_event(data) if isinstance(data, dict) else "not an object"
    if problem:
        raise WebhookRejected(f"not an event: {problem}")
    event: dict[str, Any] = data
    return event


def _signed_at(header: str) -> int:
    """Return the header's timestamp, read as stripe-python reads it (the first `t=`)."""
    return int(next(item.split("=")[1] for item in header.split(",")
                    if item.split("=")[0] == "t"))


def _malformed_event(data: dict[str, Any]) -> str | None:
    """Say what keeps a parsed object from being a storable Stripe event, if anything."""
    event_id, type_, created = data.get("id"), data.get("type"), data.get("created", 0)
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_ID:
        return "id"
    if not isinstance(type_, str) or not 0 < len(type_) <= MAX_TYPE:
        return "type"
    # bool is an int to Python; the column is a 32-bit INTEGER on PostgreSQL.
    if type(created) is not int or not 0 <= created <= MAX_CREATED:
        return "created"
    body = data.get("data")
    if not isinstance(body, dict) or not isinstance(body.get("object"), dict):
        return "data.object"
    return None


def customer_named(event: dict[str, Any]) -> str | None:
    """Return the customer an event's object belongs to: the customer itself, the object's
    `customer` (an id, or an expanded customer), or, for an object just detached from one
    (`payment_method.detached`), the `customer` in its `previous_attributes`."""
    body = event.get("data")
    if not isinstance(body, dict) or not isinstance(body.get("object"), dict):
        return None
    item, before = body["object"], body.get("previous_attributes")
    found = item.get("id") if item.get("object") == "customer" else item.get("customer")
    if isinstance(found, dict):
        found = found.get("id")
    if found is None and isinstance(before, dict):
        found = before.get("customer")
    return found if isinstance(found, str) and 0 < len(found) <= MAX_ID else None


def _row(event: dict[str, Any], received: datetime) -> dict[str, Any]:
    return {"id": event["id"], "type": event["type"], "created": int(event.get("created") or 0),
            "payload": event, "customer_id": customer_named(event), "status": "pending",
            "attempts": 0, "received_at": received}


async def record(session: AsyncSession, event: dict[str, Any]) -> bool:
    """Store an event once under its id; return False for a duplicate."""
    # One statement, no savepoint: the second of two simultaneous deliveries waits for the
    # first's row and then inserts nothing (ON CONFLICT DO NOTHING on both dialects).
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(StripeEvent).values(_row(event, utcnow())).on_conflict_do_nothing(
        index_elements=["id"]).returning(StripeEvent.id)
    return (await session.execute(statement)).scalar() is not None


async def record_many(session: AsyncSession, events: list[dict[str, Any]]) -> list[bool]:
    """Store events in one statement; return, for each, False if it was already stored (or
    is repeated earlier in the list)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    received, tick = utcnow(), timedelta(microseconds=1)
    first = {event["id"]: n for n, event in reversed(list(enumerate(events)))}
    rows = [_row(event, received + n * tick)  # arrival order within the batch
            for n, event in enumerate(events) if first[event["id"]] == n]
    statement = insert(StripeEvent).values(rows).on_conflict_do_nothing(
        index_elements=["id"]).returning(StripeEvent.id)
    fresh = set((await session.execute(statement)).scalars())
    outcomes = []
    for event in events:
        outcomes.append(event["id"] in fresh)
        fresh.discard(event["id"])  # a second copy in the same batch is a duplicate
    return outcomes


def backoff(attempts: int) -> timedelta:
    """Return how long an event waits after its `attempts`-th failed attempt."""
    return min(BACKOFF_BASE * (1 << max(attempts - 1, 0)), BACKOFF_CAP)


def _due(attempts: int, tried_at: datetime | None, now: datetime) -> bool:
    return attempts == 0 or tried_at is None or now >= tried_at + backoff(attempts)


@asynccontextmanager
async def _one_processor(db: Database) -> AsyncIterator[None]:
    lock = _locks.setdefault(db, asyncio.Lock())
    async with lock:
        yield


async def process_pending(billing: Billing, *, limit: int = 50,
                          now: datetime | None = None) -> int:
    """Process due stored events in arrival order, one at a time per object; return how many
    were attempted."""
    now = now or utcnow()
    async with _one_processor(billing.db):
        due = await _due_events(billing.db, now)
        # Types nobody handles change nothing: marked processed together, in one transaction.
        attempted = await _mark_unhandled(billing.db, [
            event_id for event_id, _, type_ in due if not _registry.get(type_)], now)
        billing.events["processed"] += attempted
        stopped: set[str] = set()
        for event_id, key, type_ in due:
            if attempted >= limit:
                break
            if not _registry.get(type_):
                continue
            if key in stopped:
                continue  # a later event about the same object waits for the earlier one
            outcome = await process_one(billing, event_id, now=now)
            attempted += outcome != "skipped"
            if outcome != "skipped":
                billing.events[outcome] += 1
            if outcome != "processed":
                stopped.add(key)
    # The teams' notices these events wrote get their admins' copies now, with every event's
    # transaction closed: the chat app is never asked inside one (billing.team_notices).
    # This also picks up rows a crash left waiting, each pass.
    try:
        await expand_team_notices(billing.db, billing.rosters)
    except Exception:
        log.exception("team notices not expanded (the next pass tries again)")
    return attempted


async def _mark_unhandled(db: Database, event_ids: list[str], now: datetime) -> int:
    if not event_ids:
        return 0
    async with db.session() as session:
        await session.execute(
            update(StripeEvent)
            .where(StripeEvent.id.in_(event_ids), StripeEvent.status == "pending")
            .values(status="processed", processed_at=now, attempts=StripeEvent.attempts + 1))
    return len(event_ids)


async def _due_events(db: Database, now: datetime) -> list[tuple[str, str, str]]:
    """Return (event id, object id, type) of due pending events in arrival order, leaving out
    every event that follows a not-yet-due one about the same object."""
    object_id = StripeEvent.payload["data"]["object"]["id"].as_string()
    async with db.session() as session:
        rows = (await session.execute(
            select(StripeEvent.id, StripeEvent.type, object_id, StripeEvent.attempts,
                   StripeEvent.processed_at)
            .where(StripeEvent.status == "pending")
            .order_by(StripeEvent.received_at, StripeEvent.created, StripeEvent.id)
            .limit(SCAN))).all()
    due: list[tuple[str, str, str]] = []
    waiting: set[str] = set()
    for event_id, type_, obj, attempts, tried_at in rows:
        key = obj or event_id
        if key in waiting:
            continue
        if not _due(attempts, tried_at, now):
            waiting.add(key)  # waiting for its retry: later events of the object wait too
            continue
        due.append((event_id, key, type_))
    return due


async def process_one(billing: Billing, event_id: str, *, now: datetime | None = None) -> str:
    """Process one stored event in its own transaction; record a failure for a retry.

    Returns "processed", "failed" (this attempt failed) or "skipped" (not pending, or
    claimed by another replica right now).
    """
    now = now or utcnow()
    try:
        async with billing.db.session() as session:
            row = await session.scalar(
                select(StripeEvent)
                .where(StripeEvent.id == event_id, StripeEvent.status == "pending")
                .with_for_update(skip_locked=True))
            if row is None:
                return "skipped"
            token = _handler_session.set(session)
            try:
                for handler in list(_registry.get(row.type, ())):
                    await handler(billing, session, row.payload)
            finally:
                _handler_session.reset(token)
            row.status, row.processed_at = "processed", now
            row.attempts += 1
            row.last_error = None
    except StripeProblem as error:
        log.warning("event %s failed: %s", event_id, type(error).__name__)
        await _failed(billing, event_id, type(error).__name__, now)
        return "failed"
    except Exception:
        log.exception("event %s failed", event_id)
        await _failed(billing, event_id, "unexpected error", now)
        return "failed"
    return "processed"


async def _failed(billing: Billing, event_id: str, error: str, now: datetime) -> None:
    async with billing.db.session() as session:
        row = await session.get(StripeEvent, event_id)
        if row is not None and row.status == "pending":
            row.attempts += 1
            row.last_error = error
            row.processed_at = now  # for a pending event: when it was last tried
            if row.attempts >= MAX_ATTEMPTS:
                row.status = "failed"


class Intake:
    """Stores verified events with group commit: deliveries arriving together share one
    transaction, so a burst costs one commit instead of one each, and writers never queue on
    SQLite's lock (whose busy handler sleeps up to 100 ms a try)."""

    def __init__(self, db: Database, *, max_batch: int = 200) -> None:
        self.db = db
        self.max_batch = max_batch
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def store(self, event: dict[str, Any]) -> bool:
        """Store an event once under its id, durably; return False for a duplicate."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="portier-intake")
        return await done

    async def _write(self) -> None:
        while self._waiting:
            batch = self._waiting[:self.max_batch]
            del self._waiting[:self.max_batch]
            try:
                async with self.db.session() as session:
                    outcomes = await record_many(session, [event for event, _ in batch])
            except Exception as error:  # noqa: BLE001 - handed to every waiting request
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            except BaseException:
                # Cancelled: no request may wait for ever on a writer that is gone.
                for _, done in batch + self._waiting:
                    done.cancel()
                self._waiting.clear()
                raise
            for (_, done), fresh in zip(batch, outcomes, strict=True):
                if not done.done():
                    done.set_result(fresh)
