"""`portier demo` and `portier sandbox`: offline, in-process, driven by a script."""

from __future__ import annotations

import asyncio
import io
import re
import tempfile
from pathlib import Path

import httpx
import pytest

from bot.cli import main
from bot.demo import run_demo
from bot.sandbox_cmd import serve_sandbox

# stripe 16.1's HTTPXClient posts `data=<str>`, which httpx 0.28 deprecates (see tests/sandbox).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning")

SUBSCRIBE = """\
/start
# See plans, then Basic monthly, then Pay with Stripe
1
1
1
/plan
/invoices
/card
1
"""


async def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> str:
    """Run the demo on a script with a hostile environment; return what it printed."""
    # The demo must ignore whatever the environment configures for `portier run`.
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:ABCdef")
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:9")
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    path = tmp_path / "script.txt"
    path.write_text(script, encoding="utf-8")
    out = io.StringIO()
    await asyncio.wait_for(run_demo(script=str(path), out=out), timeout=60)
    assert list(temp.iterdir()) == [], "the demo leaves its temporary folder behind"
    return out.getvalue()


def answers(text: str, typed: str) -> list[str]:
    """Return what was printed after each input line `typed`, up to the next input."""
    found = []
    for exchange in text.split("you › ")[1:]:
        line, _, printed = exchange.partition("\n")
        if line == typed:
            found.append(printed)
    return found


async def test_subscribe_see_plan_invoices_and_card(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A customer subscribes through Checkout, is welcomed, sees plan, invoice and card link."""
    shown = await demo(tmp_path, monkeypatch, SUBSCRIBE)
    assert shown.startswith("Portier demo")
    assert "/start" in shown and ":time +31d" in shown and ":quit" in shown
    assert "bot › Welcome to Acme Cloud\n" in shown
    checkout = shown.split("pressed “Pay with Stripe”", 1)[1].split("you › /plan", 1)[0]
    assert "Paid on Stripe Checkout with Visa 4242" in checkout
    assert "bot › Welcome to Acme Cloud!" in checkout  # the notice, before the next line
    assert "You are subscribed to Basic (€9.00 per month)." in checkout
    [plan] = answers(shown, "/plan")
    assert "bot › Basic" in plan and "€9.00 per month" in plan
    assert "Status: Active" in plan and "Renews on " in plan
    assert "Card: Visa •••• 4242" in plan
    [invoices] = answers(shown, "/invoices")
    assert len(re.findall(r"€9\.00 · Paid", invoices)) == 1
    assert "Open" not in invoices
    [card] = answers(shown, "/card")
    assert "[1] Update card ↗ (link)" in card
    assert "Saved Visa 4242 as the card on Stripe's billing portal." in answers(shown, "1")[-1]
    assert shown.rstrip().endswith("Bye: the sandbox and the demo's data are gone.")


async def test_fail_a_renewal_and_recover(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With a declining card the renewal fails; paying the hosted invoice recovers."""
    script = SUBSCRIBE + "/card\n1 decline\n:time +31d\n/plan\n/invoices\n2\n/plan\n"
    shown = await demo(tmp_path, monkeypatch, script)
    assert "Saved Visa 0341" in answers(shown, "1 decline")[0]
    assert "Stripe's clock moved 31d ahead" in answers(shown, ":time +31d")[0]
    _, past_due, recovered = answers(shown, "/plan")
    assert "Past due: the last payment failed" in past_due
    invoices = answers(shown, "/invoices")[1]
    assert "€9.00 · Open" in invoices and "[1] Pay €9.00 now" in invoices
    assert "[2] Invoice " in invoices
    assert "Paid the invoice with Visa 4242." in answers(shown, "2")[0]
    assert "Status: Active" in recovered and "Card: Visa •••• 0341" in recovered


def test_demo_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`portier demo --help` explains the command and exits 0."""
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--help"])
    assert exited.value.code == 0
    assert "--script" in capsys.readouterr().out


class Printed(io.StringIO):
    """Captured output that says when a line ending the banner was written."""

    def __init__(self) -> None:
        super().__init__()
        self.banner = asyncio.Event()

    def write(self, text: str) -> int:
        if "Ctrl-C" in text:
            self.banner.set()
        return super().write(text)


async def test_sandbox_command_serves_until_stopped() -> None:
    """`portier sandbox` serves the demo catalog and prints what to configure."""
    out, stop = Printed(), asyncio.Event()
    task = asyncio.create_task(serve_sandbox("127.0.0.1", 0, out=out, stop=stop))
    await asyncio.wait_for(out.banner.wait(), timeout=10)
    printed = out.getvalue()
    base = re.search(r"STRIPE_API_BASE=(\S+)", printed)
    assert base and "STRIPE_SECRET_KEY=sk_test_sandbox" in printed
    assert "STRIPE_WEBHOOK_SECRET=whsec_" in printed
    async with httpx.AsyncClient() as client:
        prices = await client.get(f"{base.group(1)}/v1/prices",
                                  params={"lookup_keys[]": "pro_monthly"},
                                  headers={"Authorization": "Bearer sk_test_sandbox"})
    assert prices.json()["data"][0]["unit_amount"] == 2900
    stop.set()
    await asyncio.wait_for(task, timeout=10)
