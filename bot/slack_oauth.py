"""Slack installations by OAuth, kept in Portier's database with their tokens encrypted.

slack_sdk's AsyncSQLAlchemyInstallationStore does the storing (tables made by Alembic,
billing/slack_models.py); this thin subclass encrypts bot, user and refresh tokens with
Fernet under PORTIER_DATA_KEY on the way in and decrypts them on the way out, so a copy of
the database alone gives no workspace's token.
"""

from __future__ import annotations

import copy
from typing import Any

from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from sqlalchemy.ext.asyncio import AsyncEngine

TOKEN_FIELDS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
_PLAIN = "xox"  # every Slack token starts so; a Fernet token starts with "gAAAAA"


class EncryptedInstallationStore(AsyncSQLAlchemyInstallationStore):
    """slack_sdk's SQLAlchemy installation store with tokens encrypted at rest."""

    def __init__(self, client_id: str, engine: AsyncEngine, key: str) -> None:
        super().__init__(client_id=client_id, engine=engine)
        self._fernet = Fernet(key.encode())

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

    async def async_find_bot(self, **kwargs: Any) -> Bot | None:
        """Return the workspace's bot with its tokens decrypted."""
        return self._opened(await super().async_find_bot(**kwargs))  # type: ignore[no-any-return]

    async def async_find_installation(self, **kwargs: Any) -> Installation | None:
        """Return the installation with its tokens decrypted."""
        return self._opened(  # type: ignore[no-any-return]
            await super().async_find_installation(**kwargs))
