"""The outbox senders in a process of their own, started and supervised by the daemon.

Fetching (parse, SQL) and sending (SMTP) are both Python work: in one process they take turns
on one GIL, and a backlog keeps one core busy while the other waits. Under `mailer run` the
senders of every office therefore run in a child process (multiprocessing, spawn) with their
own database connection; the outbox protocol is the same as in one process (outbox.py), so a
stop loses nothing and sends nothing twice, and a crash loses nothing and sends at most one
mail twice per SMTP connection:

- the child dies with the daemon: on Linux the kernel kills it when its parent dies
  (PR_SET_PDEATHSIG), so a daemon killed with SIGKILL leaves no sender running behind it, as
  if both had been one process; elsewhere, and as a second guard, the end of the pipe from the
  parent stops it;
- a clean stop (SIGTERM/SIGINT of the daemon) asks the child over the pipe and waits for it;
  each sender finishes the mail in flight and records it, as in one process;
- the daemon wakes an office's sender by sending the office code down the pipe when a mailbox
  thread has committed an acknowledgement;
- if the child exits on its own, the daemon logs why and starts another after a pause; the new
  one puts back what the old one left `sending` (OutboxSender.resume), as after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Awaitable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from mailer import log
from mailer.clock import Clock
from mailer.delivery.outbox import OutboxSender
from mailer.settings import Settings
from storage import db

logger = log.get(__name__)
_RESTART_PAUSE_S = 1.0
_STOP_TIMEOUT_S = 60.0
_PR_SET_PDEATHSIG = 1
_SENDER_CHECKPOINT_PAGES = 4000


class SenderProcess:
    """The child process that sends every office's outbox; supervised by `run`."""

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings, self.clock = settings, clock
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self.ready = threading.Event()  # set once a child has said it is ready to send

    def wake(self, office_code: str) -> None:
        """Tell the sender of an office that mail was queued (call from the event loop thread)."""
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send(office_code)

    def _start(self) -> BaseProcess:
        parent, child = self._ctx.Pipe()
        # Never block the event loop on a child that does not read: a wake-up that does not fit
        # is dropped (the sender also looks for due mail every few seconds on its own).
        os.set_blocking(parent.fileno(), False)
        proc = self._ctx.Process(
            target=child_main, args=(self.settings, self.clock, child), name="pst-outbox", daemon=False
        )
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        logger.info("sender_process_started", pid=proc.pid)
        return proc

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the child running until `stop` is set, then stop it cleanly; never raises."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                proc = self._start()
            except Exception as exc:  # e.g. out of processes or memory: try again later
                logger.error("sender_process_not_started", reason=f"{type(exc).__name__}: {exc}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=_RESTART_PAUSE_S)
                continue
            exited = asyncio.Event()
            loop.add_reader(proc.sentinel, exited.set)
            assert self._conn is not None
            conn = self._conn
            loop.add_reader(conn.fileno(), self._child_said, conn)
            try:
                await _first(stop.wait(), exited.wait())
            finally:
                loop.remove_reader(proc.sentinel)
                loop.remove_reader(conn.fileno())
            if stop.is_set():
                break
            proc.join()
            self.ready.clear()
            logger.error(
                "sender_process_exited", pid=proc.pid, exitcode=proc.exitcode, restart_in_s=_RESTART_PAUSE_S
            )
            self._close_pipe()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=_RESTART_PAUSE_S)
        await asyncio.to_thread(self._stop_child)

    def _child_said(self, conn: Connection) -> None:
        try:
            while conn.poll():
                if conn.recv() == "ready":
                    self.ready.set()
        except BlockingIOError:  # the rest of a message is still on its way
            return
        except (EOFError, OSError):  # the child is gone: stop listening (the sentinel says so too)
            asyncio.get_running_loop().remove_reader(conn.fileno())

    def _stop_child(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send(None)  # None: stop after the mails in flight
        proc.join(_STOP_TIMEOUT_S)
        if proc.is_alive():
            logger.error("sender_process_stuck", pid=proc.pid, action="terminated")
            proc.terminate()
            proc.join()
        self._close_pipe()
        self._proc = None

    def _close_pipe(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


async def _first(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


# --- in the child --------------------------------------------------------------------------


def child_main(settings: Settings, clock: Clock, conn: Connection) -> None:
    """Entry point of the sender process."""
    _die_with_parent()
    log.configure(settings.log_format, settings.log_level)
    asyncio.run(_serve(settings, clock, conn))


def _die_with_parent() -> None:
    """Linux: the kernel sends us SIGKILL when the daemon dies, however it dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


async def _serve(settings: Settings, clock: Clock, conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):  # a terminal's Ctrl-C reaches both processes
        loop.add_signal_handler(sig, stop.set)
    # The daemon migrated the database before starting us. Our commits are tiny and many (one per
    # mail); left to the daemon's larger ones, the WAL checkpoints cost less (B2 of the backlog
    # bench: ~8 % less sender CPU). Alone, we still checkpoint, past 4,000 pages (16 MB).
    engine = db.make_engine(settings.database_url, checkpoint_pages=_SENDER_CHECKPOINT_PAGES)
    senders = {
        o.code: OutboxSender(o, settings.outbox, engine, clock, settings.acknowledgement.quiet_hours)
        for o in settings.offices
    }

    def readable() -> None:
        try:
            while conn.poll():
                code = conn.recv()
                if code is None:
                    stop.set()
                elif code in senders:
                    senders[code].wake.set()
        except (EOFError, OSError):  # the daemon is gone: stop at once
            stop.set()
            loop.remove_reader(conn.fileno())

    loop.add_reader(conn.fileno(), readable)
    logger.info("sender_process_ready", offices=list(senders))
    with contextlib.suppress(OSError):
        conn.send("ready")
    try:
        await asyncio.gather(*(s.run(stop) for s in senders.values()))
    finally:
        engine.dispose()
