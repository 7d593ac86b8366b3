"""Everything `portier run` serves, started and stopped together in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn

from billing.catalog import Catalog, PriceBook
from bot.channels import Channel, Editing
from bot.outbox import Outbox
from bot.progress import ProgressEditor
from bot.runtime import Runtime, build_billing
from bot.scheduler import Scheduler
from bot.server import Server
from bot.settings import Settings
from bot.telegram import TelegramChannel
from bot.worker import Worker
from handlers.portal import Portal


@dataclass
class Service:
    """The running server, worker and channels."""

    runtime: Runtime
    worker: Worker
    server: Server
    channels: list[Channel]
    url: str
    outbox: Outbox | None = None
    scheduler: Scheduler | None = None
    progress: ProgressEditor | None = None

    def channel(self, name: str) -> Channel | None:
        """Return the running channel of that name, if it is on."""
        return next((c for c in self.channels if c.name == name), None)

    async def attach(self, channel: Channel) -> None:
        """Start a channel made after the service (one without routes, such as the demo's
        console) and deliver its notices; stopped with the service."""
        await channel.start()
        _deliver_through(self.worker, channel, self.progress)
        self.channels.append(channel)


def _deliver_through(worker: Worker, channel: Channel,
                     progress: ProgressEditor | None = None) -> None:
    worker.senders[channel.name] = channel.send
    if worker.outbox is not None:
        worker.outbox.pace.pacing[channel.name] = channel.pacing
    if progress is not None and isinstance(channel, Editing):
        progress.channels[channel.name] = channel


def channels_for(settings: Settings, portal: Portal) -> list[Channel]:
    """Build the channels the settings turn on."""
    channels: list[Channel] = []
    if settings.telegram_enabled:
        channels.append(TelegramChannel(settings, portal))
    if settings.slack_enabled:  # one workspace (SLACK_BOT_TOKEN) or many (OAuth)
        from bot.slack import SlackChannel  # slack_bolt is imported only when Slack is on

        channels.append(SlackChannel(settings, portal))
    return channels


def bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket up front, so port 0 gives a known port before start."""
    # IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off only on sockets
    # whose proto says TCP. With it on, a response written as headers then body waited for
    # the client's delayed ACK, 40 ms a request.
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                         socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


@contextlib.asynccontextmanager
async def running(settings: Settings, *, sock: socket.socket | None = None,
                  catalog: Catalog | None = None, prices: PriceBook | None = None,
                  worker_interval: float = 5.0) -> AsyncIterator[Service]:
    """Start the HTTP server, the event worker and the configured channels; stop them after."""
    billing = await build_billing(settings, catalog=catalog, prices=prices)
    portal = Portal(billing, default_locale=settings.locale, admins={
        "telegram": {str(admin) for admin in settings.telegram_admin_ids}})
    runtime = Runtime(settings=settings, billing=billing, portal=portal)
    outbox = Outbox(billing, portal, rate=settings.send_rate)
    worker = Worker(billing, portal, interval=worker_interval, outbox=outbox)
    progress = ProgressEditor(billing, portal, every=settings.progress_every)
    scheduler = Scheduler(billing, outbox=outbox, worker=worker, progress=progress,
                          broadcasts_every=settings.progress_every)
    channels = channels_for(settings, portal)
    server = Server(runtime, worker, channels)
    sock = sock or bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    # A request still running at shutdown gets a few seconds, then is cancelled: uvicorn's
    # default waits for it forever, and a stop must not hang on one stuck delivery.
    http = uvicorn.Server(uvicorn.Config(server.app, log_config=None, lifespan="off",
                                         access_log=False, timeout_graceful_shutdown=5))
    serving = asyncio.create_task(http.serve(sockets=[sock]), name="portier-http")
    try:
        while not http.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)
        for channel in channels:
            await channel.start()
            _deliver_through(worker, channel, progress)
        worker.start()
        await scheduler.start()  # the leader also starts the outbox sender
        # Everything built so far (modules, engines, the bot, the catalog) lives as long as the
        # process: frozen, the collector's full passes skip it. Unfrozen, each full pass walked
        # it all and stopped the event loop for some 60 ms, every few seconds under load.
        # Collected first, so that no garbage is frozen with it.
        gc.collect()
        gc.freeze()
        yield Service(runtime=runtime, worker=worker, server=server, channels=channels,
                      url=f"http://{host}:{port}", outbox=outbox, scheduler=scheduler,
                      progress=progress)
    finally:
        # The HTTP server stops first, so that the requests it still serves find the worker
        # and the channels they hand their work to running.
        http.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        await scheduler.stop()
        await worker.stop()
        for channel in reversed(channels):
            await channel.stop()
        await runtime.close()
