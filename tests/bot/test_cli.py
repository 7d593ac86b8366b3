"""The `portier` command line: one clear line and a non-zero exit on errors."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from sandbox import Sandbox, SandboxServer
from tests.world import CATALOG, STRIPE_KEY

COMMANDS = [["run"], ["demo"], ["sandbox"], ["db", "upgrade"], ["catalog", "check"], ["link"]]


@pytest.fixture
def stripe_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """Environment pointing at a seeded sandbox, a catalog file and a SQLite database."""
    sandbox = Sandbox(api_key=STRIPE_KEY)
    server = SandboxServer(sandbox)
    base = server.start()
    sandbox.seed_demo_catalog()
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith(("STRIPE_", "TELEGRAM_", "PORTIER_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STRIPE_SECRET_KEY", STRIPE_KEY)
    monkeypatch.setenv("STRIPE_API_BASE", base)
    monkeypatch.setenv("PORTIER_CATALOG", str(catalog))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'portier.db'}")
    yield sandbox
    server.stop()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Every command answers --help and exits 0."""
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: portier" in capsys.readouterr().out


def test_catalog_check_prints_the_plans(stripe_env: Sandbox,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`catalog check` resolves every lookup key and prints plans with prices."""
    assert main(["catalog", "check"]) == 0
    out = capsys.readouterr().out
    assert "Acme Cloud: 2 plan(s)" in out
    assert "pro_yearly" in out and "€290.00" in out and "team_seat_monthly" in out


def test_catalog_check_names_an_unknown_key(stripe_env: Sandbox, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown lookup key is one error line naming it."""
    (tmp_path / "catalog.toml").write_text(CATALOG.replace("pro_yearly", "pro_forever"))
    assert main(["catalog", "check"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["portier: unknown price lookup key(s): pro_forever"]


def test_link_prints_a_token_and_refuses_unknown_customers(
        stripe_env: Sandbox, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """`link` mints a single-use token for a known customer and names an unknown one."""
    monkeypatch.setenv("PORTIER_LINK_SECRET", "a-long-enough-link-secret")
    assert main(["db", "upgrade"]) == 0
    customer = stripe_env.create_customer(email="ada@example.com")
    assert main(["link", customer["id"]]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert 20 <= len(token) <= 64
    assert main(["link", "cus_nobody"]) == 1
    assert capsys.readouterr().err.strip() == "portier: cus_nobody: Stripe has no such customer"
    assert main(["link", "--slack", customer["id"]]) == 0
    command = capsys.readouterr().out.strip().splitlines()[-1]
    assert command.startswith("/billing connect ") and 20 <= len(command.split()[-1]) <= 64


def test_run_names_each_missing_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`run` without Stripe keys stops at once with one line per missing setting."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith(("STRIPE_", "TELEGRAM_", "PORTIER_"))]:
        monkeypatch.delenv(name)
    assert main(["run"]) == 1
    err = capsys.readouterr().err
    assert "STRIPE_SECRET_KEY" in err and "STRIPE_WEBHOOK_SECRET" in err
    assert all(line.startswith("portier: ") for line in err.strip().splitlines())


def test_malformed_setting_is_one_line(tmp_path: Path) -> None:
    """A malformed setting is reported by the installed console script in one line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PORTIER_"))}
    env["PORTIER_PORT"] = "eighty"
    done = subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "portier: PORTIER_PORT: expected an integer 1-65535, got 'eighty'"]
