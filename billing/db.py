"""Database engine and sessions: one async engine per process, URLs normalised to async drivers."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine, Result, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql import Executable

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


def _read_connection(path: str) -> sqlite3.Connection:
    # autocommit mode; the engine's "begin" listener opens each read transaction itself
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA query_only=ON")  # a read can never write
    connection.execute("PRAGMA busy_timeout=250")  # the loop waits at most this long
    return connection


def _inline_reader(path: str) -> _InlineConnection:
    return _InlineConnection(lambda: _read_connection(path), iter_chunk_size=64)


def _begin_snapshot(conn: Connection) -> None:
    # One read transaction per session: every SELECT in it sees the same snapshot.
    conn.connection.driver_connection.begin()  # type: ignore[union-attr]


def _begin_row_snapshot(conn: Connection) -> None:
    conn.connection.driver_connection.execute("BEGIN")  # type: ignore[union-attr]


def make_rows_engine(url: str) -> Engine | None:
    """Return, for a SQLite file, a plain (not asyncio) engine for `Database.read_rows`.

    SQLAlchemy's asyncio layer runs each call of a connection (connect, begin, execute,
    commit, close) in a greenlet of its own: five for one short read, costing more than twice
    the read itself (about 210 µs against 90 µs for the one statement every update runs).
    A SQLite read in WAL mode never waits for a writer and takes microseconds, so it runs
    synchronously in the loop, as `_InlineConnection` runs the ORM reads; on PostgreSQL,
    whose reads cross the network, there is none (None)."""
    parsed = make_url(url)
    path = parsed.database
    if parsed.get_backend_name() != "sqlite" or not path or path == ":memory:":
        return None
    # A pool of file connections (the URL alone would make it one per thread, for :memory:).
    rows = create_engine("sqlite://", creator=lambda: _read_connection(path), poolclass=QueuePool)
    event.listen(rows, "begin", _begin_row_snapshot)
    return rows


class InlineRows:
    """An open read on a connection of `make_rows_engine`, awaited as AsyncConnection's."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    async def execute(self, statement: Executable, parameters: Mapping[str, Any] | None = None
                      ) -> Result[Any]:
        """Run a statement (never suspends)."""
        return self.connection.execute(statement, parameters)

    async def scalar(self, statement: Executable, parameters: Mapping[str, Any] | None = None
                     ) -> Any:
        """Run a statement and return the first column of its first row."""
        return self.connection.scalar(statement, parameters)


Rows = AsyncConnection | InlineRows


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
        self.rows_engine = make_rows_engine(url)

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
    async def read_rows(self) -> AsyncIterator[Rows]:
        """Open a connection for a few Core reads (one snapshot), with no ORM session: the
        lightest read there is, for what every update reads."""
        if self.rows_engine is None:
            async with self.read_engine.begin() as reading:
                yield reading
            return
        # A plain connection, checked out and back without suspending (make_rows_engine):
        # no cancellation can land between, and under load reads share one connection.
        with self.rows_engine.connect() as connection, connection.begin():
            yield InlineRows(connection)

    @property
    def rows_sync_engine(self) -> Engine:
        """The engine `read_rows` reads through (for its events)."""
        return self.rows_engine or self.read_engine.sync_engine

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
        if self.rows_engine is not None:
            self.rows_engine.dispose()
