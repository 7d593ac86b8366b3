"""A real `portier run` SIGKILLed halfway through a broadcast: after a restart every
recipient has it once (SPEC §7: the outbox's crash recovery)."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

from sqlalchemy import insert

from billing import broadcasts
from billing.broadcasts import Segment
from billing.models import ChatLink, utcnow
from tests.bot.test_outbox_crash import Stage, _answers, _rows, _until, portier_run
from tests.bot.test_outbox_crash import stage as stage  # noqa: F401 - the fixture


async def test_sigkill_mid_broadcast_sends_the_rest_once(stage: Stage) -> None:  # noqa: F811
    """Killed after some copies went out, a restarted Portier sends the rest; no chat gets
    it twice (a copy left in the air becomes `unknown`, never sent again) and only such a
    copy may be missing."""
    users = [stage.telegram.user(720_000 + n) for n in range(16)]
    now = utcnow()
    async with stage.db.session() as session:
        await session.execute(insert(ChatLink), [
            {"channel": "telegram", "user_id": str(u.id), "chat_id": str(u.id),
             "customer_id": f"cus_{u.id}", "created_at": now, "updated_at": now}
            for u in users])
        made = await broadcasts.create(session, text="<b>News</b>", kind="service",
                                       segment=Segment())
    telegram = stage.telegram
    with portier_run(stage, "first") as first:
        await _until(stage, lambda: sum(s == 200 for _, s in _answers(telegram)) >= 5, 60,
                     "first copies")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert sum(s == 200 for _, s in _answers(telegram)) < len(users)  # killed halfway
    with portier_run(stage, "second") as second:
        await _until(stage, lambda: len({c for c, s in _answers(telegram) if s == 200})
                     >= len(users) - 4, 60, "the rest of the broadcast")
        await _until_settled(stage, made.id)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    delivered = Counter(c for c, s in _answers(telegram) if s == 200)
    assert all(n == 1 for n in delivered.values()), delivered
    rows = await _rows(stage)
    unknown = {r.chat_id for r in rows if r.status == "unknown"}
    assert {str(u.id) for u in users} - set(delivered) <= unknown
    assert {r.status for r in rows} <= {"sent", "unknown"}


async def _until_settled(stage: Stage, broadcast_id: int) -> None:
    async with asyncio.timeout(60):
        while True:
            async with stage.db.read() as session:
                found = await broadcasts.progress(session, broadcast_id)
            if found is not None and found.finished:
                return
            await asyncio.sleep(0.1)  # polling another process's writes
