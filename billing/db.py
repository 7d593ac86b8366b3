"""Database engine and sessions: one async engine per process, URLs normalised to async drivers."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str) -> str:
    """Return the URL with the async driver Portier uses for its dialect."""
    parsed = make_url(url)
    dialect = parsed.get_backend_name()
    if dialect not in _ASYNC_DRIVERS:
        raise ValueError(f"unsupported database {dialect!r}: use sqlite or postgresql")
    return parsed.set(drivername=_ASYNC_DRIVERS[dialect]).render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run while the webhook writes; the busy timeout rides out short locks.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_begin_before_savepoint(conn: Connection, _name: str | None) -> None:
    # pysqlite opens a transaction only before INSERT/UPDATE/DELETE; a SAVEPOINT sent first
    # would open one of its own that RELEASE commits, beyond the session's rollback.
    if not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
        conn.exec_driver_sql("BEGIN")


def make_engine(url: str) -> AsyncEngine:
    """Create the async engine for a database URL."""
    if make_url(url).get_backend_name() == "sqlite":
        # No pre-ping: a file has no connection to lose, and the ping costs a round trip to
        # aiosqlite's thread on every checkout.
        engine = create_async_engine(async_url(url))
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "savepoint", _sqlite_begin_before_savepoint)
        return engine
    return create_async_engine(async_url(url), pool_pre_ping=True)


class _InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs each call in the calling thread.

    aiosqlite hands every call (cursor, execute, fetch, close, commit) to its own thread and
    back: about ten hand-offs for one short SELECT, each far dearer than the read itself. A
    read in WAL mode never waits for a writer, so for the read-only engine the calls run
    inline, taking microseconds. Overrides aiosqlite's queueing (`_execute`, `_connect`,
    `stop`), which its public API offers no switch for.
    """

    def __await__(self) -> Any:
        return self._connect().__await__()  # no worker thread to start

    async def _connect(self) -> _InlineConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    def stop(self) -> None:
        """Close the sqlite3 connection (there is no thread to stop)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        """Close the connection."""
        self.stop()

    def begin(self) -> None:
        """Open a read transaction (straight to sqlite3: this runs once per read)."""
        self._conn.execute("BEGIN")


def _inline_reader(path: str) -> _InlineConnection:
    def connect() -> sqlite3.Connection:
        # autocommit mode; the engine's "begin" listener opens each read transaction itself
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA query_only=ON")  # a read session can never write
        connection.execute("PRAGMA busy_timeout=250")  # the loop waits at most this long
        return connection

    return _InlineConnection(connect, iter_chunk_size=64)


def _begin_snapshot(conn: Connection) -> None:
    # One read transaction per session: every SELECT in it sees the same snapshot.
    conn.connection.driver_connection.begin()  # type: ignore[union-attr]


def make_read_engine(url: str, engine: AsyncEngine) -> AsyncEngine:
    """Return the engine for short reads: each read is one read-only snapshot.

    On a SQLite file, an engine of its own whose statements run inline in the event loop (see
    `_InlineConnection`). On PostgreSQL, whose driver has no such hand-off, the main engine's
    pool, with read-only REPEATABLE READ transactions.
    """
    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite":
        return engine.execution_options(isolation_level="REPEATABLE READ",
                                        postgresql_readonly=True)
    if not path or path == ":memory:":  # another connection would see another database
        return engine
    reader = create_async_engine(async_url(url), async_creator=lambda: _inline_reader(path))
    event.listen(reader.sync_engine, "begin", _begin_snapshot)
    return reader


class Database:
    """The engine and the session factory every billing function receives sessions from."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_engine = make_read_engine(url, self.engine)
        # reads of a SQLite file run inline in the event loop (make_read_engine)
        self.inline_reads = self.read_engine.pool is not self.engine.pool
        self.read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """Open a session in a transaction that commits on success and rolls back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """Open a session for a few short reads: one snapshot, in which writes fail."""
        async with self.read_sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read_rows(self) -> AsyncIterator[AsyncConnection]:
        """Open a connection for a few Core reads (one snapshot), with no ORM session: the
        lightest read there is, for what every update reads."""
        if not self.inline_reads:
            async with self.read_engine.begin() as connection:
                yield connection
            return
        # SQLAlchemy's own exit closes a connection in a task of its own, so that a
        # cancellation cannot cut the close short; the loop then runs other updates before the
        # connection is back in the pool, and under load they overflowed it (a new SQLite
        # connection opened and closed every few reads). An inline connection's close never
        # suspends, so no cancellation can land in it: it is closed here, at once.
        connection = await self.read_engine.connect()
        try:
            async with connection.begin():
                yield connection
        finally:
            await connection.close()

    async def ping(self) -> bool:
        """Return whether the database answers a trivial query."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:  # noqa: BLE001 - any failure means "not healthy"
            return False
        return True

    async def close(self) -> None:
        """Dispose of the engine's connections."""
        await self.engine.dispose()
        if self.read_engine.pool is not self.engine.pool:
            await self.read_engine.dispose()
