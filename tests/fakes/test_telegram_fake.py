"""The fake Bot API, driven by the real python-telegram-bot (no Portier code)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)
from telegram.request import HTTPXRequest

from tests.fakes import SECRET_HEADER, FakeTelegram, NotDelivered, serve

SECRET = "s3cret_token-1"
Context = ContextTypes.DEFAULT_TYPE
App = Application[Any, Any, Any, Any, Any, Any]


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    """Serve a fresh fake Bot API."""
    with FakeTelegram() as fake:
        yield fake


async def start(update: Update, context: Context) -> None:
    """Greets the user and offers the plans."""
    assert update.effective_message and update.effective_user
    keyboard = InlineKeyboardMarkup([[
        InlineKeyboardButton("Plans", callback_data="plan:list"),
        InlineKeyboardButton("Docs", url="https://example.org/docs"),
    ]])
    await update.effective_message.reply_html(
        f"Welcome <b>{update.effective_user.first_name}</b>! {' '.join(context.args or [])}",
        reply_markup=keyboard,
    )


async def show_plans(update: Update, context: Context) -> None:
    """Shows the plans in place of the greeting."""
    query = update.callback_query
    assert query
    # CallbackQueries need to be answered, even if no notification to the user is needed
    await query.answer("Loading plans")
    back = InlineKeyboardMarkup([[InlineKeyboardButton("Back", callback_data="plan:back")]])
    await query.edit_message_text("Plans: <i>basic</i>, <i>pro</i>", parse_mode=ParseMode.HTML,
                                  reply_markup=back)


def build(fake: FakeTelegram, *, polling: bool = False, limiter: bool = False) -> App:
    """Build a small PTB application talking to the fake."""
    builder = Application.builder().token(fake.token).base_url(fake.api_base)
    if not polling:
        builder = builder.updater(None)
    if limiter:
        builder = builder.rate_limiter(AIORateLimiter(max_retries=2))  # type: ignore[arg-type]
    app = builder.build()
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(show_plans, pattern=r"^plan:list$"))
    app.bot_data["errors"] = []

    async def remember(update: object, context: Context) -> None:
        context.bot_data["errors"].append(context.error)

    app.add_error_handler(remember)
    return app


@contextlib.asynccontextmanager
async def webhook_bot(app: App, secret: str = SECRET) -> AsyncIterator[str]:
    """Run app behind its own Starlette webhook route; yield the webhook URL."""

    async def telegram(request: Request) -> Response:
        if request.headers.get(SECRET_HEADER) != secret:
            return Response(status_code=403)
        await app.update_queue.put(Update.de_json(await request.json(), app.bot))
        return Response()

    web = Starlette(routes=[Route("/telegram", telegram, methods=["POST"])])
    async with serve(web) as base, app:
        await app.bot.set_webhook(f"{base}/telegram", secret_token=secret,
                                  allowed_updates=Update.ALL_TYPES)
        await app.start()
        try:
            yield f"{base}/telegram"
        finally:
            await app.stop()


@contextlib.asynccontextmanager
async def polling_bot(app: App) -> AsyncIterator[None]:
    """Run app with getUpdates long polling."""
    async with app:
        assert app.updater
        await app.updater.start_polling(poll_interval=0, timeout=1)
        await app.start()
        try:
            yield
        finally:
            await app.updater.stop()
            await app.stop()


async def test_webhook_conversation(fake: FakeTelegram) -> None:
    """A webhook bot answers /start with a keyboard, and a press edits the message."""
    user = fake.user(id=1001, first_name="Ada")
    async with webhook_bot(build(fake)) as url:
        assert fake.webhook and fake.webhook.url == url and fake.webhook.secret_token == SECRET
        assert await fake.send(user, "/start abc") == 200
        greeting = await fake.next_message(user)
        assert greeting.text == "Welcome Ada! abc"
        assert greeting.source == "Welcome <b>Ada</b>! abc"
        assert greeting.entities == ({"type": "bold", "offset": 8, "length": 3},)
        assert greeting.buttons() == [["Plans", "Docs"]]
        assert await fake.press(user, greeting, "Docs") == "https://example.org/docs"

        assert await fake.press(user, greeting, "Plans") == 200
        edited = await fake.next_message(user)
        assert (edited.message_id, edited.edited) == (greeting.message_id, True)
        assert edited.text == "Plans: basic, pro" and edited.buttons() == [["Back"]]
        assert [m.text for m in fake.messages(user)] == ["Plans: basic, pro"]
        assert fake.answered_callbacks[0]["text"] == "Loading plans"
        assert fake.pending_callbacks == []
        with pytest.raises(LookupError, match="Plans"):
            await fake.press(user, greeting, "Plans")  # the keyboard now only has Back


async def test_wrong_secret_is_refused(fake: FakeTelegram) -> None:
    """The bot's route refuses an update without the registered secret."""
    user = fake.user(id=1002)
    async with webhook_bot(build(fake)):
        assert await fake.send(user, "/start", secret="wrong") == 403
        assert await fake.send(user, "/start", secret=None) == 403
        await fake.assert_no_message(user, within=0.2)


