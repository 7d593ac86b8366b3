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

With token rotation on, a bot token expires (12 hours) and its refresh token can be used once
(docs.slack.dev/authentication/using-token-rotation). `FreshBots` rotates a workspace's token
once for every request that finds it expiring at the same time, for Bolt's authorize and for
the outbox's pushes alike; Bolt's own authorize rotated per request, unlocked, so that a burst
after expiry spent the refresh token on the first call and failed the others with
invalid_refresh_token.
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
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError, SlackTokenRotationError
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import AsyncSQLAlchemyInstallationStore
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy.ext.asyncio import AsyncEngine

TOKEN_FIELDS = ("bot_token", "bot_refresh_token", "user_token", "user_refresh_token")
_PLAIN = "xox"  # every Slack token starts so; a Fernet token starts with "gAAAAA"
# Seconds a bot found is reused. Another Portier process's uninstall or rotation is seen after
# at most this long; meanwhile a revoked token fails its calls, and a rotated one still works.
BOT_TTL = 10.0
# A token is rotated when it has less than this left (Bolt's token_rotation_expiration_minutes
# default; AsyncApp sets the OAuth settings' value on the authorize, and so here).
ROTATE_MINUTES = 120
# After invalid_refresh_token, seconds to wait before each fresh read of the bot: another
# process may have spent the refresh token and be saving what it got.
REREAD_PAUSES = (0.0, 0.25, 1.0)
log = logging.getLogger(__name__)
Where = tuple[str | None, str | None, bool]


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

    async def async_reread_bot(self, *, enterprise_id: str | None, team_id: str | None,
                               is_enterprise_install: bool | None = False) -> Bot | None:
        """Return the workspace's bot as stored now (not the one kept for BOT_TTL)."""
        self._bots.pop((enterprise_id, team_id, bool(is_enterprise_install)), None)
        return await self.async_find_bot(enterprise_id=enterprise_id, team_id=team_id,
                                         is_enterprise_install=is_enterprise_install)

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


class FreshBots:
    """A workspace's bot with a token good for at least `minutes` more, its token rotated
    (when rotation is on) once for everyone asking at the same time.

    Single flight per installation: the first request to find the token expiring starts the
    rotation in a task of its own and every request arriving meanwhile awaits that task, so
    Slack sees one oauth.v2.access per refresh token and the store one save; all get the same
    bot, or the same failure. The task is not a request's: a request cancelled meanwhile does
    not cancel it, since the refresh token is spent at Slack once sent and a rotation not saved
    would leave the workspace with a dead one. (A lock per installation would serialize the
    same way, but each waiter would then try again after a failure, and a cancelled holder
    would lose the rotated token.)

    Across processes (two replicas) nothing is shared but the database: each process reads
    the bot afresh before rotating, and when Slack answers invalid_refresh_token (another
    process spent it first) reads it again a few times (REREAD_PAUSES) for the bot that one
    saved. If none appears, a token not yet expired is still used; else the failure is raised
    (SlackTokenRotationError) and the next request tries again.
    """

    def __init__(self, store: EncryptedInstallationStore, *, client_id: str, client_secret: str,
                 client: AsyncWebClient, minutes: int = ROTATE_MINUTES) -> None:
        self.store = store
        # slack_sdk's rotator makes the call (oauth.v2.access through `client`, i.e.
        # SLACK_API_BASE) and builds the rotated bot; when and how often is decided here.
        self.rotator = AsyncTokenRotator(client_id=client_id, client_secret=client_secret,
                                         client=client)
        self.minutes = minutes
        self._flights: dict[Where, asyncio.Future[Bot | None]] = {}

    def due(self, bot: Bot) -> bool:
        """Return whether the bot's token is rotated and has less than `minutes` left."""
        return (bot.bot_refresh_token is not None and bot.bot_token_expires_at is not None
                and bot.bot_token_expires_at <= time.time() + self.minutes * 60)

    async def __call__(self, *, enterprise_id: str | None, team_id: str | None,
                       is_enterprise_install: bool | None = False) -> Bot | None:
        """Return the workspace's bot (None if not installed), rotated first if due."""
        where: Where = (enterprise_id, team_id, bool(is_enterprise_install))
        bot = await self.store.async_find_bot(enterprise_id=enterprise_id, team_id=team_id,
                                              is_enterprise_install=is_enterprise_install)
        if bot is None or not self.due(bot):
            return bot
        flight = self._flights.get(where)
        if flight is None:
            flight = asyncio.ensure_future(self._rotate(where, bot.bot_refresh_token))
            self._flights[where] = flight
            flight.add_done_callback(lambda done: self._landed(where, done))
        return await asyncio.shield(flight)

    def _landed(self, where: Where, flight: asyncio.Future[Bot | None]) -> None:
        if self._flights.get(where) is flight:
            del self._flights[where]
        if not flight.cancelled():
            flight.exception()  # retrieved: a failure nobody awaited is not logged as lost

    async def _rotate(self, where: Where, seen: str | None) -> Bot | None:
        bot = await self._reread(where)
        if bot is None or bot.bot_refresh_token != seen or not self.due(bot):
            return bot  # uninstalled, or rotated (here or by another process) since
        try:
            rotated = await self.rotator.perform_bot_token_rotation(
                bot=bot, minutes_before_expiration=self.minutes)
        except SlackTokenRotationError as error:
            return await self._after_failure(where, bot, error)
        if rotated is None:  # Slack answered no bot token: keep the one there is
            return bot
        await self.store.async_save_bot(rotated)
        log.info("rotated the bot token of %s", where[1] or where[0])
        return rotated

    async def _after_failure(self, where: Where, bot: Bot,
                             error: SlackTokenRotationError) -> Bot | None:
        code = str(error.api_error.response.get("error") or "")
        if code == "invalid_refresh_token":  # spent: by another process, which saves its bot
            for pause in REREAD_PAUSES:
                await asyncio.sleep(pause)
                again = await self._reread(where)
                if again is None or again.bot_refresh_token != bot.bot_refresh_token:
                    return again
        if bot.bot_token_expires_at is not None and bot.bot_token_expires_at > time.time() + 60:
            log.warning("token rotation failed (%s); the token has time left", code)
            return bot
        log.error("token rotation failed (%s) for %s", code, where[1] or where[0])
        raise error

    async def _reread(self, where: Where) -> Bot | None:
        return await self.store.async_reread_bot(enterprise_id=where[0], team_id=where[1],
                                                 is_enterprise_install=where[2])


