"""Slack installations by OAuth, kept in Portier's database with their tokens encrypted.

slack_sdk's AsyncSQLAlchemyInstallationStore does the storing (tables made by Alembic,
billing/slack_models.py); this thin subclass encrypts bot, user and refresh tokens with
Fernet under PORTIER_DATA_KEY on the way in and decrypts them on the way out, so a copy of
the database alone gives no workspace's token.

Bolt looks the workspace's bot up on every request, before the listener can ack it, so that
look-up is kept short: the bot only (Portier asks for no user scopes), auth.test's answer kept
per token (`authorize`), and the bot itself kept for a few seconds (`BOT_TTL`), forgotten at
once when this process saves or deletes one. Under a burst of 200 slash commands, two reads,
a decryption and an auth.test per request held each ack up behind the listeners' work.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from cryptography.fernet import Fernet
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

TOKEN_FIELDS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
_PLAIN = "xox"  # every Slack token starts so; a Fernet token starts with "gAAAAA"
# Seconds a bot found is reused. Another Portier process's uninstall or rotation is seen after
# at most this long; meanwhile a revoked token fails its calls, and a rotated one still works.
BOT_TTL = 10.0


class EncryptedInstallationStore(AsyncSQLAlchemyInstallationStore):
    """slack_sdk's SQLAlchemy installation store with tokens encrypted at rest."""

    def __init__(self, client_id: str, engine: AsyncEngine, key: str, *,
                 read_engine: AsyncEngine | None = None) -> None:
        super().__init__(client_id=client_id, engine=engine)
        self._fernet = Fernet(key.encode())
        self._bots: dict[tuple[Any, ...], tuple[float, asyncio.Future[Bot | None]]] = {}
        # Finds on the read engine: on SQLite a read there runs inline and never queues for
        # a connection behind the listeners' writes.
        self._reader = (AsyncSQLAlchemyInstallationStore(client_id=client_id, engine=read_engine)
                        if read_engine is not None else None)

    def _seal(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(_PLAIN):
            return self._fernet.encrypt(value.encode()).decode()
        return value

    def _open(self, value: Any) -> Any:
        if isinstance(value, str) and value and not value.startswith(_PLAIN):
            return self._fernet.decrypt(value.encode()).decode()
        return value

    def _sealed(self, entity: Any) -> Any:
        sealed = copy.copy(entity)
        for name in TOKEN_FIELDS:
            if hasattr(sealed, name):
                setattr(sealed, name, self._seal(getattr(sealed, name)))
        return sealed

    def _opened(self, entity: Any) -> Any:
        if entity is None:
            return None
        for name in TOKEN_FIELDS:
            if hasattr(entity, name):
                setattr(entity, name, self._open(getattr(entity, name)))
        return entity

    async def async_save(self, installation: Installation) -> None:
        """Store an installation (and its bot) with the tokens encrypted."""
        await super().async_save(self._sealed(installation))

    async def async_save_bot(self, bot: Bot) -> None:
        """Store a bot with its tokens encrypted."""
        await super().async_save_bot(self._sealed(bot))
        self._bots.clear()  # a bot read meanwhile may be the old one

    async def async_delete_bot(self, **kwargs: Any) -> None:
        """Delete the workspace's bots."""
        await super().async_delete_bot(**kwargs)
        self._bots.clear()  # a bot read meanwhile may be the old one

    async def async_delete_installation(self, **kwargs: Any) -> None:
        """Delete the workspace's installations."""
        await super().async_delete_installation(**kwargs)
        self._bots.clear()  # a bot read meanwhile may be the old one

    async def async_find_bot(self, *, enterprise_id: str | None, team_id: str | None,
                             is_enterprise_install: bool | None = False) -> Bot | None:
        """Return the workspace's bot with its tokens decrypted: as found in the last BOT_TTL
        seconds, else read now (once for all the requests asking meanwhile)."""
        key = (enterprise_id, team_id, bool(is_enterprise_install))
        now = time.monotonic()
        kept = self._bots.get(key)
        if kept is None or now - kept[0] >= BOT_TTL:
            kept = (now, asyncio.ensure_future(self._read_bot(
                enterprise_id=enterprise_id, team_id=team_id,
                is_enterprise_install=is_enterprise_install)))
            self._bots[key] = kept
        try:
            bot = await asyncio.shield(kept[1])
        except Exception:
            self._forget(key, kept)
            raise
        if bot is None:  # not installed: read again next time
            self._forget(key, kept)
        return bot

    def _forget(self, key: tuple[Any, ...], kept: tuple[float, Any]) -> None:
        if self._bots.get(key) is kept:
            del self._bots[key]

    async def _read_bot(self, **kwargs: Any) -> Bot | None:
        find = self._reader.async_find_bot if self._reader else super().async_find_bot
        return self._opened(await find(**kwargs))  # type: ignore[no-any-return]

    async def async_find_installation(self, **kwargs: Any) -> Installation | None:
        """Return the installation with its tokens decrypted."""
        find = (self._reader.async_find_installation if self._reader
                else super().async_find_installation)
        return self._opened(await find(**kwargs))  # type: ignore[no-any-return]


def authorize(store: EncryptedInstallationStore, *, client_id: str, client_secret: str,
              client: AsyncWebClient) -> Callable[..., Awaitable[AuthorizeResult]]:
    """Return Bolt's authorize for the stored installations: the bot's token only (one read
    instead of two), auth.test's answer kept per token (not a Web API call before every
    ack), tokens rotated through `client` (SLACK_API_BASE)."""
    found = AsyncInstallationStoreAuthorize(
        logger=logging.getLogger("slack_bolt.authorize"), installation_store=store,
        client_id=client_id, client_secret=client_secret, bot_only=True, cache_enabled=True,
        client=client)
    # AsyncApp takes an AsyncAuthorize as `authorize` (it says so), though its hint names
    # only callables; this one is called like them.
    return cast("Callable[..., Awaitable[AuthorizeResult]]", found)