async def test_polling_conversation(fake: FakeTelegram) -> None:
    """A polling bot gets updates by long polling, and confirmed updates are forgotten."""
    user = fake.user(id=1003, first_name="Grace")
    async with polling_bot(build(fake, polling=True)):
        assert fake.webhook is None
        assert await fake.send(user, "/start") == 200
        greeting = await fake.next_message(user)
        assert greeting.text == "Welcome Grace! "
        await fake.press(user, greeting, "Plans")
        assert (await fake.next_message(user)).text == "Plans: basic, pro"
        await fake.wait_for_calls("answerCallbackQuery")
    assert fake.state.pending_update_count() == 0
    assert fake.calls("deleteWebhook")  # PTB's bootstrap before polling


async def test_group_command_mentions_bot(fake: FakeTelegram) -> None:
    """A command addressed to the bot in a supergroup carries one bot_command entity."""
    user, group = fake.user(id=1004), fake.group(id=-1001234, title="Ops")
    update = fake.make_message_update(user, f"/start@{fake.username} x", chat=group)
    message = update["message"]
    assert message["chat"] == {"id": -1001234, "type": "supergroup", "title": "Ops"}
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 23}]
    async with webhook_bot(build(fake)):
        assert await fake.deliver(update) == 200
        assert (await fake.next_message(group)).text == "Welcome Ada! x"


async def test_commands_by_language(fake: FakeTelegram) -> None:
    """Command lists are kept per scope and language code."""
    async with build(fake) as app:
        await app.bot.set_my_commands([BotCommand("start", "Start")])
        await app.bot.set_my_commands([BotCommand("start", "Starten")], language_code="de")
        german = await app.bot.get_my_commands(language_code="de")
        assert [(c.command, c.description) for c in german] == [("start", "Starten")]
        assert fake.commands()[0]["description"] == "Start"
        await app.bot.delete_my_commands(language_code="de")
        assert await app.bot.get_my_commands(language_code="de") == ()
        with pytest.raises(BadRequest):
            await app.bot.set_my_commands([BotCommand("Bad-Name", "x")])


# PTB 22 warns about RetryAfter.retry_after becoming a timedelta whenever it builds one
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_retry_after_is_honoured(fake: FakeTelegram) -> None:
    """A 429 with retry_after makes PTB's AIORateLimiter wait and send again."""
    user = fake.user(id=1005)
    fake.fail_next("sendMessage", status=429, retry_after=1)
    async with webhook_bot(build(fake, limiter=True)):
        started = time.monotonic()
        await fake.send(user, "/start")
        assert (await fake.next_message(user, timeout=5)).text == "Welcome Ada! "
    assert time.monotonic() - started >= 1
    first, second = [c for c in fake.call_log if c.method == "sendMessage"]
    assert (first.status, second.status) == (429, 200)
    assert first.description == "Too Many Requests: retry after 1"
    assert second.at - first.at >= 1


