"""Shared fixtures: a migrated database (SQLite, or PostgreSQL from TEST_DATABASE_URL), a world."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from billing.db import Database, make_engine
from billing.migrate import alembic_config, upgrade
from tests.world import World, make_world


async def _reset_postgres(url: str) -> None:
    """Empty every table, migrating first when the schema is missing or behind the head.

    Migrating costs a few hundred milliseconds a test; emptying the tables a few dozen. A
    test that drops the schema (the migration tests) leaves the next one to migrate again.
    """
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            current = None
            if (await conn.scalar(text("SELECT to_regclass('public.alembic_version')"))):
                current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            if current != head:
                await conn.execute(text("DROP SCHEMA public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            else:
                tables = (await conn.scalars(text(
                    "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'"
                    " AND tablename <> 'alembic_version'"))).all()
                if tables:
                    await conn.execute(text(
                        f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()
    if current != head:
        await asyncio.to_thread(upgrade, url)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file, copied for each test instead of migrating each time."""
    path = tmp_path_factory.mktemp("template") / "portier.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
async def database_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A freshly migrated, empty database: PostgreSQL when TEST_DATABASE_URL is set, else SQLite."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url and url.startswith("postgresql"):
        await _reset_postgres(url)
        return url
    if url:
        await asyncio.to_thread(upgrade, url)
        return url
    path = tmp_path / "portier.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A Database on the freshly migrated test database, without Stripe."""
    database = Database(database_url)
    yield database
    await database.close()


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """A sandbox, a fake Telegram (webhook mode) and a running Portier."""
    async with make_world(database_url, tmp_path) as w:
        yield w
