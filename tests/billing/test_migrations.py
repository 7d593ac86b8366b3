"""Migrations: `upgrade` builds every table on an empty database, twice over harmlessly."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from billing import (
    mirror_models,  # noqa: F401 - the mirror's tables belong to Base
    revenue_models,  # noqa: F401 - and so do the revenue history's
    slack_models,  # noqa: F401 - and the team tables
)
from billing.db import make_engine
from billing.migrate import alembic_config, upgrade
from billing.models import Base

TABLES = {"chat_links", "link_tokens", "preferences", "stripe_events", "pending_states",
          "notices", "mirror_customers", "mirror_subscriptions", "mirror_invoices",
          "unreachable_chats", "revenue_states", "save_offers", "chat_events",
          "team_seats", "seat_requests", "broadcasts", "slack_installations", "slack_bots",
          "slack_oauth_states", "team_settings", "billing_admins", "message_copies",
          "team_intents"}


@pytest.fixture
async def empty_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the kind the suite runs on (SQLite, or TEST_DATABASE_URL)."""
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'empty.db'}"
    if url.startswith("postgresql"):
        await _run(url, lambda c: [c.execute(text(s)) for s in (
            "DROP SCHEMA public CASCADE", "CREATE SCHEMA public")])
    yield url


async def _run(url: str, fn: Any) -> Any:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


def _revision(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _differences(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


async def test_upgrade_creates_every_table(empty_url: str) -> None:
    """It creates all of Portier's tables on an empty database and records the head."""
    assert await _run(empty_url, _tables) == set()
    await asyncio.to_thread(upgrade, empty_url)
    assert await _run(empty_url, _tables) == TABLES | {"alembic_version"}
    head = ScriptDirectory.from_config(alembic_config(empty_url)).get_current_head()
    assert await _run(empty_url, _revision) == head


async def test_upgrade_is_idempotent(database_url: str) -> None:
    """It changes nothing when the database is already at the head."""
    before = await _run(database_url, _revision)
    await asyncio.to_thread(upgrade, database_url)
    assert await _run(database_url, _revision) == before
    assert TABLES <= await _run(database_url, _tables)


async def test_migrations_match_the_models(database_url: str) -> None:
    """It leaves no difference between the migrated schema and the models."""
    assert await _run(database_url, _differences) == []

