"""The console channel: replies as terminal text, typed lines as portal calls."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from billing.migrate import upgrade
from bot.console import Console, render, script_lines, stdin_lines
from bot.console_sandbox import parse_duration
from bot.demo import CATALOG, demo_settings
from bot.runtime import build_billing
from handlers.portal import Portal
from handlers.replies import Button, Reply, rows
from sandbox import Sandbox, SandboxServer, seed_demo_catalog

# stripe 16.1's HTTPXClient posts `data=<str>`, which httpx 0.28 deprecates (see tests/sandbox).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning")

API_KEY = "sk_test_console"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The Stripe sandbox with the demo catalog, served on 127.0.0.1."""
    sb = Sandbox(api_key=API_KEY, webhook_secret="whsec_console")
    server = SandboxServer(sb)
    server.start()
    seed_demo_catalog(sb)
    yield sb
    server.stop()


@pytest.fixture
async def chat(sandbox: Sandbox, tmp_path: Path) -> AsyncIterator[Console]:
    """A console chat over a real Portal: the demo catalog, SQLite, the sandbox."""
    (tmp_path / "catalog.toml").write_text(CATALOG, encoding="utf-8")
    settings = demo_settings(tmp_path, stripe_url=sandbox.public_url,
                             portier_url="http://127.0.0.1:9", api_key=API_KEY,
                             webhook_secret="whsec_console")
    await asyncio.to_thread(upgrade, settings.database_url)
    billing = await build_billing(settings)
    console = Console(Portal(billing), out=io.StringIO(), sandbox_url=sandbox.public_url)
    yield console
    await console.aclose()
    await billing.gateway.close()
    await billing.db.close()


def output(console: Console) -> str:
    """Return everything the console printed so far, and start afresh."""
    out = console.out
    assert isinstance(out, io.StringIO)
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


async def lines(*typed: str) -> AsyncIterator[str]:
    """Yield typed lines like a script."""
    for line in typed:
        yield line


def test_render_numbers_buttons_and_marks_links() -> None:
    """It shows the title, then the text, then every button numbered across rows."""
    reply = Reply("Line one\nLine two", title="Plans",
                  buttons=((Button("Basic", action="buy:basic:month"),
                            Button("Pro", action="buy:pro:month")),
                           (Button("Pay with Stripe", url="https://example.test/pay"),)))
    assert render(reply).splitlines() == [
        "bot › Plans",
        "      Line one",
        "      Line two",
        "        [1] Basic",
        "        [2] Pro",
        "        [3] Pay with Stripe ↗ (link)",
    ]


def test_render_hints() -> None:
    """A bold title uses ANSI only when asked; a question says an answer is expected."""
    reply = Reply("Paste the link.", title="Connect", expect_text=True)
    assert render(reply, bold=True).startswith("bot › \033[1mConnect\033[0m")
    assert render(reply).endswith("(type your answer)")
    assert render(Reply("", toast="Paid")) == "bot › Paid"


@pytest.mark.parametrize(("text", "seconds"), [
    ("+30d", 30 * 86400), ("1y", 365 * 86400), ("+12h", 12 * 3600), ("7", 7 * 86400),
    ("+2w", 14 * 86400), ("soon", None), ("-3d", None), ("", None),
])
def test_parse_duration(text: str, seconds: int | None) -> None:
    """It reads `:time` amounts: a number with an optional + and unit, days by default."""
    assert parse_duration(text) == seconds


async def test_commands_numbers_and_text(chat: Console) -> None:
    """/commands go to the portal, numbers press the latest buttons, text is free text."""
    await chat.handle("/start")
    shown = output(chat)
    assert "bot › Welcome to Acme Cloud" in shown
    assert "[1] See plans" in shown and "[2] Connect my subscription" in shown
    await chat.handle("1")
    shown = output(chat)
    assert "pressed “See plans”" in shown
    assert "bot › Plans" in shown and "[4] Pro · €290.00 per year" in shown
    await chat.handle("9")
    assert "There is no button 9 here." in output(chat)
    await chat.handle("hello there")
    assert "Please use the buttons or a command." in output(chat)
    await chat.handle("/nonsense")
    assert "I don't know that command." in output(chat)


