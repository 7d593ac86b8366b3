"""Drive load at a bot's webhook and time each update until its reply reaches the fake Bot API.

The load is closed-loop: ``concurrency`` workers each own a share of the users and keep
one update in flight, posting the next only once the reply to the last has arrived, so
a user's replies cannot overtake each other and the k-th reply in a chat answers the
k-th update. Latency runs from just before the POST to the moment the fake recorded the
bot's sendMessage (``BotMessage.at``, a perf_counter reading taken in the fake's thread).

The fake, the bot and this driver share one process (and its GIL), so the numbers compare
bots with each other on one machine; they are not what Telegram would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from tests.fakes.telegram import SECRET_HEADER, FakeTelegram
from tests.fakes.telegram_objects import BotMessage, FakeUser
from tests.fakes.telegram_server import serve

__all__ = ["LoadResult", "percentile", "run_load", "serve"]

REPLY_METHODS = frozenset({"sendMessage", "sendPhoto"})


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured."""

    updates: int
    users: int
    concurrency: int
    seconds: float
    updates_per_second: float
    p50_ms: float
    p99_ms: float

    def line(self, name: str) -> str:
        """Return the one-line summary: "name: N updates, X updates/s, p50 Y ms, p99 Z ms"."""
        return (f"{name}: {self.updates} updates, {self.updates_per_second:.0f} updates/s, "
                f"p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms")


def percentile(values: Sequence[float], q: float) -> float:
    """Return the nearest-rank q-th percentile (0 < q <= 100) of values."""
    ordered = sorted(values)
    return ordered[max(math.ceil(q / 100 * len(ordered)) - 1, 0)]


class _Replies:
    """Reply arrival times per chat, fed from the fake's thread into this event loop."""

    def __init__(self, chat_ids: set[int]) -> None:
        self._loop = asyncio.get_running_loop()
        self._chat_ids = chat_ids
        self.times: dict[int, list[float]] = {chat_id: [] for chat_id in chat_ids}
        self._arrived = {chat_id: asyncio.Event() for chat_id in chat_ids}

    def listen(self, message: BotMessage) -> None:
        """Note a reply; runs in the fake's server thread."""
        if message.method in REPLY_METHODS and message.chat_id in self._chat_ids:
            self._loop.call_soon_threadsafe(self._note, message.chat_id, message.at)

    def _note(self, chat_id: int, at: float) -> None:
        self.times[chat_id].append(at)
        self._arrived[chat_id].set()

    async def wait(self, chat_id: int, count: int, timeout: float) -> float:
        """Wait until a chat has count replies; return when the count-th one arrived."""
        async with asyncio.timeout(timeout):
            while len(self.times[chat_id]) < count:
                self._arrived[chat_id].clear()
                await self._arrived[chat_id].wait()
        return self.times[chat_id][count - 1]


async def run_load(
    fake: FakeTelegram,
    webhook_url: str,
    secret: str | None,
    *,
    updates: int = 2000,
    users: int = 100,
    concurrency: int = 8,
    text: str = "hello there",
    first_user_id: int = 700_000_000,
    warmup: int = 50,
    timeout: float = 10.0,
) -> LoadResult:
    """Post updates text messages from users with concurrency in flight; measure the replies.

    The bot must answer every message with exactly one sendMessage or sendPhoto in the same
    chat. About ``warmup`` updates go first and are not measured. Raises TimeoutError when a reply
    takes longer than ``timeout`` seconds and RuntimeError when the webhook refuses an update.
    """
    people = [fake.user(first_user_id + i, first_name=f"User{i}") for i in range(users)]
    concurrency = max(1, min(concurrency, users))
    replies = _Replies({user.id for user in people})
    sent = dict.fromkeys(replies.times, 0)
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    one_connection = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    unsubscribe = fake.on_message(replies.listen)

    async def one(client: httpx.AsyncClient, user: FakeUser) -> float:
        """Post one update and return its latency in seconds."""
        update = fake.make_message_update(user, text)
        sent[user.id] += 1
        started = time.perf_counter()
        response = await client.post(webhook_url, json=update, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"the webhook answered {response.status_code}")
        return await replies.wait(user.id, sent[user.id], timeout) - started

    async def worker(client: httpx.AsyncClient, share: list[FakeUser]) -> list[float]:
        return [await one(client, user) for user in share]

    # update k comes from user k % users; each user belongs to one worker
    shares = [[people[k % users] for k in range(updates) if k % users % concurrency == w]
              for w in range(concurrency)]
    try:
        async with contextlib.AsyncExitStack() as stack:
            # One client (one keep-alive connection) per worker: httpcore scans its whole
            # pool on every request, so one pool of C connections would slow the driver.
            clients = [await stack.enter_async_context(httpx.AsyncClient(
                timeout=timeout, limits=one_connection)) for _ in range(concurrency)]
            # warm up unmeasured: every worker connects and sends a few updates
            rounds = max(1, warmup // concurrency)
            await asyncio.gather(*(worker(client, share[:1] * rounds)
                                   for client, share in zip(clients, shares, strict=True)))
            started = time.perf_counter()
            latencies = [x for share in await asyncio.gather(*map(worker, clients, shares))
                         for x in share]
            seconds = time.perf_counter() - started
    finally:
        unsubscribe()
    return LoadResult(
        updates=updates, users=users, concurrency=concurrency, seconds=seconds,
        updates_per_second=updates / seconds,
        p50_ms=percentile(latencies, 50) * 1000, p99_ms=percentile(latencies, 99) * 1000,
    )
