"""The scheduler: one leader runs the scans; another replica takes over when it dies."""

from __future__ import annotations

import asyncio
import os
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from billing import teams
from billing.catalog import PriceBook, parse_catalog
from billing.db import Database
from billing.models import utcnow
from billing.services import Billing
from billing.slack_models import ChatEvent
from bot.scheduler import Scheduler

CATALOG = parse_catalog(tomllib.loads('[business]\nname = "Acme"\n[[plans]]\nkey = "pro"\n'
                                      'name = "Pro"\nprices = ["pro_monthly"]\n'))
FAST = {"elect_every": 0.2, "scan_every": 0.2, "sweep_every": 3600, "events_every": 3600,
        "outbox_every": 3600}


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[Callable[[], Scheduler]]:
    """Make schedulers, each with its own database engine, as separate replicas have."""
    made: list[Scheduler] = []

    def make() -> Scheduler:
        billing = Billing(db=Database(database_url), gateway=None,  # type: ignore[arg-type]
                          catalog=CATALOG, prices=PriceBook(), link_secret="x" * 16,
                          public_url="http://127.0.0.1")
        made.append(Scheduler(billing, **FAST))
        return made[-1]

    yield make
    for scheduler in made:
        await scheduler.stop()
        await scheduler.billing.db.close()


async def _until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_only_process_leads_and_scans(replicas: Callable[[], Scheduler]) -> None:
    """A single scheduler leads and runs the reminder scan at once and then periodically."""
    scheduler = replicas()
    await scheduler.start()
    assert scheduler.leader
    await _until(lambda: scheduler.runs["reminders"] >= 2)
    await scheduler.stop()
    assert not scheduler.leader


postgres_only = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql"),
    reason="advisory locks need PostgreSQL; on SQLite there is one process")


@postgres_only
async def test_two_replicas_scan_once(replicas: Callable[[], Scheduler]) -> None:
    """Of two schedulers on one PostgreSQL, one runs the scans; the other takes over when it
    stops."""
    first, second = replicas(), replicas()
    await first.start()
    await second.start()
    assert (first.leader, second.leader) == (True, False)
    await _until(lambda: first.runs["reminders"] >= 3)
    assert second.runs["reminders"] == 0
    await first.stop()
    await _until(lambda: second.leader and second.runs["reminders"] >= 2)
    assert not first.leader


@postgres_only
async def test_the_lock_goes_with_the_leaders_connection(
        replicas: Callable[[], Scheduler], database_url: str) -> None:
    """When the leader dies (its jobs stop, its connection drops), another replica leads; the
    old one, if it comes back, finds the lock taken and stays a follower."""
    first, second = replicas(), replicas()
    await first.start()
    await second.start()
    assert first.leader and first.leadership._conn is not None
    pid = (await first.leadership._conn.execute(text("SELECT pg_backend_pid()"))).scalar()
    await first.leadership._conn.commit()
    first._aps.shutdown(wait=False)  # the process freezes...
    admin = Database(database_url)
    async with admin.session() as session:  # ...and its connection goes away
        await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await admin.close()
    await _until(lambda: second.leader and second.runs["reminders"] >= 2)
    await first.elect()
    assert not first.leader


async def test_the_hourly_tidy_forgets_old_slack_event_ids(
        replicas: Callable[[], Scheduler]) -> None:
    """The tidy job deletes Slack event ids older than a day and keeps newer ones."""
    scheduler = replicas()
    db = scheduler.billing.db
    async with db.session() as session:
        await teams.first_delivery(session, channel="slack", event_id="EvOld", team_id="T1")
        await teams.first_delivery(session, channel="slack", event_id="EvNew", team_id="T1")
        await session.execute(update(ChatEvent).where(ChatEvent.event_id == "EvOld").values(
            received_at=utcnow() - teams.EVENT_IDS_KEPT - timedelta(minutes=1)))
    await scheduler.tidy()
    async with db.session() as session:
        left = set(await session.scalars(select(ChatEvent.event_id)))
    assert left == {"EvNew"}
