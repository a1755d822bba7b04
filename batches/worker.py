"""The sync worker: pushes due batches with bounded concurrency, pulls accounts on schedule (a
few at once), checks and imports uploaded spreadsheets and emails notifications, until told to
stop. `manage.py sync_worker` runs one; several may share one PostgreSQL."""

import contextlib
import logging
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from django.conf import settings
from django.db import connections

import notifications.services
from batches import imports, sync
from portal.models import Clients
from portal.pace import AccountPace

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, concurrency: int = 4, *, once: bool = False) -> None:
        """`once`: push whatever is due, until nothing is, then return (no pulls)."""
        self.concurrency = concurrency
        self.poll_interval = settings.SYNC_POLL_INTERVAL
        self.once = once
        self.stopping = threading.Event()
        # Claims are made a round ahead, so a push that ends finds its next batch waiting, and
        # a round at a time, so a claim's transaction is shared by several batches.
        self.ahead = 2 * concurrency
        # Places among the pushes at once. A task gives its place to the next as soon as
        # Isometric has answered, and records the outcome after: the pushes at once are never
        # kept waiting on the database.
        self._sending = threading.BoundedSemaphore(concurrency)
        # Each pusher thread's Isometric clients (a requests session is not to be shared).
        self._local = threading.local()

    def stop(self) -> None:
        """Claim nothing more; run() returns once the pushes in flight are recorded and the
        claims not yet sent are released."""
        self.stopping.set()

    def run(self) -> None:
        log.info("sync worker: pushing with concurrency %d", self.concurrency)
        if not self.once:
            # Daemons: stopping does not wait for a long pull or import. Each page or chunk is
            # written in its own transaction, so one cut short leaves nothing half-done, and
            # its lease lets another worker take it up. (A digest cut short is lost, never
            # sent twice.)
            for n in range(settings.SYNC_PULL_CONCURRENCY):
                threading.Thread(target=self._puller, name=f"pull-{n}", daemon=True).start()
            threading.Thread(target=self._importer, name="import", daemon=True).start()
            threading.Thread(target=self._notifier, name="notify", daemon=True).start()
        in_flight: set[Future[None]] = set()
        # A thread for each claim in flight, so that every claim's task has started (and
        # releases its claim itself if the worker stops before it is sent).
        with ThreadPoolExecutor(
            self.ahead, thread_name_prefix="push", initializer=self._start_pusher
        ) as pushers:
            try:
                self._claim_and_push(pushers, in_flight)
            finally:
                self.stopping.set()
                wait(in_flight)
                self._close_pushers(pushers)
        connections.close_all()
        log.info("sync worker: stopped")

    def _claim_and_push(self, pushers: ThreadPoolExecutor, in_flight: set[Future[None]]) -> None:
        while not self.stopping.is_set():
            if len(in_flight) <= self.concurrency:
                for claim in sync.claim_due(self.ahead - len(in_flight)):
                    in_flight.add(pushers.submit(self._push, claim))
            if not in_flight:
                if self.once:
                    return
                self.stopping.wait(self.poll_interval)
                continue
            done, _ = wait(in_flight, timeout=self.poll_interval, return_when=FIRST_COMPLETED)
            in_flight -= done

    def _start_pusher(self) -> None:
        self._local.clients = Clients(pace=AccountPace)

    def _push(self, claim: sync.Claim) -> None:
        """A pusher's task: send the batch once it has a place, then record what came of it."""
        try:
            with self._sending:
                if self.stopping.is_set():
                    sync.release(claim)  # due again at once, for any worker
                    return
                sent = sync.send(claim, self._local.clients)
            sent.record()
        except Exception:
            # The outcome could not be recorded: the lease runs out and the batch is tried again.
            log.exception("sync worker: pushing batch %s failed", claim.batch.pk)

    def _close_pushers(self, pushers: ThreadPoolExecutor) -> None:
        """Close each pusher thread's clients and database connection, which only that thread
        may do: a task for each, held at a barrier until all have started, so that every thread
        takes one. (Should one not, the barrier gives up: what it left open closes with it.)"""
        barrier = threading.Barrier(self.ahead, timeout=5)

        def close() -> None:
            self._local.clients.close()
            connections.close_all()
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait()

        wait([pushers.submit(close) for _ in range(self.ahead)])

    def _importer(self) -> None:
        while not self.stopping.wait(self.poll_interval):
            try:
                while imports.process_due() and not self.stopping.is_set():
                    pass
            except Exception:
                log.exception("sync worker: importing failed")
        # Stopped: its database session ends with it, for a worker run within a process (tests).
        connections.close_all()

    def _notifier(self) -> None:
        while not self.stopping.wait(settings.NOTIFICATIONS_INTERVAL):
            try:
                notifications.services.send_due()
            except Exception:
                log.exception("sync worker: notifying failed")
        connections.close_all()

    def _puller(self) -> None:
        """One of the worker's pullers: while accounts are due, pull the most overdue."""
        while not self.stopping.wait(self.poll_interval):
            try:
                while sync.pull_next_due() and not self.stopping.is_set():
                    pass
            except Exception:
                log.exception("sync worker: pulling failed")
        connections.close_all()
