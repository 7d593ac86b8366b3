"""Shared fixtures: a migrated database (SQLite, or PostgreSQL from TEST_DATABASE_URL), a world."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from billing.db import make_engine
from billing.migrate import upgrade
from tests.world import World, make_world


async def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    """A freshly migrated database: PostgreSQL when TEST_DATABASE_URL is set, else SQLite."""
    url = os.environ.get("TEST_DATABASE_URL") or f"sqlite:///{tmp_path / 'portier.db'}"
    if url.startswith("postgresql"):
        await _reset_postgres(url)
    await asyncio.to_thread(upgrade, url)
    return url


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    """A sandbox, a fake Telegram (webhook mode) and a running Portier."""
    async with make_world(database_url, tmp_path) as w:
        yield w