class FreshBotAuthorize(AsyncAuthorize):
    """Bolt's authorize for the stored bots: the bot from `FreshBots` (rotated once however
    many requests find it expiring), auth.test's answer kept per workspace and token.

    Not Bolt's AsyncInstallationStoreAuthorize (bot_only): that one rotates the token itself,
    per request and unlocked, and with no rotator configured it refuses a bot that has a
    refresh token; what is left of it with rotation taken out (find the bot, auth.test once
    per token) is the few lines here.
    """

    def __init__(self, bots: FreshBots) -> None:
        self.bots = bots
        self._results: dict[Where, tuple[str, asyncio.Future[AuthorizeResult]]] = {}

    @property
    def token_rotation_expiration_minutes(self) -> int:
        """Minutes before expiry a token is rotated (AsyncApp sets its OAuth settings')."""
        return self.bots.minutes

    @token_rotation_expiration_minutes.setter
    def token_rotation_expiration_minutes(self, minutes: int) -> None:
        self.bots.minutes = minutes

    async def __call__(self, *, context: AsyncBoltContext, enterprise_id: str | None,
                       team_id: str | None, user_id: str | None,
                       **_actor: Any) -> AuthorizeResult | None:
        """Return the workspace's bot token and ids, or None (not installed, token dead)."""
        where: Where = (enterprise_id, team_id, bool(context.is_enterprise_install))
        try:
            bot = await self.bots(enterprise_id=enterprise_id, team_id=team_id,
                                  is_enterprise_install=context.is_enterprise_install)
        except SlackTokenRotationError:
            return None  # logged by FreshBots; Bolt answers the request as unauthorized
        except Exception as error:  # noqa: BLE001 - the database away: as Bolt's own does
            log.warning("finding the bot failed: %s", type(error).__name__)
            return None
        if bot is None or not bot.bot_token:
            return None
        kept = self._results.get(where)
        if kept is None or kept[0] != bot.bot_token:  # one auth.test for a burst, too
            kept = (bot.bot_token, asyncio.ensure_future(self._auth_test(context.client, bot)))
            self._results[where] = kept
        try:
            return await asyncio.shield(kept[1])
        except Exception as error:
            if self._results.get(where) is kept:
                del self._results[where]  # asked again next time
            if not isinstance(error, SlackApiError):
                raise
            log.info("auth.test failed for %s: %s", team_id or enterprise_id,
                     error.response.get("error"))
            return None

    @staticmethod
    async def _auth_test(client: AsyncWebClient, bot: Bot) -> AuthorizeResult:
        answer = await client.auth_test(token=bot.bot_token)
        return AuthorizeResult.from_auth_test_response(
            auth_test_response=answer, bot_token=bot.bot_token, bot_scopes=bot.bot_scopes)


def authorize(bots: FreshBots) -> Callable[..., Awaitable[AuthorizeResult]]:
    """Return Bolt's authorize for the stored installations: the bot's token only (one read
    instead of two), auth.test's answer kept per token (not a Web API call before every
    ack), tokens rotated by `bots` (once for a burst, through SLACK_API_BASE)."""
    # AsyncApp takes an AsyncAuthorize as `authorize` (it says so), though its hint names
    # only callables; this one is called like them.
    return cast("Callable[..., Awaitable[AuthorizeResult]]", FreshBotAuthorize(bots))
