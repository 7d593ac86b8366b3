"""`portier notices`: delivery states counted, the notices in doubt listed."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import pytest

from billing.db import Database
from billing.models import Notice, utcnow
from bot.cli import main


@pytest.fixture
def env(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The environment `portier notices` reads: only the database."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith(("STRIPE_", "TELEGRAM_", "PORTIER_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", database_url)
    return database_url


async def _add(url: str, *statuses: str) -> None:
    db = Database(url)
    left = utcnow() - timedelta(minutes=5)
    async with db.session() as session:
        for n, status in enumerate(statuses):
            session.add(Notice(dedupe_key=f"plan_changed:sub_{n}:evt_1:telegram:7{n}",
                               channel="telegram", user_id=f"7{n}", chat_id=f"7{n}",
                               kind="plan_changed", params={"amount": 900}, status=status,
                               claimed_at=left if status != "pending" else None))
    await db.close()


async def _portier(*args: str) -> int:
    return await asyncio.to_thread(main, list(args))  # main runs its own event loop


async def test_lists_the_notices_in_doubt(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`--unknown` lists each notice whose delivery is unknown, with its chat and dedupe key,
    and nothing else."""
    await _add(env, "sent", "unknown", "pending", "unknown")
    assert await _portier("notices", "--unknown") == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert lines[0].split() == ["id", "created", "(UTC)", "sent", "(UTC)", "chat", "dedupe",
                                "key"]
    assert [line.split()[-1] for line in lines[1:]] == [
        "plan_changed:sub_1:evt_1:telegram:71", "plan_changed:sub_3:evt_1:telegram:73"]
    assert "telegram:71" in lines[1]
    assert "2 notice(s) may or may not have reached their chat" in captured.err


async def test_says_when_nothing_is_in_doubt(env: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """With no notice in doubt it says so and exits 0; without --unknown it counts states."""
    await _add(env, "sent", "sent", "pending")
    assert await _portier("notices", "--unknown") == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip() == "no notice is in doubt"
    assert await _portier("notices") == 0
    assert capsys.readouterr().out.split() == ["pending", "1", "sent", "2"]


async def test_an_unreadable_database_is_one_line(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A database without Portier's tables is one error line and exit 1."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    assert await _portier("notices", "--unknown") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("portier: cannot read the notices")


def test_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`portier notices --help` names --unknown."""
    with pytest.raises(SystemExit) as exit_info:
        main(["notices", "--help"])
    assert exit_info.value.code == 0
    assert "--unknown" in capsys.readouterr().out
