"""Stripe webhooks: verified on the raw body, recorded once, processed after (SPEC §8)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from billing import webhooks
from billing.db import Database
from billing.errors import StripeUnavailable, WebhookRejected
from billing.models import Notice, StripeEvent, utcnow
from billing.notices import enqueue
from billing.services import Billing
from billing.webhooks import MAX_BODY, process_one, process_pending, record, verify

SECRET = "whsec_webhook_tests"


def sign(body: bytes, secret: str = SECRET, at: int | None = None) -> str:
    """Sign a body as Stripe does: `t=<ts>,v1=<hmac_sha256(secret, "<ts>.<body>")>`."""
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(event_id: str = "evt_1", type_: str = "portier.test", created: int = 1,
          obj: str = "obj_1") -> dict[str, Any]:
    """Build a minimal Stripe event about one object."""
    return {"id": event_id, "object": "event", "type": type_, "created": created,
            "api_version": "2026-10-28.endive", "data": {"object": {"id": obj}}}


def body(payload: dict[str, Any]) -> bytes:
    """Serialise an event the way Stripe sends it."""
    return json.dumps(payload, indent=2).encode()


async def _record(db: Database, payload: dict[str, Any]) -> bool:
    async with db.session() as session:
        return await record(session, payload)


async def _row(db: Database, event_id: str) -> StripeEvent:
    async with db.session() as session:
        row = await session.get(StripeEvent, event_id)
    assert row is not None
    return row


async def _count(db: Database, model: type[Any]) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# -- verify ----------------------------------------------------------------------------------

def test_accepts_a_correctly_signed_body() -> None:
    """It accepts a body signed with the secret and returns the event."""
    raw = body(event())
    assert verify(raw, sign(raw), SECRET) == event()


def test_accepts_a_header_with_several_signatures() -> None:
    """It accepts a header that also carries a signature under an old secret (rotation)."""
    raw = body(event())
    header = sign(raw) + "," + sign(raw, "whsec_old").split(",")[1]
    assert verify(raw, header, SECRET)["id"] == "evt_1"


@pytest.mark.parametrize("signature", [None, ""])
def test_rejects_an_unsigned_body(signature: str | None) -> None:
    """It rejects a body without a Stripe-Signature."""
    with pytest.raises(WebhookRejected, match="missing"):
        verify(body(event()), signature, SECRET)


@pytest.mark.parametrize("signature", [
    pytest.param(sign(body(event()), "whsec_someone_else"), id="wrong secret"),
    pytest.param(sign(body(event()), at=int(time.time()) - 301), id="stale"),
    pytest.param("t=abc,v1=nothex", id="garbage"),
    pytest.param("v1=" + "0" * 64, id="no timestamp"),
])
def test_rejects_a_bad_signature(signature: str) -> None:
    """It rejects a wrong secret, a stale timestamp and a garbled header."""
    with pytest.raises(WebhookRejected, match="does not verify"):
        verify(body(event()), signature, SECRET)


def test_accepts_a_timestamp_within_tolerance() -> None:
    """It accepts a signature a few minutes old."""
    raw = body(event())
    assert verify(raw, sign(raw, at=int(time.time()) - 240), SECRET)["id"] == "evt_1"


def test_rejects_a_reserialised_body() -> None:
    """It verifies the raw bytes: the same JSON serialised differently does not verify."""
    raw = body(event())
    compact = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    assert json.loads(compact) == json.loads(raw) and compact != raw
    with pytest.raises(WebhookRejected):
        verify(compact, sign(raw), SECRET)


def test_rejects_an_oversized_body() -> None:
    """It rejects a body over the size limit before checking anything else."""
    payload = event() | {"padding": "x" * MAX_BODY}
    raw = body(payload)
    with pytest.raises(WebhookRejected, match="too large"):
        verify(raw, sign(raw), SECRET)


@pytest.mark.parametrize("raw", [
    pytest.param(b"not json", id="not json"),
    pytest.param(b'{"object": "event"}', id="no id"),
    pytest.param(b'{"id": 1, "type": "x"}', id="id not a string"),
    pytest.param(b"[1, 2]", id="array"),
    pytest.param(b"null", id="null"),
    pytest.param(b"\xff\xfe{}", id="not utf-8"),
])
def test_rejects_a_signed_body_that_is_no_event(raw: bytes) -> None:
    """It rejects a correctly signed body that is not a Stripe event."""
    with pytest.raises(WebhookRejected):
        verify(raw, sign(raw), SECRET)


# -- record ----------------------------------------------------------------------------------

async def test_records_an_event_once(db: Database) -> None:
    """It stores an event under its id and returns False for a duplicate."""
    assert await _record(db, event()) is True
    assert await _record(db, event()) is False
    row = await _row(db, "evt_1")
    assert (row.type, row.created, row.status, row.attempts) == ("portier.test", 1, "pending", 0)
    assert row.payload == event()
    assert await _count(db, StripeEvent) == 1


# Shapes from Stripe's API reference: an event's `data.object` is the object itself, whose
# `customer` is an id or, expanded, a customer; `data.previous_attributes` holds the values
# an update changed (https://docs.stripe.com/api/events/object). A detached payment method
# has `customer: null` and names its former customer only there.
@pytest.mark.parametrize(("data", "named"), [
    ({"object": {"id": "cus_1", "object": "customer"}}, "cus_1"),
    ({"object": {"id": "sub_1", "object": "subscription", "customer": "cus_2"}}, "cus_2"),
    ({"object": {"id": "in_1", "object": "invoice", "customer": {"id": "cus_3",
                                                                  "object": "customer"}}},
     "cus_3"),
    ({"object": {"id": "pm_1", "object": "payment_method", "customer": None},
      "previous_attributes": {"customer": "cus_4"}}, "cus_4"),
    ({"object": {"id": "prod_1", "object": "product"}}, None),
    ({"object": {"id": "sub_2", "object": "subscription", "customer": 7}}, None),
    ({"object": {"id": "sub_3", "object": "subscription", "customer": "c" * 300}}, None),
])
async def test_an_event_is_stored_with_the_customer_it_names(db: Database, data: Any,
                                                             named: str | None) -> None:
    """It keeps the customer an event's object belongs to, for the chat views' freshness."""
    assert await _record(db, dict(event(), data=data)) is True
    assert (await _row(db, "evt_1")).customer_id == named


async def test_two_sessions_racing_store_one_row(db: Database) -> None:
    """It stores one row when the same event is recorded by two sessions at once."""
    async with db.session() as first:
        assert await record(first, event()) is True
        # The second delivery arrives before the first transaction commits.
        second = asyncio.create_task(_record(db, event()))
        await asyncio.sleep(0.2)
    assert await asyncio.wait_for(second, 10) is False
    assert await _count(db, StripeEvent) == 1


async def test_simultaneous_deliveries_store_one_row(db: Database) -> None:
    """It returns True exactly once for simultaneous deliveries of one event."""
    outcomes = await asyncio.gather(*(_record(db, event()) for _ in range(4)))
    assert sorted(outcomes) == [False, False, False, True]
    assert await _count(db, StripeEvent) == 1


# -- process ---------------------------------------------------------------------------------

@pytest.fixture
def handled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Register handlers for test event types; return the ids they saw."""
    seen: list[str] = []

    async def ok(billing: Billing, session: AsyncSession, payload: dict[str, Any]) -> None:
        seen.append(payload["id"])

    async def broken(billing: Billing, session: AsyncSession, payload: dict[str, Any]) -> None:
        seen.append(payload["id"])
        await enqueue(session, dedupe_key=f"half:{payload['id']}", channel="telegram",
                      user_id="7", chat_id="7", kind="welcome", params={})
        raise RuntimeError("handler bug")

    async def stripe_down(billing: Billing, session: AsyncSession,
                          payload: dict[str, Any]) -> None:
        seen.append(payload["id"])
        raise StripeUnavailable("APIConnectionError")

    monkeypatch.setitem(webhooks._registry, "portier.test", [ok])
    monkeypatch.setitem(webhooks._registry, "portier.broken", [broken])
    monkeypatch.setitem(webhooks._registry, "portier.stripe_down", [stripe_down])
    return seen


