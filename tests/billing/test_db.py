"""The database: async URLs, aware UTC timestamps, transactions, health."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import DBAPIError, OperationalError, StatementError

from billing.db import Database, async_url
from billing.models import ChatLink, LinkToken, Notice, UTCDateTime


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///portier.db", "sqlite+aiosqlite:///portier.db"),
    ("sqlite:////var/lib/portier/portier.db", "sqlite+aiosqlite:////var/lib/portier/portier.db"),
    ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ("postgresql://portier:s3cr%40t@db:5432/portier",
     "postgresql+asyncpg://portier:s3cr%40t@db:5432/portier"),
    ("postgresql+psycopg://u@localhost/p", "postgresql+asyncpg://u@localhost/p"),
])
def test_async_url_picks_the_async_driver(url: str, expected: str) -> None:
    """It maps sqlite and postgresql URLs to aiosqlite and asyncpg, keeping the password."""
    assert async_url(url) == expected


@pytest.mark.parametrize("url", ["mysql://u@h/db", "oracle://u@h/db", "mssql+pyodbc://h/db"])
def test_async_url_refuses_other_databases(url: str) -> None:
    """It refuses a database Portier does not support, naming it."""
    with pytest.raises(ValueError, match="unsupported database"):
        async_url(url)


def test_utc_datetime_refuses_naive_values() -> None:
    """It refuses to store a naive datetime."""
    with pytest.raises(ValueError, match="naive"):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), sqlite.dialect())


def test_utc_datetime_stores_and_reads_utc() -> None:
    """It converts aware values to UTC and reads naive ones back as aware UTC."""
    column, dialect = UTCDateTime(), sqlite.dialect()
    berlin = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=1)))
    stored = column.process_bind_param(berlin, dialect)
    assert stored == berlin and stored is not None and stored.tzinfo == UTC
    assert stored.hour == 11
    read = column.process_result_value(datetime(2026, 1, 1, 11), dialect)
    assert read == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert column.process_bind_param(None, dialect) is None
    assert column.process_result_value(None, dialect) is None


async def test_timestamps_round_trip_as_aware_utc(db: Database) -> None:
    """It reads back the same instant, in UTC, from the real database."""
    expires = datetime(2026, 7, 1, 14, 30, tzinfo=timezone(timedelta(hours=2)))
    async with db.session() as session:
        session.add(LinkToken(token_hash="h" * 64, customer_id="cus_1", expires_at=expires))
    async with db.session() as session:
        row = await session.scalar(select(LinkToken))
    assert row is not None
    assert row.expires_at == expires and row.expires_at.tzinfo == UTC
    assert row.created_at.tzinfo == UTC


async def test_a_naive_timestamp_is_not_stored(db: Database) -> None:
    """It refuses a naive datetime at flush time and stores nothing."""
    with pytest.raises(StatementError):
        async with db.session() as session:
            session.add(LinkToken(token_hash="h" * 64, customer_id="cus_1",
                                  expires_at=datetime(2026, 7, 1)))
    async with db.session() as session:
        assert await session.scalar(select(LinkToken)) is None


async def test_a_failed_transaction_leaves_nothing(db: Database) -> None:
    """It rolls back everything a session wrote, savepoints included, when it fails."""
    with pytest.raises(RuntimeError):
        async with db.session() as session:
            async with session.begin_nested():
                session.add(Notice(dedupe_key="k", channel="telegram", user_id="7",
                                   chat_id="7", kind="welcome", params={}))
            raise RuntimeError("later step failed")
    async with db.session() as session:
        assert await session.scalar(select(Notice)) is None


async def test_ping(db: Database, tmp_path: Path) -> None:
    """It answers True for a working database and False for a broken one."""
    assert await db.ping() is True
    broken = Database(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'x.db'}")
    try:
        assert await broken.ping() is False
    finally:
        await broken.close()


async def test_ping_unreachable_postgres() -> None:
    """It answers False when PostgreSQL does not answer."""
    broken = Database("postgresql://nobody@127.0.0.1:1/none")
    try:
        assert await broken.ping() is False
    finally:
        await broken.close()


async def test_read_sees_committed_rows_in_one_snapshot(db: Database) -> None:
    """A read sees what was committed before it began, and nothing committed during it."""
    async with db.session() as session:
        session.add(ChatLink(channel="telegram", user_id="1", chat_id="1", customer_id="cus_a"))
    async with db.read() as reading:
        first = await reading.scalar(select(ChatLink.customer_id).where(ChatLink.user_id == "1"))
        async with db.session() as session:  # another transaction commits meanwhile
            session.add(ChatLink(channel="telegram", user_id="2", chat_id="2",
                                 customer_id="cus_b"))
        during = await reading.scalar(select(func.count()).select_from(ChatLink))
    async with db.read_rows() as rows:
        after = await rows.scalar(select(func.count()).select_from(ChatLink))
    assert (first, during, after) == ("cus_a", 1, 2)


async def test_a_read_cannot_write(db: Database) -> None:
    """A read refuses writes (SQLite: query_only; PostgreSQL: a read-only transaction)."""
    with pytest.raises((OperationalError, DBAPIError), match="readonly|read-only"):
        async with db.read() as reading:
            reading.add(ChatLink(channel="telegram", user_id="9", chat_id="9",
                                 customer_id="cus_x"))
    async with db.read_rows() as rows:
        assert await rows.scalar(select(func.count()).select_from(ChatLink)) == 0


async def test_sqlite_reads_run_in_the_event_loop_thread(db: Database) -> None:
    """SQLite reads run inline in the loop's thread; writes still go to aiosqlite's thread."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's driver runs in the event loop anyway")

    def add_thread_function(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.create_function("thread_id", 0, threading.get_ident)

    for engine in (db.rows_sync_engine, db.read_engine.sync_engine, db.engine.sync_engine):
        event.listen(engine, "connect", add_thread_function)
    async with db.read_rows() as rows:
        read_thread = await rows.scalar(select(func.thread_id()))
    async with db.read() as reading:
        session_thread = await reading.scalar(select(func.thread_id()))
    async with db.session() as session:
        write_thread = await session.scalar(select(func.thread_id()))
    assert read_thread == session_thread == threading.get_ident()
    assert write_thread not in (None, threading.get_ident())


async def test_sqlite_reads_at_once_need_one_connection(db: Database) -> None:
    """Reads of many updates at once each find the one pooled connection free: an inline read
    never suspends, and it hands its connection back before its task yields (SQLAlchemy's own
    exit did that in a task of its own, so that under load reads overflowed the pool and
    opened a SQLite connection every few reads)."""
    if not db.inline_reads:
        pytest.skip("only SQLite file reads run inline")
    import asyncio

    async with db.read_rows() as rows:  # the pool's one connection, opened once
        await rows.scalar(select(func.count()).select_from(ChatLink))
    busiest: list[int] = []
    opened: list[object] = []
    pool = db.rows_sync_engine.pool
    event.listen(db.rows_sync_engine, "connect", lambda *_: opened.append(1))
    event.listen(db.rows_sync_engine, "checkout",
                 lambda *_: busiest.append(pool.checkedout()))  # type: ignore[attr-defined]

    async def one() -> None:
        async with db.read_rows() as rows:
            await rows.scalar(select(func.count()).select_from(ChatLink))
        await asyncio.sleep(0)

    await asyncio.gather(*(one() for _ in range(50)))
    assert (len(busiest), max(busiest), opened) == (50, 1, [])
