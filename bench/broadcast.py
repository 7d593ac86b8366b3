"""Benchmark: a broadcast to 10,000 linked chats at PORTIER_SEND_RATE=200.

Links 10,000 chats to customers in a fresh SQLite database, creates one service broadcast
to all of them (billing.broadcasts: one outbox notice per recipient), starts the outbox with
the real Telegram channel against the fake Bot API (in its own process, bench/outbox.py's
harness) and times from the start until the last copy reached the fake. The ideal is
N / rate seconds; the target is at most 1.02× the ideal, no chat getting it twice and none
getting none.

    python bench/broadcast.py [--recipients 10000] [--rate 200] [--kill]

With --kill the sender runs in a process of its own, is SIGKILLed once half the copies are
sent, and a new one is started (recovering the dead one's notices, as `portier run` does):
the counts must be the same (a copy in the air at the kill becomes `unknown`, never sent
again; it reached the fake or it is lost).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bench.outbox import CATALOG, FIRST_CHAT, _serve_fake  # noqa: E402
from billing import broadcasts  # noqa: E402
from billing.broadcasts import Segment  # noqa: E402
from billing.catalog import PriceBook  # noqa: E402
from billing.db import Database  # noqa: E402
from billing.deliveries import counts  # noqa: E402
from billing.migrate import upgrade  # noqa: E402
from billing.models import ChatLink, utcnow  # noqa: E402
from billing.services import Billing  # noqa: E402
from bot.outbox import Outbox  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from bot.telegram import TelegramChannel  # noqa: E402
from handlers.portal import Portal  # noqa: E402

TARGET = 1.02
TEXT = "<b>Maintenance</b> tonight from 22:00 to 23:00 UTC. <i>Thank you!</i>"


async def bench(recipients: int, rate: int) -> bool:
    """Run the benchmark once; print the figures; return whether it met the target."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    # The fake knows twice as many chats (bench/outbox.py's baseline); only ours are used.
    child = context.Process(target=_serve_fake, args=(theirs, recipients), daemon=True)
    child.start()
    api_base, token = await asyncio.to_thread(ours.recv)
    with tempfile.TemporaryDirectory(prefix="portier-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'broadcast.db'}"
        await asyncio.to_thread(upgrade, url)
        billing = Billing(db=Database(url), gateway=None,  # type: ignore[arg-type]
                          catalog=CATALOG, prices=PriceBook(), link_secret="x" * 16,
                          public_url="http://127.0.0.1")
        settings = load_settings(database_url=url, telegram_bot_token=token,
                                 telegram_api_base=api_base, send_rate=rate)
        portal = Portal(billing)
        channel = TelegramChannel(settings, portal)
        await channel.app.initialize()
        now = utcnow()
        async with billing.db.session() as session:
            await session.execute(insert(ChatLink), [
                {"channel": "telegram", "user_id": str(FIRST_CHAT + n),
                 "chat_id": str(FIRST_CHAT + n), "customer_id": f"cus_{n}",
                 "created_at": now, "updated_at": now} for n in range(recipients)])
        queued = time.time()
        async with billing.db.session() as session:
            made = await broadcasts.create(session, text=TEXT, kind="service",
                                           segment=Segment())
        queue_time = time.time() - queued
        outbox = Outbox(billing, portal, rate=rate)
        outbox.senders["telegram"] = channel.send
        started = time.time()
        await outbox.start()
        await outbox.idle(timeout=3 * recipients / rate + 30)
        await outbox.stop()
        async with billing.db.session() as session:
            states = await counts(session)
            report = await broadcasts.progress(session, made.id)
        await channel.app.shutdown()
        await billing.db.close()
    ours.send("report")
    arrivals, last = await asyncio.to_thread(ours.recv)
    child.join(timeout=10)
    took = last - started
    ideal = recipients / rate
    mine = {c: n for c, n in arrivals.items() if c < FIRST_CHAT + recipients}
    duplicates = sum(n - 1 for n in mine.values() if n > 1)
    lost = recipients - len(mine)
    ratio = took / ideal
    assert report is not None
    print(f"broadcast: {recipients} recipients at PORTIER_SEND_RATE={rate}: {took:.2f} s "
          f"against the ideal {ideal:.2f} s = {ratio:.3f}x (target <= {TARGET}x); "
          f"duplicates {duplicates}, lost {lost}; queued in {queue_time:.2f} s; report: "
          f"{report.delivered} delivered, {report.blocked} blocked, {report.failed} failed, "
          f"{report.skipped} skipped; database {dict(sorted(states.items()))}")
    return (ratio <= TARGET and duplicates == 0 and lost == 0
            and states == {"sent": recipients})


async def _send_all(url: str, api_base: str, token: str, rate: int) -> None:
    """Run an outbox sender until nothing is left to send."""
    billing = Billing(db=Database(url), gateway=None,  # type: ignore[arg-type]
                      catalog=CATALOG, prices=PriceBook(), link_secret="x" * 16,
                      public_url="http://127.0.0.1")
    settings = load_settings(database_url=url, telegram_bot_token=token,
                             telegram_api_base=api_base, send_rate=rate)
    portal = Portal(billing)
    channel = TelegramChannel(settings, portal)
    await channel.app.initialize()
    outbox = Outbox(billing, portal, rate=rate)
    outbox.senders["telegram"] = channel.send
    await outbox.start(recover_all=True)  # a new sender: the last one is dead
    await outbox.idle(timeout=600)
    await outbox.stop()
    await channel.app.shutdown()
    await billing.db.close()


def _sender(url: str, api_base: str, token: str, rate: int) -> None:
    """In a child process: a sender, as `portier run` runs it."""
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(_send_all(url, api_base, token, rate))


async def bench_kill(recipients: int, rate: int) -> bool:
    """Send a broadcast, SIGKILL the sender halfway, restart it; print the figures."""
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    fake = context.Process(target=_serve_fake, args=(theirs, recipients), daemon=True)
    fake.start()
    api_base, token = await asyncio.to_thread(ours.recv)
    with tempfile.TemporaryDirectory(prefix="portier-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'broadcast.db'}"
        await asyncio.to_thread(upgrade, url)
        db = Database(url)
        now = utcnow()
        async with db.session() as session:
            await session.execute(insert(ChatLink), [
                {"channel": "telegram", "user_id": str(FIRST_CHAT + n),
                 "chat_id": str(FIRST_CHAT + n), "customer_id": f"cus_{n}",
                 "created_at": now, "updated_at": now} for n in range(recipients)])
            made = await broadcasts.create(session, text=TEXT, kind="service",
                                           segment=Segment())
        started = time.time()
        first = context.Process(target=_sender, args=(url, api_base, token, rate))
        first.start()
        while True:  # polling the other process's progress
            async with db.read() as session:
                done = await broadcasts.progress(session, made.id)
            if done is not None and done.delivered >= recipients // 2:
                break
            await asyncio.sleep(0.05)
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
        first.join()
        killed_at = time.time() - started
        second = context.Process(target=_sender, args=(url, api_base, token, rate))
        second.start()
        await asyncio.to_thread(second.join)
        async with db.session() as session:
            states = await counts(session)
            report = await broadcasts.progress(session, made.id)
        await db.close()
    ours.send("report")
    arrivals, last = await asyncio.to_thread(ours.recv)
    fake.join(timeout=10)
    took = last - started
    ideal = recipients / rate
    mine = {c: n for c, n in arrivals.items() if c < FIRST_CHAT + recipients}
    duplicates = sum(n - 1 for n in mine.values() if n > 1)
    lost = recipients - len(mine)
    assert report is not None
    print(f"broadcast, sender SIGKILLed at {killed_at:.1f} s and restarted: {recipients} "
          f"recipients at PORTIER_SEND_RATE={rate}: {took:.2f} s against the ideal "
          f"{ideal:.2f} s = {took / ideal:.3f}x (restart included); duplicates {duplicates}, "
          f"lost {lost}; report: {report.delivered} delivered, {report.failed} failed "
          f"(unknown: in the air at the kill); database {dict(sorted(states.items()))}")
    return duplicates == 0 and lost == 0


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--kill", action="store_true",
                        help="SIGKILL the sender halfway and restart it")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    run = bench_kill if args.kill else bench
    ok = asyncio.run(run(args.recipients, args.rate))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
