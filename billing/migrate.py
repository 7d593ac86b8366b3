"""Apply Alembic migrations programmatically (`portier db upgrade`, and `portier run` on SQLite)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

_SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    """Return an Alembic config pointing at Portier's migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database to the given revision (blocking: call it off the event loop)."""
    command.upgrade(alembic_config(url), revision)