async def test_blocked_user_surfaces_as_forbidden(fake: FakeTelegram) -> None:
    """A 403 for one chat reaches the error handler as telegram.error.Forbidden."""
    blocked, other = fake.user(id=1006), fake.user(id=1007)
    fake.fail_next("sendMessage", status=403, chat_id=blocked)
    app = build(fake)
    async with webhook_bot(app):
        await fake.send(blocked, "/start")
        await fake.send(other, "/start")
        assert (await fake.next_message(other)).text == "Welcome Ada! "
        await fake.wait_for_calls("sendMessage", count=2)
    [error] = app.bot_data["errors"]
    assert isinstance(error, Forbidden) and "bot was blocked by the user" in error.message


async def test_answers_errors_like_telegram(fake: FakeTelegram) -> None:
    """Bad tokens, unknown methods and bad calls get Telegram's error bodies."""
    async with httpx.AsyncClient() as client:
        wrong = await client.post(f"{fake.api_base}1:wrong/getMe")
        assert (wrong.status_code, wrong.json()) == (
            401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
        unknown = await client.post(f"{fake.api_base}{fake.token}/fooBar")
        assert (unknown.status_code, unknown.json()) == (
            404, {"ok": False, "error_code": 404, "description": "Not Found"})
        fake.fail_next("getMe", 429, retry_after=3)
        limited = await client.get(f"{fake.api_base}{fake.token}/getme")  # any case, any verb
        assert (limited.status_code, limited.json()) == (429, {
            "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
            "parameters": {"retry_after": 3}})
    user = fake.user(id=1008)
    async with build(fake) as app:
        bot = app.bot
        with pytest.raises(BadRequest, match="[Cc]an't parse entities"):
            await bot.send_message(user.id, "1 < 2", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match="[Cc]hat not found"):
            await bot.send_message(424242, "hi")
        sent = await bot.send_message(user.id, "same")
        with pytest.raises(BadRequest, match="not modified"):
            await bot.edit_message_text("same", chat_id=user.id, message_id=sent.message_id)
        with pytest.raises(BadRequest, match="Message to edit not found"):
            await bot.edit_message_text("x", chat_id=user.id, message_id=sent.message_id + 9)
        await fake.send(user, "mine")  # a user's message (queued, never polled here)
        with pytest.raises(BadRequest, match="Message can't be edited"):
            await bot.edit_message_text("x", chat_id=user.id, message_id=sent.message_id + 1)
        with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
            too_long = InlineKeyboardButton("x", callback_data="x" * 65)
            await bot.send_message(user.id, "hi", reply_markup=InlineKeyboardMarkup([[too_long]]))
        with pytest.raises(Conflict):
            await bot.set_webhook("http://127.0.0.1:9/hook")
            await bot.get_updates()
    request = HTTPXRequest()
    try:
        with pytest.raises(InvalidToken):
            await Bot("1:wrong", base_url=fake.api_base, request=request).get_me()
    finally:
        await request.shutdown()  # a Bot whose initialize() failed never closes its client


async def test_messages_are_kept_per_chat(fake: FakeTelegram) -> None:
    """Message ids count per chat; deletes, photos and keyboard edits are recorded."""
    ada, bob = fake.user(id=1009), fake.user(id=1010, first_name="Bob")
    await fake.send(ada, "hello")  # queued; the user's message takes id 1 in Ada's chat
    async with build(fake) as app:
        bot = app.bot
        first = await bot.send_message(ada.id, "one")
        other = await bot.send_message(bob.id, "other")
        photo = await bot.send_photo(ada.id, b"\x89PNG fake", caption="<b>chart</b>",
                                     parse_mode=ParseMode.HTML)
        assert (first.message_id, other.message_id, photo.message_id) == (2, 1, 3)
        keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="go")]])
        await bot.edit_message_reply_markup(ada.id, first.message_id, reply_markup=keyboard)
        assert await bot.delete_message(ada.id, photo.message_id)
        with pytest.raises(BadRequest, match="not found"):
            await bot.delete_message(ada.id, photo.message_id)
    assert [m.method for m in fake.history(ada)] == [
        "sendMessage", "sendPhoto", "editMessageReplyMarkup"]
    assert fake.history(ada)[1].photo == "upload:application.octet-stream"
    assert fake.history(ada)[1].text == "chart"
    [current] = fake.messages(ada)
    assert (current.text, current.buttons()) == ("one", [["Go"]])
    assert fake.deleted(ada) == [3]


