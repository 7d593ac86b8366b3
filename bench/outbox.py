"""Benchmark: the outbox sends 5,000 notices to 5,000 chats at PORTIER_SEND_RATE=200.

Queues the notices in a fresh SQLite database, starts the outbox with the real Telegram
channel (python-telegram-bot with its AIORateLimiter) against the fake Bot API, and times
from the start until the last message reached the fake. The ideal is N / rate seconds (the
rate limit is the bottleneck by design); the target is at most 1.05× the ideal, with no
chat getting a notice twice and none getting none.

The fake Bot API runs in its own process, as Telegram would be on another machine: sharing
Portier's interpreter (and its GIL) would bill the fake's work to the outbox.

    python bench/outbox.py [--notices 5000] [--rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from telegram.error import NetworkError  # noqa: E402

from billing.catalog import PriceBook, parse_catalog  # noqa: E402
from billing.db import Database  # noqa: E402
from billing.deliveries import counts  # noqa: E402
from billing.migrate import upgrade  # noqa: E402
from billing.notices import add_many  # noqa: E402
from billing.services import Billing  # noqa: E402
from bot.outbox import Outbox  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.telegram import TelegramChannel  # noqa: E402
from handlers.portal import Portal  # noqa: E402
from handlers.replies import Button, Reply, rows  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.fakes.telegram_objects import BotMessage  # noqa: E402
from tests.fakes.telegram_state import TelegramState  # noqa: E402

FIRST_CHAT = 800_000_000
TARGET = 1.05
PARAMS = {"plan": "Pro", "amount": 2900, "currency": "eur", "interval": "month"}
CATALOG = parse_catalog({"business": {"name": "Acme"},
                         "plans": [{"key": "pro", "name": "Pro", "prices": ["pro_monthly"]}]})


def _index_chats() -> None:
    """Look chats up by id in O(1): the fake scans every chat it knows on each call, which
    with 10,000 chats would make the fake, not the outbox, the bottleneck."""
    scan = TelegramState.chat

    def chat(self: TelegramState, chat_id: int | str) -> dict[str, Any]:
        with contextlib.suppress(TypeError, ValueError), self.lock:
            found = self.chats.get(int(chat_id))
            if found is not None:
                return found
        return scan(self, chat_id)

    TelegramState.chat = chat  # type: ignore[method-assign]


def _serve_fake(conn: Connection, notices: int) -> None:
    """In a child process: serve the fake Bot API, record arrivals, report them when asked."""
    _index_chats()
    fake = FakeTelegram()
    arrivals: Counter[int] = Counter()
    last = [0.0]  # when the outbox's last message arrived

    def arrived(message: BotMessage) -> None:  # the fake's thread
        arrivals[message.chat_id] += 1
        if message.chat_id < FIRST_CHAT + notices:  # not the baseline's, which come after
            last[0] = time.time()

    fake.on_message(arrived)
    for n in range(2 * notices):  # the outbox's chats, then the baseline's
        fake.user(FIRST_CHAT + n)
    conn.send((fake.start(), fake.token))
    conn.recv()  # "report"
    conn.send((dict(arrivals), last[0]))
    fake.stop()


async def bench(notices: int, rate: int) -> bool:
    """Run the benchmark once; print the figures; return whether it met the target."""
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=_serve_fake, args=(theirs, notices), daemon=True)
    child.start()
    api_base, token = await asyncio.to_thread(ours.recv)
    with tempfile.TemporaryDirectory(prefix="portier-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'outbox.db'}"
        await asyncio.to_thread(upgrade, url)
        billing = Billing(db=Database(url), gateway=None,  # type: ignore[arg-type]
                          catalog=CATALOG, prices=PriceBook(), link_secret="x" * 16,
                          public_url="http://127.0.0.1")
        settings = load_settings(database_url=url, telegram_bot_token=token,
                                 telegram_api_base=api_base, send_rate=rate)
        portal = Portal(billing)
        channel = TelegramChannel(settings, portal)
        await channel.app.initialize()
        async with billing.db.session() as session:
            await add_many(session, [
                {"dedupe_key": f"plan_changed:sub_{n}:evt_1", "channel": "telegram",
                 "user_id": str(FIRST_CHAT + n), "chat_id": str(FIRST_CHAT + n),
                 "kind": "plan_changed", "params": PARAMS} for n in range(notices)])
        outbox = Outbox(billing, portal, rate=rate)
        outbox.senders["telegram"] = channel.send
        started = time.time()
        cpu0 = time.process_time()
        await outbox.start()
        await outbox.idle(timeout=3 * notices / rate + 30)
        cpu = time.process_time() - cpu0
        await outbox.stop()
        async with billing.db.session() as session:
            states = await counts(session)
        baseline = await _baseline(channel, notices)
        await channel.app.shutdown()
        await billing.db.close()
    ours.send("report")
    arrivals, last = await asyncio.to_thread(ours.recv)
    child.join(timeout=10)
    took = last - started
    ideal = notices / rate
    mine = {c: n for c, n in arrivals.items() if c < FIRST_CHAT + notices}
    duplicates = sum(n - 1 for n in mine.values() if n > 1)
    lost = notices - len(mine)
    ratio = took / ideal
    print(f"outbox: {notices} notices to {notices} chats at PORTIER_SEND_RATE={rate}: "
          f"{took:.2f} s against the ideal {ideal:.2f} s = {ratio:.3f}x (target <= {TARGET}x); "
          f"duplicates {duplicates}, lost {lost}; database {dict(sorted(states.items()))}; "
          f"{1000 * cpu / notices:.1f} ms CPU a notice")
    print(f"baseline (same run): the same {notices} messages through the same bot and "
          f"AIORateLimiter, no outbox: {baseline:.2f} s = {baseline / ideal:.3f}x the ideal; "
          f"outbox / baseline = {took / baseline:.3f}x")
    return ratio <= TARGET and duplicates == 0 and lost == 0 and states == {"sent": notices}


async def _baseline(channel: TelegramChannel, notices: int) -> float:
    """Send as many messages through the same bot and limiter, with no outbox around them."""
    gate = asyncio.Semaphore(Outbox(channel.portal.billing, channel.portal,
                                    rate=channel.settings.send_rate)._max_in_flight)
    # The very message the outbox sends (text, title and its "My plan" button).
    reply = Reply("Your subscription is now Pro at €29.00 per month.", title="Plan changed",
                  buttons=rows(Button("My plan", action="plan")), private=True)

    async def one(n: int) -> None:
        async with gate:
            for attempt in range(3):  # a pooled connection the server closed meanwhile
                try:
                    await channel.send(str(FIRST_CHAT + notices + n), reply)
                    return
                except NetworkError:
                    if attempt == 2:
                        raise

    started = time.time()
    await asyncio.gather(*(one(n) for n in range(notices)))
    return time.time() - started


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=200)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ok = asyncio.run(bench(args.notices, args.rate))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