async def test_number_answers_a_question(chat: Console) -> None:
    """When the bot asks for text, a number is the answer, not a button press."""
    await chat.handle("/start")
    await chat.handle("2")  # Connect my subscription
    assert "(type your answer)" in output(chat)
    await chat.handle("12345")
    assert "That link is not valid" in output(chat)


async def test_checkout_completes_as_a_test_card_customer(chat: Console,
                                                          sandbox: Sandbox) -> None:
    """A Checkout link is paid on the sandbox's page; `1 fail` pays with a declining card."""
    for line in ("/start", "1", "1"):
        await chat.handle(line)
    assert "[1] Pay with Stripe ↗ (link)" in output(chat)
    await chat.handle("1 fail")
    assert "Stripe's page says: Your card was declined." in output(chat)
    await chat.handle("1")
    shown = output(chat)
    assert "Paid on Stripe Checkout with Visa 4242" in shown
    subscriptions = sandbox.store.all("subscription", lambda s: s["status"] == "active")
    assert len(subscriptions) == 1


async def test_other_links_are_printed(chat: Console) -> None:
    """A URL that is not a sandbox page is printed for the user to open."""
    chat.show([Reply("Talk to us", buttons=rows(Button("Help", url="https://acme.example/help")))])
    await chat.handle("1")
    assert "Open in your browser: https://acme.example/help" in output(chat)


async def test_notice_becomes_the_message_to_press(chat: Console) -> None:
    """A pushed notice is printed at once and its buttons are what numbers press."""
    await chat.send("demo", Reply("You are subscribed.", title="Welcome!",
                                  buttons=rows(Button("My plan", action="help"))))
    assert "bot › Welcome!" in output(chat)
    await chat.handle("1")
    assert "What I can do" in output(chat)


async def test_helpers(chat: Console, sandbox: Sandbox) -> None:
    """:time moves the sandbox's clock, :card lists test cards, :quit ends the chat."""
    before = sandbox.now()
    await chat.run(lines(":time +2d", ":time soon", ":card", ":help", ":quit", "/start"))
    shown = output(chat)
    assert sandbox.now() - before >= 2 * 86400
    assert "Stripe's clock moved 2d ahead" in shown
    assert "Say how far to move the clock" in shown
    assert "decline" in shown and "pm_card_visa_chargeDeclined" in shown
    assert "/invoices" in shown
    assert "Welcome to Acme Cloud" not in shown  # nothing is read after :quit


async def test_line_sources(tmp_path: Path) -> None:
    """Scripts skip blanks and comments; stdin lines end at end of file."""
    script = tmp_path / "script.txt"
    script.write_text("/start\n\n# press See plans\n1\n", encoding="utf-8")
    assert [line async for line in script_lines(script)] == ["/start", "1"]
    typed = io.StringIO("/start\n2 decline\n")
    read = [line async for line in stdin_lines(typed)]
    assert read == ["/start", "2 decline"]


async def test_notice_while_waiting_for_input(chat: Console) -> None:
    """A notice arriving at the prompt is printed on its own lines, then the prompt again."""
    typed: asyncio.Queue[str | None] = asyncio.Queue()

    async def keyboard() -> AsyncIterator[str]:
        while (line := await typed.get()) is not None:
            yield line

    running = asyncio.create_task(chat.run(keyboard(), echo=False))
    await asyncio.sleep(0)  # let the console print its prompt and wait
    await chat.send("demo", Reply("Your payment went through.", title="Paid"))
    await typed.put(None)
    await asyncio.wait_for(running, timeout=5)
    assert output(chat) == "you › \nbot › Paid\n      Your payment went through.\nyou › \n"


async def test_a_failing_line_does_not_end_the_chat(chat: Console) -> None:
    """An unexpected error is logged and reported; the next line is still handled."""
    await chat.aclose()  # the sandbox can no longer be reached: :time fails
    await chat.run(lines(":time +1d", "/help"))
    shown = output(chat)
    assert "That did not work" in shown and "What I can do" in shown
