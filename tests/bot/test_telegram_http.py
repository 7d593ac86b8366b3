"""The Bot API client (aiohttp under python-telegram-bot) against local servers."""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.warnings import PTBDeprecationWarning

from bot.service import bind
from bot.telegram import retry_seconds
from bot.telegram_http import AiohttpRequest
from tests.fakes.telegram import FakeTelegram


@contextlib.asynccontextmanager
async def bot_on(fake: FakeTelegram, request: AiohttpRequest | None = None
                 ) -> AsyncIterator[Bot]:
    """A plain python-telegram-bot Bot sending through AiohttpRequest to the fake."""
    bot = Bot(fake.token, base_url=fake.api_base, request=request or AiohttpRequest())
    async with bot:
        yield bot


async def test_calls_reach_the_bot_api_with_their_parameters() -> None:
    """getMe answers, and a message with HTML and a keyboard arrives as sent."""
    with FakeTelegram() as fake:
        user = fake.user(42, first_name="Ada")
        async with bot_on(fake) as bot:
            me = await bot.get_me()
            keyboard = InlineKeyboardMarkup(
                [[InlineKeyboardButton("Plan ✓", callback_data="plan")]])
            sent = await bot.send_message(user.id, "<b>Grüße</b> & €29", parse_mode="HTML",
                                          reply_markup=keyboard)
        message = await fake.next_message(user)
    assert me.username == fake.username
    assert sent.message_id == message.message_id
    assert message.text == "Grüße & €29"
    assert message.buttons() == [["Plan ✓"]]


async def test_uploads_go_as_multipart() -> None:
    """A photo uploaded from bytes arrives as a file part with its name and bytes."""
    with FakeTelegram() as fake:
        user = fake.user(43)
        png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
        async with bot_on(fake) as bot:
            await bot.send_photo(user.id, InputFile(png, filename="receipt.png"),
                                 caption="Receipt")
        message = await fake.next_message(user)
        upload = fake.calls("sendPhoto")[0]["photo"]
    assert message.text == "Receipt"
    assert (upload.filename, upload.data) == ("receipt.png", png)


async def test_api_errors_keep_their_meaning() -> None:
    """429, 403 and 400 answers become PTB's RetryAfter, Forbidden and BadRequest."""
    with FakeTelegram() as fake:
        user, blocker = fake.user(44), fake.user(45)
        fake.fail_next("sendMessage", 429, retry_after=7, chat_id=user)
        fake.fail_next("sendMessage", 403, chat_id=blocker)
        async with bot_on(fake) as bot:
            with pytest.raises(RetryAfter) as limited, warnings.catch_warnings():
                # PTB's RetryAfter warns about its own int-or-timedelta change when built
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                await bot.send_message(user.id, "hi")
            with pytest.raises(Forbidden):
                await bot.send_message(blocker.id, "hi")
            with pytest.raises(BadRequest):
                await bot.send_message(user.id, "")
    assert retry_seconds(limited.value) == 7


async def test_a_server_that_does_not_answer_times_out() -> None:
    """A server that accepts the request and never answers raises TimedOut in time."""
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        await reader.read(65536)

    sock = bind("127.0.0.1", 0)
    server = await asyncio.start_server(silent, sock=sock)
    port = sock.getsockname()[1]
    request = AiohttpRequest(read_timeout=0.3)
    await request.initialize()
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimedOut):
            await request.post(f"http://127.0.0.1:{port}/botX/getMe")
        assert asyncio.get_running_loop().time() - started < 3
    finally:
        await request.shutdown()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_nothing_listening_is_a_network_error() -> None:
    """A refused connection raises NetworkError (nothing was sent)."""
    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError):
            await request.post(f"http://127.0.0.1:{port}/botX/getMe")
    finally:
        await request.shutdown()


async def test_it_must_be_initialized_and_can_be_again() -> None:
    """Before initialize it refuses; after shutdown, initialize opens a new session."""
    with FakeTelegram() as fake:
        request = AiohttpRequest()
        with pytest.raises(NetworkError, match="not initialized"):
            await request.post(f"{fake.api_base}{fake.token}/getMe")
        for _ in range(2):
            await request.initialize()
            assert (await request.post(f"{fake.api_base}{fake.token}/getMe"))["id"]
            await request.shutdown()


@contextlib.asynccontextmanager
async def forward_proxy() -> AsyncIterator[tuple[str, list[str]]]:
    """A local HTTP forward proxy that answers every request itself; yields its URL and the
    request lines it received (absolute URIs, as clients write them to a proxy)."""
    lines: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines.append(head.split(b"\r\n", 1)[0].decode())
        length = next((int(h.split(b":", 1)[1]) for h in head.split(b"\r\n")
                       if h.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        body = b'{"ok":true,"result":{"id":1,"is_bot":true,"first_name":"Proxied"}}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    sock = bind("127.0.0.1", 0)
    server = await asyncio.start_server(answer, sock=sock)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", lines
    finally:
        server.close()
        await server.wait_closed()


async def test_the_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP(S)_PROXY sends the Bot API calls through the proxy; NO_PROXY exempts a host."""
    async with forward_proxy() as (proxy, lines):
        monkeypatch.setenv("HTTP_PROXY", proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        request = AiohttpRequest()
        await request.initialize()
        try:
            answer = await request.post("http://api.telegram.example/botX/getMe")
        finally:
            await request.shutdown()
        assert answer["first_name"] == "Proxied"
        assert lines == ["POST http://api.telegram.example/botX/getMe HTTP/1.1"]

        with FakeTelegram() as fake:
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            async with bot_on(fake) as bot:
                assert (await bot.get_me()).username == fake.username
        assert len(lines) == 1  # the exempt host was reached directly
