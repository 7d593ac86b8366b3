"""One body limit for every route: 413 past it, on a connection that stays usable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from billing.models import LinkToken, StripeEvent
from bot.limits import MAX_BODY
from tests.world import API_KEY, TELEGRAM_SECRET, World

ROUTES = [("POST", "/stripe/webhook"), ("POST", "/telegram/webhook"),
          ("POST", "/api/link-tokens"), ("GET", "/healthz"), ("GET", "/metrics"),
          ("GET", "/return"), ("POST", "/nowhere")]
HEADERS = {"Authorization": f"Bearer {API_KEY}",
           "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Stripe-Signature": "t=1,v1=0"}


async def _nothing_stored(world: World) -> None:
    async with world.service.runtime.billing.db.session() as session:
        for model in (StripeEvent, LinkToken):
            assert await session.scalar(select(func.count()).select_from(model)) == 0


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_refuses_a_body_over_the_limit(
        world: World, method: str, path: str, caplog: pytest.LogCaptureFixture) -> None:
    """A 1 MB body gets 413 on any route, with a log line that names no secret; nothing is
    stored or sent and the service stays healthy."""
    caplog.set_level(logging.INFO)
    response = await world.http.request(method, f"{world.url}{path}", content=b"x" * 1_000_000,
                                        headers=HEADERS)
    assert response.status_code == 413
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "request body refused" in logged
    assert API_KEY not in logged and TELEGRAM_SECRET not in logged
    await _nothing_stored(world)
    assert world.telegram.calls("sendMessage") == []
    assert (await world.http.get(f"{world.url}/healthz")).status_code == 200


async def test_a_chunked_body_is_counted_as_it_arrives(world: World) -> None:
    """A body sent in chunks, with no Content-Length, gets 413 once it passes the limit."""
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"x" * 32 * 1024  # 1.25 MiB in all

    response = await world.http.post(f"{world.url}/api/link-tokens", content=chunks(),
                                     headers=HEADERS)
    assert response.status_code == 413
    assert "content-length" not in response.request.headers
    await _nothing_stored(world)
    assert (await world.http.get(f"{world.url}/healthz")).status_code == 200


async def test_a_body_at_the_limit_reaches_the_route(world: World) -> None:
    """A body of exactly the limit, chunked or not, is handed to the route whole (here: a
    malformed link request, 422)."""
    body = b"{" + b" " * (MAX_BODY - 2) + b"}"

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 100_000):
            yield body[start:start + 100_000]

    url = f"{world.url}/api/link-tokens"
    assert (await world.http.post(url, content=body, headers=HEADERS)).status_code == 422
    assert (await world.http.post(url, content=chunks(), headers=HEADERS)).status_code == 422


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":", 1)[1]) for line in head.lower().split(b"\r\n")
                  if line.startswith(b"content-length:"))
    return status, await asyncio.wait_for(reader.readexactly(length), timeout=10)


@pytest.mark.parametrize("declared", [True, False])
async def test_the_connection_stays_usable_after_a_413(world: World, declared: bool) -> None:
    """After the 413 the same connection serves the next request: the client that was still
    sending its body reads the answer, not a reset."""
    address = urlsplit(world.url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        size = 1_000_000
        if declared:
            writer.write(b"POST /api/link-tokens HTTP/1.1\r\nHost: portier\r\n"
                         b"Content-Length: %d\r\n\r\n" % size + b"x" * size)
        else:
            chunk = b"x" * 50_000
            writer.write(b"POST /api/link-tokens HTTP/1.1\r\nHost: portier\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n"
                         + (b"%x\r\n%s\r\n" % (len(chunk), chunk)) * (size // len(chunk))
                         + b"0\r\n\r\n")
        await writer.drain()
        status, _ = await _response(reader)
        assert status == 413
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: portier\r\n\r\n")
        await writer.drain()
        status, body = await _response(reader)
        assert status == 200 and b"ok" in body
    finally:
        writer.close()
