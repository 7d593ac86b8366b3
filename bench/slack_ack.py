"""Benchmark: a burst of `/billing` slash commands at Portier's Slack app, against a bare Bolt app.

Sends N `/billing` commands (default 200, from 50 users in 10 workspaces) at once to
`POST /slack/events` of `portier run` (Bolt's AsyncApp behind its Starlette adapter, OAuth
installations in Portier's database), each signed as Slack signs it (`v0=` HMAC-SHA256 of
`v0:{timestamp}:{body}`, X-Slack-Request-Timestamp), with the Stripe sandbox answering each
API request after 300 ms. Times each command to its ack (the HTTP answer; Slack allows 3 s)
and to its final answer (the response_url POST or chat.postEphemeral the fake Slack
received), and checks every command was answered exactly once. Then a bare Bolt AsyncApp
behind the same adapter and the same uvicorn set-up, whose `/billing` only acks, gets the
same commands in the same run: its ack is its answer. Prints p50/p99 of both, their ratio,
the Stripe requests made during the burst, and the target (p99 ack <= 300 ms).

`/billing` reads the local mirror, so that burst asks Stripe nothing. A second, smaller burst
does: each workspace's installer submits the seats modal at once, and each submit waits on
Stripe's preview (slowed like the rest); it prints those acks and the time to the preview.

The workspaces come as real ones do: each installed through OAuth (`/slack/install` → Slack's
authorize page → `/slack/oauth_redirect`), its team plan started by its installer with
`/billing` → Start the team plan → the seats modal → Checkout, paid on the hosted page;
then every stored Stripe event processed (Portier's /metrics says none is pending).

Portier, the bare app and the Stripe sandbox each run in their own process, as on their own
machines; this process signs and posts and serves the fake Slack (a thread), whose clock
the answers are timed by. The numbers compare the two apps on one machine; they are not what
Slack would see.

    python bench/slack_ack.py [--commands 200] [--users 50] [--workspaces 10] [--latency 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import socket
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.harness import percentile  # noqa: E402
from bench.webhook_intake import child, free_port, portier_env  # noqa: E402
from tests.fakes.slack import FakeSlack  # noqa: E402
from tests.fakes.slack_driver import USER_AGENT, Delivery, SlackDriver  # noqa: E402
from tests.fakes.slack_objects import FakeWorkspace, SlackMessage, SlackUser  # noqa: E402

STRIPE_KEY = "sk_test_sandbox"
WEBHOOK_SECRET = "whsec_bench_slack"  # noqa: S105 - the local sandbox's own test secret
TARGET_P99_ACK_MS = 300.0
SEATS = 5  # bought per workspace through Checkout
ANSWER_TIMEOUT = 30.0
GRACE = 1.0  # seconds to wait after the last answer for any sent twice
_PENDING = re.compile(r'^portier_stripe_events_stored\{status="pending"\} (\S+)$', re.M)


@dataclass(frozen=True)
class Command:
    """One `/billing` sent and what became of it."""

    user: SlackUser
    delivery: Delivery
    answers: tuple[float, ...]  # perf_counter readings of each answer the fake received

    @property
    def ack(self) -> float:
        """Return seconds from sending to the HTTP answer."""
        return self.delivery.elapsed

    @property
    def answer(self) -> float | None:
        """Return seconds from sending to the first answer, if any came."""
        return self.answers[0] - self.delivery.sent_at if self.answers else None


@dataclass(frozen=True)
class Run:
    """What one burst measured."""

    commands: list[Command]
    stripe_requests: int = 0

    def acks(self) -> list[float]:
        """Return every ack time, in seconds."""
        return [c.ack for c in self.commands]

    def answers(self) -> list[float]:
        """Return every first-answer time, in seconds (commands without one left out)."""
        return [a for c in self.commands if (a := c.answer) is not None]

    def line(self, name: str, answer_note: str = "") -> str:
        """Return "name: N commands, ack p50 … p99 …; final answer p50 … p99 …"."""
        acks, answers = self.acks(), self.answers() or [float("nan")]
        return (f"{name}: {len(self.commands)} commands, ack p50 {ms(percentile(acks, 50))}, "
                f"p99 {ms(percentile(acks, 99))}; final answer{answer_note} "
                f"p50 {ms(percentile(answers, 50))}, p99 {ms(percentile(answers, 99))}")


def ms(seconds: float) -> str:
    """Return seconds as "12.3 ms"."""
    return f"{seconds * 1000:.1f} ms"


class BurstDriver(SlackDriver):
    """The fake Slack's driver, posting over plain keep-alive HTTP/1.1 connections opened
    beforehand, one per command in flight.

    Every request is built and signed as SlackDriver builds and signs it; only the sending
    is lighter. With httpx, sending 200 at once cost this process more than the bare app
    took to ack them: the first ack was read only once the last request was out, so every
    ack looked as slow as the slowest."""

    def __init__(self, slack: FakeSlack, base_url: str) -> None:
        super().__init__(slack, base_url)
        parts = urlsplit(self.events_url)
        self._host, self._port, self._path = parts.hostname or "", parts.port or 80, parts.path
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> BurstDriver:
        return self

    async def connect(self, count: int) -> None:
        """Open connections until `count` are idle."""
        while len(self._idle) < count:
            reader, writer = await asyncio.open_connection(self._host, self._port)
            writer.transport.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._idle.append((reader, writer))

    async def post(self, body: bytes, content_type: str, payload: dict[str, Any], *,
                   timestamp: int | None = None, signature: str | None = None,
                   unsigned: bool = False, headers: dict[str, str] | None = None) -> Delivery:
        """POST a signed body on an idle connection (a new one if none is); time the ack."""
        signed = {} if unsigned else self.sign(body, timestamp)
        if signature is not None:
            signed["X-Slack-Signature"] = signature
        sent = {"Host": f"{self._host}:{self._port}", "Content-Type": content_type,
                "User-Agent": USER_AGENT, "Content-Length": str(len(body)), **signed,
                **(headers or {})}
        head = "".join(f"{k}: {v}\r\n" for k, v in sent.items())
        request = f"POST {self._path} HTTP/1.1\r\n{head}\r\n".encode() + body
        if not self._idle:
            await self.connect(1)
        reader, writer = self._idle.pop()
        started = time.perf_counter()
        writer.write(request)
        status_line = await reader.readline()
        answer_headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        text = (await reader.readexactly(int(answer_headers.get("content-length", "0"))))
        elapsed = time.perf_counter() - started
        if answer_headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self._idle.append((reader, writer))
        return Delivery(int(status_line.split()[1]), text.decode(), answer_headers, elapsed,
                        started, body, content_type, payload)

    async def aclose(self) -> None:
        """Close the connections."""
        for _reader, writer in self._idle:
            writer.close()
        self._idle.clear()


@dataclass
class Slack:
    """The fake Slack and its workspaces; user k belongs to workspace k % workspaces."""

    fake: FakeSlack
    workspaces: list[FakeWorkspace]
    users: list[SlackUser]

    @property
    def installers(self) -> list[SlackUser]:
        """Return the first user of each workspace: the one who installs the app."""
        return self.users[:len(self.workspaces)]


def people(fake: FakeSlack, workspaces: int, users: int) -> Slack:
    """Make the workspaces and their users: the first of each installs the app (and so is
    a team admin), the second is a workspace admin, the others are members."""
    spaces = [fake.workspace(f"team{w}", install=False) for w in range(workspaces)]
    members = [fake.user(spaces[u % workspaces], f"user{u}",
                         is_admin=(u // workspaces == 1), real_name=f"User {u}")
               for u in range(users)]
    return Slack(fake, spaces, members)


def slack_env(folder: Path, fake: FakeSlack, stripe_base: str, port: int) -> dict[str, str]:
    """Return the environment of `portier run` with Slack by OAuth (no Telegram)."""
    env = portier_env(folder, stripe_base, port)
    return env | {
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "PORTIER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PORTIER_SEND_RATE": "1000", "PORTIER_DATA_KEY": Fernet.generate_key().decode(),
        "SLACK_SIGNING_SECRET": fake.signing_secret, "SLACK_CLIENT_ID": fake.client_id,
        "SLACK_CLIENT_SECRET": fake.client_secret, "SLACK_OAUTH_BASE": fake.oauth_base,
        "SLACK_API_BASE": fake.api_base, "PORTIER_LOG_FORMAT": "json"}


@contextlib.contextmanager
def stripe_and_portier(folder: Path, fake: FakeSlack) -> Any:
    """Run the sandbox and `portier run` in their own processes; yield (Portier's URL,
    the sandbox's base)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    fake.redirect_uri = f"{url}/slack/oauth_redirect"
    sandbox = ["-m", "sandbox", "--port", str(free_port()), "--api-key", STRIPE_KEY,
               "--webhook-url", f"{url}/stripe/webhook", "--webhook-secret", WEBHOOK_SECRET]
    with child(sandbox, "STRIPE_API_BASE=") as stripe_base, \
            child(["-m", "bot.cli", "run"], "serving on ",
                  slack_env(folder, fake, stripe_base, port)) as served:
        yield served, stripe_base


async def seed(slack: Slack, driver: SlackDriver, portier_url: str) -> None:
    """Install the app in every workspace through OAuth; each installer starts the team
    plan with /billing and pays Checkout on the hosted page; wait until each workspace is
    linked (the installer's "Team plan started" DM) and no stored Stripe event is pending."""
    fake = slack.fake
    for installer in slack.installers:
        done = await driver.install(installer)
        assert done.status_code == 200, done.text
    async with httpx.AsyncClient(timeout=30) as browser:
        for installer in slack.installers:
            await driver.command(installer)
            offer = await fake.next_ephemeral(installer, timeout=30)
            await driver.press(installer, offer, "Start the team plan")
            modal = await fake.next_view(installer, timeout=30)
            await driver.submit(installer, modal, {"answer": {"value": str(SEATS)}})
            checkout = await fake.next_ephemeral(installer, timeout=30)
            paid = await browser.post(checkout.button("Pay with Stripe")["url"],
                                      data={"payment_method": "pm_card_visa"})
            assert paid.status_code in (200, 303), paid.text
        for installer in slack.installers:
            welcome = await fake.next_message(installer, timeout=30)
            assert "Team plan started" in welcome.content, welcome.content
        deadline = time.monotonic() + 60
        while (pending := await events_pending(browser, portier_url)) > 0:
            assert time.monotonic() < deadline, f"{pending} Stripe events still pending"
            await asyncio.sleep(0.2)


async def shown(fake: FakeSlack, user: SlackUser, since: float, words: str) -> SlackMessage:
    """Wait for a message only `user` sees, shown after `since`, that says `words`."""
    deadline = time.monotonic() + ANSWER_TIMEOUT
    while time.monotonic() < deadline:  # the fake records in its own thread: poll it
        for message in fake.history(f"ephemeral:{user.id}"):
            if message.at >= since and words in message.content:
                return message
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{user.name} was never shown {words!r}")


async def seat_previews(slack: Slack, driver: SlackDriver) -> list[Command]:
    """Each workspace's installer opens the seats modal (/billing → Add or remove seats);
    then all submit one more seat at once. Each submit must be acked before Stripe's
    preview, which the sandbox answers only after its latency; the answer is the preview."""
    fake, modals = slack.fake, []
    for installer in slack.installers:
        since = time.perf_counter()
        await driver.command(installer)
        plan = await shown(fake, installer, since, "seats purchased")
        await driver.press(installer, plan, "Add or remove seats")
        modals.append(await fake.next_view(installer, timeout=30))
    started = time.perf_counter()
    deliveries = await asyncio.gather(*(
        driver.submit(installer, modal, {"answer": {"value": str(SEATS + 1)}})
        for installer, modal in zip(slack.installers, modals, strict=True)))
    previews = await asyncio.gather(*(shown(fake, installer, started, "prorated")
                                      for installer in slack.installers))
    return [Command(u, d, (p.at,)) for u, d, p in
            zip(slack.installers, deliveries, previews, strict=True)]


async def events_pending(http: httpx.AsyncClient, portier_url: str) -> float:
    """Return how many stored Stripe events Portier has yet to process (its /metrics)."""
    found = _PENDING.search((await http.get(f"{portier_url}/metrics")).text)
    return float(found.group(1)) if found else 0.0


async def burst(slack: Slack, driver: SlackDriver, count: int, *,
                answered: bool = True) -> list[Command]:
    """Send `count` `/billing` at once (command k from user k % users); wait for each
    one's answer (response_url or chat.postEphemeral) unless the ack is the answer."""
    senders = [slack.users[k % len(slack.users)] for k in range(count)]
    started = time.perf_counter()
    deliveries = await asyncio.gather(*(driver.command(user) for user in senders))
    for delivery in deliveries:
        if delivery.status != 200:
            raise RuntimeError(f"/slack/events answered {delivery.status}: {delivery.text}")
    if not answered:
        return [Command(u, d, (d.sent_at + d.elapsed,))
                for u, d in zip(senders, deliveries, strict=True)]
    deadline = time.monotonic() + ANSWER_TIMEOUT
    # The fake records answers in its own thread; like its waiting helpers, poll it.
    while sum(1 for a in answers(slack.fake, senders, deliveries, started) if a) < count \
            and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    await asyncio.sleep(GRACE)
    got = answers(slack.fake, senders, deliveries, started)
    return [Command(u, d, a) for u, d, a in zip(senders, deliveries, got, strict=True)]


def answers(fake: FakeSlack, senders: list[SlackUser], deliveries: list[Delivery],
            since: float) -> list[tuple[float, ...]]:
    """Return, per command, when each of its answers arrived: the posts to its
    response_url, then the user's chat.postEphemeral messages since the burst, shared out
    in order among that user's commands that got no post (an ephemeral names no command)."""
    posted: dict[str, list[float]] = {}
    for post in fake.responses():
        if post.status == 200:
            posted.setdefault(post.url, []).append(post.at)
    found = [tuple(posted.get(d.response_url or "", ())) for d in deliveries]
    for user_id in dict.fromkeys(user.id for user in senders):
        extra = [m.at for m in fake.history(f"ephemeral:{user_id}")
                 if m.method == "chat.postEphemeral" and m.at >= since]
        theirs = [k for k, who in enumerate(senders) if who.id == user_id]
        for k in theirs:
            if not found[k] and extra:
                found[k] = (extra.pop(0),)
        if extra:  # more than one per command: count them on the user's last command
            found[theirs[-1]] += tuple(extra)
    return found


def serve_bare(port: int, signing_secret: str, token: str, api_base: str) -> None:
    """Serve the baseline: a bare Bolt AsyncApp behind the same Starlette adapter and
    uvicorn set-up as Portier's, whose `/billing` only acks."""
    import uvicorn
    from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from bot.service import bind

    app = AsyncApp(client=AsyncWebClient(token=token, base_url=api_base),
                   signing_secret=signing_secret, process_before_response=False)

    @app.command("/billing")
    async def billing(ack: Any) -> None:
        await ack()

    handler = AsyncSlackRequestHandler(app)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    web = Starlette(routes=[Route("/slack/events", events, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(web, log_config=None, lifespan="off",
                                           access_log=False, timeout_graceful_shutdown=5))
    sock = bind("127.0.0.1", port)
    sock.listen(2048)  # accepting before uvicorn starts: "baseline on" means ready
    print(f"baseline on http://127.0.0.1:{port}", flush=True)
    server.run(sockets=[sock])


async def count_requests(stripe_base: str) -> int:
    """Return how many Stripe API requests the sandbox process has served."""
    async with httpx.AsyncClient() as client:
        return int((await client.get(f"{stripe_base}/_sandbox/requests")).json()["count"])


async def set_latency(stripe_base: str, seconds: float) -> None:
    """Make the sandbox answer each API request after `seconds`."""
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{stripe_base}/_sandbox/latency", json={"seconds": seconds})
        answer.raise_for_status()


async def portier_burst(slack: Slack, url: str, stripe_base: str, commands: int,
                        latency: float) -> tuple[Run, Run]:
    """Seed the workspaces, warm Portier up, then burst it with Stripe slowed down: the
    `/billing` commands, then one seats-modal submit per workspace (which asks Stripe)."""
    async with BurstDriver(slack.fake, url) as driver:
        await seed(slack, driver, url)
        await burst(slack, driver, len(slack.workspaces))  # warm-up, not measured
        await driver.connect(commands)
        await set_latency(stripe_base, latency)
        before = await count_requests(stripe_base)
        measured = await burst(slack, driver, commands)
        after = await count_requests(stripe_base)
        previews = await seat_previews(slack, driver)
        return (Run(measured, after - before),
                Run(previews, await count_requests(stripe_base) - after))


async def bare_burst(slack: Slack, url: str, commands: int) -> Run:
    """Warm the bare app up, then burst it with the same commands."""
    async with BurstDriver(slack.fake, url) as driver:
        await burst(slack, driver, len(slack.workspaces), answered=False)
        await driver.connect(commands)
        return Run(await burst(slack, driver, commands, answered=False))


def measure(commands: int, users: int, workspaces: int,
            latency: float) -> tuple[Run, Run, Run]:
    """Run Portier's bursts, then the bare app's with the same users and commands."""
    with tempfile.TemporaryDirectory() as tmp, FakeSlack() as fake:
        slack = people(fake, workspaces, users)
        with stripe_and_portier(Path(tmp), fake) as (url, stripe_base):
            ours, previews = asyncio.run(portier_burst(slack, url, stripe_base, commands,
                                                       latency))
        token = slack.workspaces[0].bot_token
        assert token is not None
        port = free_port()
        bare = [str(Path(__file__)), "--serve-bare", str(port), "--signing-secret",
                fake.signing_secret, "--token", token, "--api-base", fake.api_base]
        with child(bare, "baseline on ", dict(os.environ)) as url:
            theirs = asyncio.run(bare_burst(slack, url, commands))
    return ours, previews, theirs


def main(argv: list[str] | None = None) -> None:
    """Run both bursts and print their figures, the ratio and the checks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--workspaces", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.3,
                        help="seconds the Stripe sandbox takes to answer each request")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--signing-secret", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--api-base", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare, args.signing_secret, args.token, args.api_base)
        return
    if args.users < 2 * args.workspaces:
        parser.error("--users must be at least 2 per workspace (an installer and a member)")
    ours, previews, bare = measure(args.commands, args.users, args.workspaces, args.latency)
    print(ours.line(f"portier /billing ({args.users} users in {args.workspaces} workspaces, "
                    f"Stripe after {args.latency * 1000:.0f} ms)"))
    print(bare.line("bare Bolt app, ack only", " (its ack)"))
    print(previews.line("portier seats-modal submits (one per workspace, at once)",
                        " (Stripe's preview)").replace(" commands,", " submits,") +
          f"; Stripe requests {previews.stripe_requests}")
    ack50, ack99 = (percentile(ours.acks(), q) for q in (50, 99))
    base50, base99 = (percentile(bare.acks(), q) for q in (50, 99))
    print(f"ratio: portier/bare ack p50 {ack50 / base50:.2f}x, p99 {ack99 / base99:.2f}x; "
          f"target p99 ack <= {TARGET_P99_ACK_MS:.0f} ms "
          f"({'met' if ack99 * 1000 <= TARGET_P99_ACK_MS else 'missed'}); Stripe requests "
          f"during the burst {ours.stripe_requests} "
          f"({ours.stripe_requests / args.commands:.2f} per command)")
    once = sum(1 for c in ours.commands if len(c.answers) == 1)
    more = sum(1 for c in ours.commands if len(c.answers) > 1)
    missing = sum(1 for c in ours.commands if not c.answers)
    print(f"answered: {once} of {args.commands} exactly once, {more} more than once, "
          f"{missing} missing")


if __name__ == "__main__":
    main()
