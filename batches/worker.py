"""The sync worker: pushes due batches with bounded concurrency and pulls accounts on schedule,
until told to stop. `manage.py sync_worker` runs one; several may share one PostgreSQL."""

import logging
import queue
import threading

from django.conf import settings
from django.db import connections

from batches import sync
from portal.models import Clients

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, concurrency: int = 4, *, once: bool = False) -> None:
        """`once`: push whatever is due, until nothing is, then return (no pulls)."""
        self.concurrency = concurrency
        self.poll_interval = settings.SYNC_POLL_INTERVAL
        self.once = once
        self.stopping = threading.Event()
        self._work: queue.Queue[sync.Claim | None] = queue.Queue()
        self._attempts: queue.Queue[sync.Attempt | None] = queue.Queue()
        self._done: queue.Queue[None] = queue.Queue()

    def stop(self) -> None:
        """Claim nothing more; run() returns once the attempts in flight are recorded."""
        self.stopping.set()

    def run(self) -> None:
        log.info("sync worker: pushing with concurrency %d", self.concurrency)
        pushers = [
            threading.Thread(target=self._pusher, name=f"push-{n}") for n in range(self.concurrency)
        ]
        # Pushers only talk to Isometric; one thread writes what came of it, so a pusher goes
        # on to its next batch at once and the database has one writer of outcomes.
        recorder = threading.Thread(target=self._recorder, name="record")
        for thread in [*pushers, recorder]:
            thread.start()
        if not self.once:
            # A daemon: stopping does not wait for a long pull. Each page is written in its own
            # transaction, so a pull cut short leaves nothing half-done.
            threading.Thread(target=self._puller, name="pull", daemon=True).start()
        try:
            self._feed()
        finally:
            self.stopping.set()
            for _ in pushers:
                self._work.put(None)
            for thread in pushers:
                thread.join()
            self._attempts.put(None)
            recorder.join()
            connections.close_all()
        log.info("sync worker: stopped")

    def _feed(self) -> None:
        # Claims are made a round ahead, so a pusher that finishes finds its next batch waiting,
        # and a round at a time, so a claim's transaction is shared by several batches.
        ahead = 2 * self.concurrency
        in_flight = 0
        while not self.stopping.is_set():
            claims = sync.claim_due(ahead - in_flight) if in_flight <= self.concurrency else []
            for claim in claims:
                self._work.put(claim)
            in_flight += len(claims)
            if self.once and not in_flight:
                return
            try:
                self._done.get(timeout=self.poll_interval)
            except queue.Empty:
                continue
            in_flight -= 1
            while not self._done.empty():
                self._done.get()
                in_flight -= 1

    def _pusher(self) -> None:
        clients = Clients()
        try:
            while (claim := self._work.get()) is not None:
                try:
                    if self.stopping.is_set():
                        sync.release(claim)
                        self._done.put(None)
                    else:
                        self._attempts.put(sync.send(claim, clients))
                except Exception:
                    # The claim's lease runs out and the batch is tried again.
                    log.exception("sync worker: pushing batch %s failed", claim.batch.pk)
                    self._done.put(None)
        finally:
            clients.close()
            connections.close_all()

    def _recorder(self) -> None:
        try:
            while (attempt := self._attempts.get()) is not None:
                try:
                    attempt.save()
                except Exception:
                    log.exception("sync worker: recording batch %s failed", attempt.batch.pk)
                finally:
                    self._done.put(None)
        finally:
            connections.close_all()

    def _puller(self) -> None:
        while not self.stopping.wait(self.poll_interval):
            try:
                sync.pull_due()
            except Exception:
                log.exception("sync worker: pulling failed")