async def test_uploads_arrive_as_multipart_files(fake: FakeTelegram) -> None:
    """sendPhoto and sendDocument take multipart uploads, as python-telegram-bot sends them;
    an upload that is no image is refused as a photo (Telegram cannot decode it)."""
    ada = fake.user(id=1012)
    await fake.send(ada, "hello")
    async with build(fake) as app:
        bot = app.bot
        sent = await bot.send_document(ada.id, InputFile(b"month,mrr\n", filename="mrr.csv"),
                                       caption="<b>figures</b>", parse_mode=ParseMode.HTML)
        assert sent.document is not None and sent.document.file_name == "mrr.csv"
        assert sent.document.file_size == 10
        with pytest.raises(BadRequest, match="(?i)image_process_failed"):
            await bot.send_photo(ada.id, InputFile(b"not an image", filename="x.png"))
    [document] = fake.history(ada)
    assert (document.method, document.document, document.text) == (
        "sendDocument", "upload:mrr.csv", "figures")
    assert document.params["document"].data == b"month,mrr\n"


async def test_long_poll_returns_when_an_update_arrives(fake: FakeTelegram) -> None:
    """getUpdates waits up to its timeout and answers as soon as an update is queued."""
    user = fake.user(id=1011)
    async with build(fake, polling=True) as app:
        import asyncio

        poll = asyncio.create_task(app.bot.get_updates(timeout=5))
        await asyncio.sleep(0.1)  # let the long poll start before the update exists
        started = time.monotonic()
        await fake.send(user, "hi")
        [update] = await asyncio.wait_for(poll, timeout=5)
        assert time.monotonic() - started < 1
        assert update.message and update.message.text == "hi"
        assert await app.bot.get_updates(offset=update.update_id + 1) == ()


async def test_press_checks_allowed_updates_and_answers(fake: FakeTelegram) -> None:
    """Presses need callback_query in allowed_updates; a query is answered only once."""
    user = fake.user(id=1012)
    async with build(fake) as app:
        sent = await app.bot.send_message(user.id, "pick", reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("A", callback_data="a")]]))
        message = fake.messages(user)[0]
        update = fake.make_callback_update(user, message, "forged:data")
        query_id = update["callback_query"]["id"]
        assert update["callback_query"]["message"]["message_id"] == sent.message_id
        assert await app.bot.answer_callback_query(query_id)
        with pytest.raises(BadRequest, match="[Qq]uery is too old"):
            await app.bot.answer_callback_query(query_id)
        await app.bot.set_webhook("http://127.0.0.1:9/hook", allowed_updates=["message"])
        with pytest.raises(NotDelivered):
            await fake.press(user, message, "A")


async def test_harness_measures_the_echo_bot() -> None:
    """The benchmark driver times every update until the echo bot's reply reaches the fake."""
    from bench.echo_bot import running_echo_bot
    from bench.harness import run_load

    with FakeTelegram() as fake:
        async with running_echo_bot(fake) as (url, secret):
            result = await run_load(fake, url, secret, updates=40, users=5, concurrency=3,
                                    warmup=3, text="ping")
            refused = await fake.send(fake.user(id=1013), "hi", secret="wrong")
    assert (result.updates, result.concurrency, refused) == (40, 3, 403)
    assert 0 < result.p50_ms <= result.p99_ms and result.updates_per_second > 0
    echoes = [m for chat in range(700_000_000, 700_000_005) for m in fake.history(chat)]
    assert len(echoes) == 40 + 3 and {m.text for m in echoes} == {"ping"}