async def test_processes_a_pending_event_once(billing: Billing, handled: list[str]) -> None:
    """It runs the registered handler once and marks the event processed."""
    await _record(billing.db, event())
    assert await process_pending(billing) == 1
    assert handled == ["evt_1"]
    row = await _row(billing.db, "evt_1")
    assert (row.status, row.attempts, row.last_error) == ("processed", 1, None)
    assert row.processed_at is not None
    assert await process_pending(billing) == 0
    await process_one(billing, "evt_1")
    assert handled == ["evt_1"]


async def test_processes_in_arrival_order(billing: Billing, handled: list[str]) -> None:
    """It processes events in the order they arrived."""
    for n in (3, 1, 2):
        await _record(billing.db, event(f"evt_{n}", created=10 - n))
    assert await process_pending(billing) == 3
    assert handled == ["evt_3", "evt_1", "evt_2"]


async def test_an_event_without_handler_is_marked_processed(billing: Billing) -> None:
    """It marks an event of a type nobody handles as processed."""
    await _record(billing.db, event(type_="portier.nobody_cares"))
    await process_pending(billing)
    assert (await _row(billing.db, "evt_1")).status == "processed"


async def test_a_failing_handler_leaves_the_event_for_retry(billing: Billing,
                                                            handled: list[str]) -> None:
    """It records the attempt and error, undoes the handler's writes and retries after a wait."""
    await _record(billing.db, event(type_="portier.broken"))
    await process_pending(billing)
    row = await _row(billing.db, "evt_1")
    assert (row.status, row.attempts, row.last_error) == ("pending", 1, "unexpected error")
    assert await _count(billing.db, Notice) == 0
    assert await process_pending(billing) == 0  # not yet: it waits for its backoff
    assert handled == ["evt_1"]
    await process_pending(billing, now=utcnow() + webhooks.backoff(1))
    assert handled == ["evt_1", "evt_1"]
    assert (await _row(billing.db, "evt_1")).attempts == 2


