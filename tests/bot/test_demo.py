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


TEAM = """\
:as
:as slack-admin
/billing
# Start the team plan: a modal asks for the seats; free text is not a number
1
lots
3
# Pay with Stripe: Checkout with quantity 3, then the team_welcome DM
1
/billing
# Add or remove seats → 5 → the preview → Confirm
1
5
1
/plan
hello
:as slack-member
/billing
# Request a seat, then once more: the second request changes nothing
1
/billing
1
:as slack-admin
# The seat request's DM: Approve
1
/billing
:home
:as slack-member
/billing
:as telegram
/start
"""


def exchanges(text: str) -> list[tuple[str, str]]:
    """Split a transcript into (typed line, what was printed after it), any persona."""
    parts = re.split(r"^you(?: \(([a-z-]+)\))? › (.*)$", text, flags=re.MULTILINE)
    return [(f"{who or 'telegram'}: {typed}", printed)
            for who, typed, printed in zip(parts[1::3], parts[2::3], parts[3::3], strict=True)]


async def test_a_slack_team_buys_seats_and_approves_a_request(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the Slack admin: start the team plan through Checkout with 3 seats, go to 5 with a
    preview; as the member: request a seat (once); the admin's DM waits for them, Approve
    assigns it and the member's DM waits for the member; Telegram is unchanged."""
    shown = await demo(tmp_path, monkeypatch, TEAM)
    assert ":as slack-admin" in shown.split("you › ", 1)[0]  # the banner says how
    said = exchanges(shown)
    typed = [line for line, _ in said]
    assert typed[:3] == ["telegram: :as", "telegram: :as slack-admin", "slack-admin: /billing"]
    [(_, people), (_, switched), (_, empty), (_, asked), (_, wrong), (_, pay), (_, paid),
     (_, plan), (_, seats), (_, previewed), (_, done), (_, plan_cmd), (_, free_text),
     *rest] = said
    assert "*telegram" in people and "slack-admin   Ada Admin, a workspace admin" in people
    assert "You are slack-admin now" in switched
    assert "slack › only visible to you" in empty and "[1] Start the team plan" in empty
    assert "modal “Seats”" in asked and "start with (from 1 to 500)?" in asked
    assert "modal “Billing”" in wrong and "That is not a number of seats." in wrong
    assert "3 seats: pay with Stripe" in pay and "[1] Pay with Stripe ↗ (link)" in pay
    assert "Paid on Stripe Checkout with Visa 4242 for 3 × Team — €8.00 / month" in paid
    assert "slack › DM from Portier" in paid and "Team plan started" in paid
    assert "3 seats purchased, 0 assigned." in plan and "Next invoice: €24.00." in plan
    assert "The team has 3 seats. How many should it have" in seats
    assert re.search(r"From 3 to 5 seats: €1[56]\.\d\d prorated on your next invoice, then "
                     r"€40\.00 per month\.", previewed)
    assert "[1] Confirm" in previewed and "[2] Keep as is" in previewed
    assert "Done: the team now has 5 seats." in done
    assert "/plan is not a valid command" in plan_cmd
    assert "In Slack this app reads no messages" in free_text
    (_, _), (_, member), (_, requested), (_, again), (_, twice), (_, inbox), (_, approved), \
        (_, after), (_, home), (_, told), (_, seated), (_, _), (_, start) = rest
    assert "You don't hold a seat" in member and "[1] Request a seat" in member
    assert "Your request for a seat went to the billing admins." in requested
    assert "[to slack-admin] a new message: “Seat request”" in requested
    assert "Request a seat" in again
    assert "already with the billing admins" in twice and "[to slack-admin]" not in twice
    assert "1 new message(s) for you" in inbox and "slack › DM from Portier" in inbox
    assert "Max Member asks for a seat of the team plan." in inbox
    assert "[1] Approve   [2] Deny" in inbox
    assert "Approved: the member now holds a seat." in approved
    assert "[to slack-member] a new message: “Your request was approved" in approved
    assert "5 seats purchased, 1 assigned." in after
    assert "slack › App Home" in home and "5 seats purchased, 1 assigned." in home
    assert "Your request was approved: you now hold a seat" in told
    assert "You hold a seat of your team's plan." in seated
    assert "bot › Welcome to Acme Cloud" in start and "[1] See plans" in start
    assert typed[-1] == "telegram: /start"


TEAM_TOOLS = """\
:as slack-admin
/billing
1
2
1
# Billing channel: #general (the app is not in it), then #billing
/billing
6
general
/billing
6
billing
# Assign a seat: the user picker takes a typed name
/billing
2
slack-member
# Billing admins: someone not of the workspace
/billing
7
1
U0NOBODY
# Max becomes a billing admin: the team's notices (a card update) reach him too
/billing
7
1
max
/billing
4
1
:as slack-member
"""


async def test_a_slack_admin_sets_the_billing_channel_and_assigns_a_seat(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Channel and user pickers are modals answered by a typed name: a channel without the
    app is refused, #billing gets the audit lines, Max gets a seat and a DM; a user id of
    no one in the workspace cannot become a billing admin, Max can, and then the team's
    notices (a card update) reach him as well as Ada."""
    answers = dict(exchanges(await demo(tmp_path, monkeypatch, TEAM_TOOLS)))  # the last of each
    assert "▾ (pick a channel: type billing" in answers["slack-admin: 6"]
    assert "▾ (pick a person: type slack-member" in answers["slack-admin: 2"]
    assert "I can't post in that channel." in answers["slack-admin: general"]
    channel = answers["slack-admin: billing"]
    assert "slack › in #billing" in channel and "made this the billing channel" in channel
    assigned = answers["slack-admin: slack-member"]
    assert "Max Member now holds a seat (1 of 2 assigned)." in assigned
    assert "[to slack-member] a new message:" in assigned and "slack › in #billing" in assigned
    assert "Only members of this workspace can be billing admins" in answers[
        "slack-admin: U0NOBODY"]
    assert "Max Member is now a billing admin." in answers["slack-admin: max"]
    card = answers["slack-admin: 1"]  # the Update card link, opened
    assert "Saved Visa 4242 as the card" in card and "slack › DM from Portier" in card
    assert "[to slack-member] a new message: “Card updated" in card
    member = answers["slack-admin: :as slack-member"]
    assert "gave you a seat" in member and "made you a billing admin" in member
    assert member.count("slack › in #billing") == 2  # the channel's posts, seen by Max too
    assert member.count("Card updated") == 1


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
