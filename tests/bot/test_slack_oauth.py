"""The installation store Bolt reads before every ack: tokens encrypted, the bot kept briefly."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlalchemy import event

from billing.db import Database
from bot import slack_oauth
from bot.slack_oauth import EncryptedInstallationStore


def _bot(token: str, installed_at: float) -> Bot:
    return Bot(app_id="A0PORTIER1", team_id="T0ACME", bot_token=token, bot_id="B0BOT",
               bot_user_id="U0BOT", bot_scopes=["commands"], installed_at=installed_at)


async def test_a_bot_is_read_once_then_kept_until_saved_or_deleted(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests asking for a workspace's bot together, and within BOT_TTL seconds, share one
    read of the database; a rotated bot saved or an uninstall is seen at once; once BOT_TTL
    has passed the bot is read again."""
    store = EncryptedInstallationStore("1111111111.2222222222", db.engine,
                                       Fernet.generate_key().decode(),
                                       read_engine=db.read_engine)
    installed = time.time()
    await store.async_save(Installation(
        app_id="A0PORTIER1", team_id="T0ACME", user_id="U0ADA", bot_token="xoxb-1",
        bot_id="B0BOT", bot_user_id="U0BOT", bot_scopes=["commands"], installed_at=installed))
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM slack_bots" in statement:
            reads.append(statement)

    event.listen(db.read_engine.sync_engine, "before_cursor_execute", count)

    async def token(team: str = "T0ACME") -> str | None:
        bot = await store.async_find_bot(enterprise_id=None, team_id=team)
        return bot.bot_token if bot is not None else None

    assert set(await asyncio.gather(*(token() for _ in range(20)))) == {"xoxb-1"}
    assert await token() == "xoxb-1"
    assert len(reads) == 1
    await store.async_save_bot(_bot("xoxb-2", installed + 1))  # a rotated token
    assert await token() == "xoxb-2"
    assert len(reads) == 2
    monkeypatch.setattr(slack_oauth, "BOT_TTL", 0.0)
    await token()
    assert len(reads) == 3
    monkeypatch.undo()
    await store.async_delete_bot(enterprise_id=None, team_id="T0ACME")  # app_uninstalled
    assert await token() is None
    assert await token("T0OTHER") is None
