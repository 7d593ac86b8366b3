"""A real `portier run` SIGKILLed while Telegram answers 429: no notice lost (SPEC §7)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from billing.db import Database
from billing.models import Notice
from billing.notices import add_many
from sandbox import Sandbox, SandboxServer
from tests.fakes.telegram import FakeTelegram
from tests.fakes.telegram_objects import FakeUser
from tests.world import CATALOG, STRIPE_KEY, WEBHOOK_SECRET

RETRY_AFTER_WARNING = pytest.mark.filterwarnings(
    "ignore::telegram.warnings.PTBDeprecationWarning")  # PTB 22 warns building RetryAfter
ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"amount": 2900, "currency": "eur", "reason": "insufficient_funds",
          "invoice": "in_1"}
RATE = 4  # a low flood limit: the storm meets notices waiting for their turn


@dataclass
class Stage:
    """A sandbox, a fake Telegram, a database and the environment `portier run` reads."""

    telegram: FakeTelegram
    db: Database
    env: dict[str, str]
    logs: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def stage(database_url: str, tmp_path: Path) -> AsyncIterator[Stage]:
    """Everything `portier run` talks to, on 127.0.0.1, and the environment pointing at it."""
    sandbox = Sandbox(api_key=STRIPE_KEY, webhook_secret=WEBHOOK_SECRET)
    box = SandboxServer(sandbox)
    stripe_base = box.start()
    sandbox.seed_demo_catalog()
    telegram = FakeTelegram()
    telegram.start()
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG, encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STRIPE_", "TELEGRAM_", "PORTIER_", "SLACK_"))}
    env.update(DATABASE_URL=database_url, STRIPE_SECRET_KEY=STRIPE_KEY,
               STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET, STRIPE_API_BASE=stripe_base,
               TELEGRAM_BOT_TOKEN=telegram.token, TELEGRAM_API_BASE=telegram.api_base,
               PORTIER_LINK_SECRET="a-long-enough-link-secret", PORTIER_CATALOG=str(catalog),
               PORTIER_SEND_RATE=str(RATE), PYTHONPATH=str(ROOT))
    db = Database(database_url)
    try:
        yield Stage(telegram=telegram, db=db, env=env, logs=tmp_path)
    finally:
        await db.close()
        telegram.stop()
        box.stop()


@contextmanager
def portier_run(stage: Stage, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """Run `portier run` in its own process (killed at the end if still running); in webhook
    mode, so that replicas do not compete for getUpdates."""
    port = _free_port()
    env = dict(stage.env, PORTIER_PORT=str(port),
               TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
               TELEGRAM_WEBHOOK_SECRET="tg-webhook-secret-123")
    with (stage.logs / f"{name}.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env,
                                   cwd=stage.logs, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


async def _queue(stage: Stage, users: list[FakeUser], kind: str = "payment_failed") -> None:
    async with stage.db.session() as session:
        await add_many(session, [
            {"dedupe_key": f"{kind}:in_{u.id}:evt_1:telegram:{u.id}", "channel": "telegram",
             "user_id": str(u.id), "chat_id": str(u.id), "kind": kind, "params": PARAMS}
            for u in users])


async def _rows(stage: Stage) -> list[Notice]:
    async with stage.db.session() as session:
        return list(await session.scalars(select(Notice).order_by(Notice.id)))


def _answers(telegram: FakeTelegram) -> list[tuple[str, int]]:
    return [(str(c.params.get("chat_id")), c.status) for c in telegram.call_log
            if c.method == "sendMessage"]


async def _until(stage: Stage, check: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait until check() is true (polling: the fake and another process have no events)."""
    try:
        async with asyncio.timeout(timeout):
            while not check():  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    except TimeoutError:
        logs = "\n".join(f"{log.name}: ...{log.read_text(errors='replace')[-3000:]}"
                         for log in sorted(stage.logs.glob("*.log")))
        raise AssertionError(f"no {what} within {timeout} s\n{logs}") from None


async def _kill_during_storm(stage: Stage, *, before_storm: Callable[[], None] = lambda: None
                             ) -> int:
    """Start `portier run`, let some notices out, start a 429 storm, SIGKILL it mid-storm;
    return how many notices it left `sending` (the requests in the air)."""
    telegram = stage.telegram
    with portier_run(stage, "first") as first:
        await _until(stage, lambda: sum(s == 200 for _, s in _answers(telegram)) >= 3, 60,
                     "first notices")
        before_storm()
        telegram.fail_next("sendMessage", 429, retry_after=1, times=10)
        start = len(_answers(telegram))
        await _until(stage, lambda: sum(s == 429 for _, s in _answers(telegram)[start:]) >= 5, 30,
                     "storm")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    rows = await _rows(stage)
    assert {r.status for r in rows} <= {"sent", "pending", "sending"}
    sending = [r.chat_id for r in rows if r.status == "sending"]
    # `sending` is a request in flight (at most MIN_IN_FLIGHT at this rate) or one answered
    # whose outcome the killed process had not recorded yet (its chat got an answer).
    answered = {chat for chat, _ in _answers(telegram)}
    assert sum(chat not in answered for chat in sending) <= 4, sending
    return len(sending)


@RETRY_AFTER_WARNING
async def test_sigkill_during_a_429_storm_loses_no_payment_notice(stage: Stage) -> None:
    """Portier SIGKILLed while Telegram answers 429: notices waiting for their turn (or for
    retry_after) are pending, not `sending`; after a restart every recipient has the payment
    notice, and only a notice whose request was in the air at the kill may come twice."""
    users = [stage.telegram.user(700_000 + n) for n in range(12)]
    await _queue(stage, users)
    in_air = await _kill_during_storm(stage)
    with portier_run(stage, "second") as second:
        await _until(stage, lambda: {c for c, s in _answers(stage.telegram) if s == 200}
                     >= {str(u.id) for u in users}, 60, "notice for every recipient")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    delivered = Counter(c for c, s in _answers(stage.telegram) if s == 200)
    assert set(delivered) == {str(u.id) for u in users}
    assert sum(n - 1 for n in delivered.values()) <= in_air
    assert {r.status for r in await _rows(stage)} == {"sent"}


@RETRY_AFTER_WARNING
async def test_two_replicas_one_killed_mid_storm_the_survivor_sends_the_rest(
        stage: Stage) -> None:
    """Two replicas on one PostgreSQL database; the one sending is SIGKILLed during a 429
    storm: the survivor takes over and every recipient gets the notice, twice at most for a
    request that was in the air."""
    if not stage.env["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("replicas share PostgreSQL (SQLite serves one process)")
    users = [stage.telegram.user(710_000 + n) for n in range(16)]
    await _queue(stage, users)
    with contextlib.ExitStack() as replicas:
        survivor: list[subprocess.Popen[bytes]] = []

        def start_survivor() -> None:  # once the first leads and sends: it waits for the lock
            survivor.append(replicas.enter_context(portier_run(stage, "survivor")))

        in_air = await _kill_during_storm(stage, before_storm=start_survivor)
        await _until(stage, lambda: {c for c, s in _answers(stage.telegram) if s == 200}
                     >= {str(u.id) for u in users}, 60, "notice for every recipient")
        survivor[0].send_signal(signal.SIGTERM)
        assert survivor[0].wait(timeout=30) == 0
    delivered = Counter(c for c, s in _answers(stage.telegram) if s == 200)
    assert set(delivered) == {str(u.id) for u in users}
    assert sum(n - 1 for n in delivered.values()) <= in_air
    assert {r.status for r in await _rows(stage)} == {"sent"}
