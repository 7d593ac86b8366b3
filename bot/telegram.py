"""The Telegram channel: python-telegram-bot updates in, neutral replies out.

Thin like Bolt's adapters: it turns an update into a portal call and the replies into
messages. Webhook mode feeds updates from Portier's own Starlette route into the
Application's queue (PTB's customwebhookbot/starlettebot.py); without a webhook URL it polls.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    BaseUpdateProcessor,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from billing.payloads import MalformedPayload, parse
from bot.channels import MessageGone, NotModified, Pacing
from bot.outbox import Issue, Rejected, RetryLater, Unreachable
from bot.runtime import same_secret, secret
from bot.settings import Settings
from bot.telegram_app import TelegramApp
from bot.telegram_http import AiohttpRequest
from bot.telegram_limiter import Limiter, OutboxSend, retry_seconds
from bot.telegram_render import caption, html, keyboard, send_attachment
from bot.telegram_updates import problem
from handlers.context import Actor
from handlers.i18n import LOCALES, N_, pick_locale, translate
from handlers.portal import Portal
from handlers.replies import Button, Reply, rows

log = logging.getLogger(__name__)
# JSON's "\ud800" decodes to a lone surrogate, which no UTF-8 encoder takes: echoed in an
# answer it made every send fail. Telegram itself sends valid UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")
# The exceptions PTB's de_json raises on input of the wrong shape (it checks no types).
_SHAPE_ERRORS = (AttributeError, KeyError, TypeError, ValueError, OverflowError)


class PerChatOrder(BaseUpdateProcessor):
    """Handle updates of different chats concurrently and each chat's updates in order."""

    def __init__(self, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self._locks: dict[int, asyncio.Lock] = {}
        self._waiting: defaultdict[int, int] = defaultdict(int)

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Run the update's handling under its chat's lock."""
        chat = getattr(update, "effective_chat", None)
        if chat is None:
            await coroutine
            return
        key = chat.id
        self._waiting[key] += 1
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                await coroutine
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]
                self._locks.pop(key, None)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


def clean(text: str) -> str:
    """Replace lone surrogates (never valid Unicode text) with U+FFFD."""
    return text if text.isascii() else _SURROGATE.sub("\ufffd", text)


def actor_of(update: Update) -> Actor:
    """Describe the user behind an update."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:  # the handlers' filters let through only such updates
        raise ValueError("an update without a user or chat")
    return Actor(channel="telegram", user_id=str(user.id), chat_id=str(chat.id),
                 private=chat.type == ChatType.PRIVATE, language=user.language_code,
                 name=clean(user.first_name))


def _is_group(chat_id: str) -> bool:
    """Tell a group or channel by its id (negative in Telegram)."""
    return chat_id.startswith("-")


class TelegramChannel:
    """A python-telegram-bot Application wired to the portal."""

    name = "telegram"
    # Telegram's broadcast limits: a message a second per chat, 20 a minute per group
    # (core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
    pacing = Pacing(per_chat=1.0, group_per_minute=20, is_group=_is_group)

    def __init__(self, settings: Settings, portal: Portal) -> None:
        self.settings = settings
        self.portal = portal
        self._counted: Callable[[], None] = lambda: None
        builder = (Application.builder().token(secret(settings.telegram_bot_token))
                   .base_url(settings.telegram_api_base)
                   .request(AiohttpRequest())
                   .get_updates_request(AiohttpRequest(pool_size=1))
                   # PTB's limiter keeps Telegram's flood limits: PORTIER_SEND_RATE for all
                   # chats together, 20 a minute per group; it retries a reply's 429 after
                   # retry_after, and hands a notice's back to the outbox (telegram_limiter).
                   .rate_limiter(Limiter(overall_max_rate=settings.send_rate, max_retries=2))
                   .concurrent_updates(PerChatOrder()))
        if settings.telegram_webhook_mode:
            builder = builder.updater(None)
        self.app = builder.build()
        self.app.add_handler(MessageHandler(filters.COMMAND, self.on_command))
        self.app.add_handler(CallbackQueryHandler(self.on_button))
        self.app.add_handler(MessageHandler(
            filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE, self.on_text))
        self.app.add_error_handler(self.on_error)

    def routes(self, counted: Callable[[], None]) -> list[BaseRoute]:
        """Serve `POST /telegram/webhook` in webhook mode (long polling needs no route)."""
        self._counted = counted
        if not self.settings.telegram_webhook_mode:
            return []
        return [Route("/telegram/webhook", self.webhook, methods=["POST"])]

    async def webhook(self, request: Request) -> Response:
        """Accept an update from Telegram carrying our secret token."""
        expected = secret(self.settings.telegram_webhook_secret)
        if not same_secret(request.headers.get("x-telegram-bot-api-secret-token"), expected):
            return PlainTextResponse("forbidden", status_code=403)
        # From here on the sender holds our secret: it is Telegram, which repeats an update
        # answered with anything but 2xx ("we will repeat the request and give up after a
        # reasonable amount of attempts", core.telegram.org/bots/api#setwebhook) and holds
        # back the updates behind it. A poison update is logged and dropped with 200.
        try:
            dropped = await self.feed(parse(await request.body()))
        except MalformedPayload as error:
            dropped = str(error)
        if dropped:
            log.warning("Telegram update dropped: %s", dropped)
        else:
            self._counted()
        return Response(status_code=200)

    async def start(self) -> None:
        """Initialise the bot, register commands and the webhook (or start polling)."""
        await self.app.initialize()
        self.portal.register(TelegramApp(self.app.bot.username, self._show_menu_in))
        for locale in LOCALES:
            code = None if locale == self.settings.locale else locale
            await self.app.bot.set_my_commands(self._commands(locale), language_code=code)
        for admin in self.settings.telegram_admin_ids:  # admins also see /stats (SPEC §5)
            await self._show_menu_in(str(admin), self.settings.locale)
        if self.settings.telegram_webhook_mode:
            await self.app.bot.set_webhook(
                url=str(self.settings.telegram_webhook_url),
                secret_token=secret(self.settings.telegram_webhook_secret),
                allowed_updates=["message", "callback_query"])
        elif self.app.updater is not None:
            await self.app.bot.delete_webhook()
            await self.app.updater.start_polling(allowed_updates=["message", "callback_query"])
        await self.app.start()

    def _commands(self, locale: str, *, admin: bool = False) -> list[BotCommand]:
        return [BotCommand(n, d) for n, d in self.portal.command_menu(locale, admin=admin)]

    async def _show_menu_in(self, chat_id: str, locale: str) -> None:
        """Show the command menu of a private chat in the language its user chose in
        /settings (by default Telegram picks the app's language)."""
        try:
            admin = int(chat_id) in self.settings.telegram_admin_ids  # a private chat's id
            await self.app.bot.set_my_commands(self._commands(locale, admin=admin),
                                               scope=BotCommandScopeChat(int(chat_id)))
        except TelegramError as error:  # the choice is saved; only the menu stays as it was
            log.warning("could not set the chat's command menu: %s", type(error).__name__)

    async def stop(self) -> None:
        """Stop polling and the application."""
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def feed(self, data: Any) -> str | None:
        """Queue one update received by the webhook route; return why it was dropped instead,
        when it is no update Portier can act on."""
        why = problem(data)
        if why is not None:
            return why
        try:
            update = Update.de_json(data, self.app.bot)
        except _SHAPE_ERRORS as error:  # a field Portier does not check had the wrong shape
            return f"unreadable: {type(error).__name__}"
        await self.app.update_queue.put(update)
        return None

    async def on_command(self, update: Update, _ctx: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer `/name args`; a command addressed to another bot is ignored."""
        message = update.effective_message
        if message is None or not message.text or update.effective_user is None:
            return
        head, _, args = message.text.partition(" ")
        name, _, mention = head[1:].partition("@")
        if mention and mention.lower() != (self.app.bot.username or "").lower():
            return
        if message.sender_chat is not None:
            await self._answer_anonymous(message.chat_id)
            return
        actor = actor_of(update)
        await self.deliver(actor, await self.portal.command(actor, clean(name), clean(args)))

    async def on_text(self, update: Update, _ctx: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer free text in a private chat."""
        message = update.effective_message
        if message is None or message.text is None or update.effective_user is None:
            return
        if message.sender_chat is not None:
            await self._answer_anonymous(message.chat_id)
            return
        actor = actor_of(update)
        await self.deliver(actor, await self.portal.text(actor, clean(message.text)))

    async def _answer_anonymous(self, chat_id: int) -> None:
        """Answer a message sent on behalf of a chat: an anonymous group admin (`from` is
        GroupAnonymousBot) or a channel. Nobody can be identified, so nothing is looked up;
        billing is per person, in a private chat."""
        locale = self.settings.locale
        text = translate(locale, N_("I can't tell who you are when you write anonymously, "
                                    "on behalf of the group. Billing works in a private chat "
                                    "with me."))
        username = self.app.bot.username
        buttons = rows(Button(translate(locale, N_("Open private chat")),
                              url=f"https://t.me/{username}")) if username else ()
        await self.send(str(chat_id), Reply(text, buttons=buttons))

    async def on_button(self, update: Update, _ctx: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer a button press; every callback query is answered, as Telegram requires."""
        query = update.callback_query
        if query is None or update.effective_chat is None:
            return
        message_id = query.message.message_id if query.message else None
        actor = dataclasses.replace(actor_of(update), message_id=str(message_id)
                                    if message_id is not None else None)
        replies = await self.portal.button(actor, query.data or "")
        toast = next((r.toast for r in replies if r.toast), None)
        await query.answer(toast)
        await self.deliver(actor, replies, edit_message_id=message_id)

    async def deliver(self, actor: Actor, replies: list[Reply], *,
                      edit_message_id: int | None = None) -> None:
        """Send the replies into the actor's chat, editing the pressed message when asked."""
        for reply in replies:
            if reply.private and not actor.private:
                continue  # never a hosted link or billing detail in a group
            if reply.edit and edit_message_id is not None:
                try:
                    await self.edit(actor.chat_id, str(edit_message_id), reply)
                except NotModified:  # a second press of Refresh with nothing new: fine
                    pass
                except MessageGone:  # deleted meanwhile: the answer comes as a new message
                    await self.send(actor.chat_id, dataclasses.replace(reply, edit=False))
            else:
                await self.send(actor.chat_id, reply)

    async def edit(self, chat_id: str, message_id: str, reply: Reply) -> None:
        """Replace a sent message's text and buttons with the reply's."""
        try:
            await self.app.bot.edit_message_text(
                html(reply), chat_id=int(chat_id), message_id=int(message_id),
                parse_mode=ParseMode.HTML, reply_markup=keyboard(reply),
                disable_web_page_preview=True)
        except BadRequest as error:
            # Telegram's 400s for an edit: "message is not modified: specified new message
            # content and reply markup are exactly the same…", "message to edit not found",
            # "message can't be edited".
            reason = str(error).lower()
            if "not modified" in reason:
                raise NotModified(str(error)) from None
            if "message to edit not found" in reason or "can't be edited" in reason:
                raise MessageGone(str(error)) from None
            self._refused(error)
        except (Forbidden, RetryAfter) as error:
            self._refused(error)

    async def send(self, chat_id: str, reply: Reply, *, issue: Issue | None = None
                   ) -> str | None:
        """Send one reply (a photo with caption when it has an image); return its message id.
        An outbox send passes `issue`, run right before the request leaves."""
        # Any: ExtBot types rate_limit_args after AIORateLimiter's (an int of retries).
        limits: Any = OutboxSend(issue) if issue is not None else None
        try:
            if reply.attachment is not None:  # an uploaded chart or CSV: a reply, never a notice
                await send_attachment(self.app.bot, int(chat_id), reply)
                return None
            if reply.image_url:
                sent = await self.app.bot.send_photo(
                    int(chat_id), reply.image_url, caption=caption(reply),
                    parse_mode=ParseMode.HTML, reply_markup=keyboard(reply),
                    rate_limit_args=limits)
            else:
                sent = await self.app.bot.send_message(
                    int(chat_id), html(reply), parse_mode=ParseMode.HTML,
                    reply_markup=keyboard(reply), disable_web_page_preview=True,
                    rate_limit_args=limits)
        except (Forbidden, RetryAfter, BadRequest) as error:
            self._refused(error)
        return str(sent.message_id)

    @staticmethod
    def _refused(error: TelegramError) -> NoReturn:
        """Raise the outbox's outcome of a refused request."""
        if isinstance(error, Forbidden):  # 403: blocked by the user, kicked from the group
            raise Unreachable(str(error)) from None
        if isinstance(error, RetryAfter):  # a reply's 429 after the rate limiter's own retries
            raise RetryLater(retry_seconds(error)) from None
        # 400: this message can never go (or the chat is gone)
        if "chat not found" in str(error).lower():
            raise Unreachable(str(error)) from None
        raise Rejected(str(error)) from None

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log the failure without secrets and tell the user that nothing was changed."""
        error = context.error
        log.error("update failed: %s", type(error).__name__, exc_info=error)
        if not isinstance(update, Update) or update.effective_chat is None:
            return
        if isinstance(error, Unreachable):  # the chat just refused a message: not another
            return
        try:
            if update.callback_query is not None:
                await update.callback_query.answer()
            user = update.effective_user
            locale = pick_locale(user.language_code if user else None,
                                 default=self.settings.locale)
            await self.app.bot.send_message(update.effective_chat.id, translate(
                locale, "Sorry, something went wrong on our side. Nothing was changed. "
                "Please try again in a minute."))
        except Exception as exc:  # noqa: BLE001 - the chat is unreachable; already logged
            log.warning("could not report the failure: %s", type(exc).__name__)