def test_backoff_doubles_up_to_a_cap() -> None:
    """It waits 30 s after the first failure, doubling each time, never more than an hour."""
    assert [webhooks.backoff(n) for n in (1, 2, 3, 4)] == [
        timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert webhooks.backoff(20) == timedelta(hours=1)


async def test_retries_wait_longer_each_time(billing: Billing, handled: list[str]) -> None:
    """It retries the second time only after twice the first wait."""
    await _record(billing.db, event(type_="portier.broken"))
    start = utcnow()
    await process_pending(billing, now=start)
    await process_pending(billing, now=start + webhooks.backoff(1))
    assert len(handled) == 2
    await process_pending(billing, now=start + webhooks.backoff(1) * 2)  # 30 s after: too early
    assert len(handled) == 2
    await process_pending(billing, now=start + webhooks.backoff(1) + webhooks.backoff(2))
    assert len(handled) == 3


async def test_a_stripe_failure_is_named(billing: Billing, handled: list[str]) -> None:
    """It records which Stripe problem stopped the handler."""
    await _record(billing.db, event(type_="portier.stripe_down"))
    await process_pending(billing)
    row = await _row(billing.db, "evt_1")
    assert (row.status, row.last_error) == ("pending", "StripeUnavailable")


async def test_gives_up_after_five_attempts(billing: Billing, handled: list[str]) -> None:
    """It marks an event failed after five failed attempts and stops retrying it."""
    await _record(billing.db, event(type_="portier.broken"))
    for hour in range(7):
        await process_pending(billing, now=utcnow() + timedelta(hours=hour))
    row = await _row(billing.db, "evt_1")
    assert (row.status, row.attempts) == ("failed", 5)
    assert len(handled) == 5


async def test_a_failure_does_not_stop_the_others(billing: Billing, handled: list[str]) -> None:
    """It goes on with events about other objects when one fails."""
    await _record(billing.db, event("evt_bad", type_="portier.broken", created=1, obj="obj_1"))
    await _record(billing.db, event("evt_good", created=2, obj="obj_2"))
    await process_pending(billing)
    assert (await _row(billing.db, "evt_good")).status == "processed"
    assert (await _row(billing.db, "evt_bad")).status == "pending"


async def test_a_failed_event_holds_back_later_events_of_its_object(
        billing: Billing, handled: list[str]) -> None:
    """It processes one object's events in order: a later one waits for the earlier's retry."""
    await _record(billing.db, event("evt_bad", type_="portier.broken", obj="sub_1"))
    await _record(billing.db, event("evt_next", obj="sub_1"))
    await _record(billing.db, event("evt_other", obj="sub_2"))
    await process_pending(billing)
    assert handled == ["evt_bad", "evt_other"]
    assert (await _row(billing.db, "evt_next")).status == "pending"
    webhooks._registry["portier.broken"] = webhooks._registry["portier.test"]  # fixed
    await process_pending(billing, now=utcnow() + webhooks.backoff(1))
    assert handled == ["evt_bad", "evt_other", "evt_bad", "evt_next"]


async def test_leading_handlers_run_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """It runs handlers registered with first=True before the others, whatever their order."""
    monkeypatch.setattr(webhooks, "_registry", {})
    monkeypatch.setattr(webhooks, "_leading", {})

    async def a(*_: Any) -> None: ...
    async def b(*_: Any) -> None: ...
    async def c(*_: Any) -> None: ...

    webhooks.on("x.y")(a)
    webhooks.on("x.y", first=True)(b)
    webhooks.on("x.y", first=True)(c)
    assert webhooks._registry["x.y"] == [b, c, a]


async def test_two_processors_handle_each_event_once(billing: Billing, database_url: str,
                                                     handled: list[str]) -> None:
    """It processes every event once when two processors (replicas) run at the same time."""
    for n in range(20):
        await _record(billing.db, event(f"evt_{n}", created=n, obj=f"obj_{n % 4}"))
    # On PostgreSQL a second replica has its own engine and claims with SKIP LOCKED; SQLite
    # serves one process, whose processors share the database object and its lock.
    other_db = Database(database_url) if database_url.startswith("postgresql") else billing.db
    other = Billing(db=other_db, gateway=billing.gateway, catalog=billing.catalog,
                    prices=billing.prices, link_secret=billing.link_secret,
                    public_url=billing.public_url)
    try:
        await asyncio.gather(*(process_pending(b) for b in (billing, other, billing, other)))
        while await process_pending(billing):
            pass
    finally:
        if other_db is not billing.db:
            await other_db.close()
    assert sorted(handled) == sorted(f"evt_{n}" for n in range(20))
    for n in range(4):  # each object's events in arrival order
        assert [e for e in handled if int(e[4:]) % 4 == n] == [f"evt_{k}" for k in range(n, 20, 4)]


async def test_group_commit_stores_simultaneous_deliveries_once(db: Database) -> None:
    """It stores a burst of deliveries in shared transactions, each event once, in order."""
    intake = webhooks.Intake(db)
    events = [event(f"evt_{n}", created=n) for n in range(30)]
    outcomes = await asyncio.gather(*(intake.store(e) for e in events + events[:5]))
    assert outcomes == [True] * 30 + [False] * 5
    assert await _count(db, StripeEvent) == 30
    async with db.session() as session:
        order = list(await session.scalars(select(StripeEvent.id).order_by(
            StripeEvent.received_at)))
    assert order == [e["id"] for e in events]


async def test_record_many_flags_repeats_within_a_batch(db: Database) -> None:
    """It treats a second copy in the same batch, and a stored event, as duplicates."""
    await _record(db, event("evt_old"))
    async with db.session() as session:
        outcomes = await webhooks.record_many(session, [event("evt_a"), event("evt_old"),
                                                        event("evt_a"), event("evt_b")])
    assert outcomes == [True, False, False, True]
    assert await _count(db, StripeEvent) == 3
