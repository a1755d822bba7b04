"""Push: every batch reaches Isometric exactly once.

The protocol of one attempt: look the batch up first if an earlier attempt may have stored it,
post it, and on a conflict look it up again. send() makes it and writes nothing: it answers
with the outcome (batches.sync.queue), which Sent.record() has the queue record under the
worker's claim. push() does both.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from batches.models import AttemptOutcome, ProductionBatch, is_isometric_id
from batches.sync.queue import Claim, Outcome, Paused, Refused, Retry, Synced, record
from isometric.client import Client
from isometric.errors import (
    AuthenticationFailed,
    Conflict,
    IsometricError,
    MalformedResponse,
    RateLimited,
    ServerError,
    TransportError,
    ValidationFailed,
)
from isometric.models import ProductionBatch as RemoteBatch
from portal.models import Clients

log = logging.getLogger(__name__)


def push(claim: Claim, clients: Clients) -> AttemptOutcome:
    """Send one claimed batch and record what came of it."""
    return send(claim, clients).record()


@dataclass(frozen=True)
class Sent:
    """An attempt made and not yet recorded: the worker records it once its place among the
    pushes at once has gone to the next batch."""

    claim: Claim
    outcome: Outcome
    started_at: datetime
    seconds: float

    def record(self) -> AttemptOutcome:
        return record(self.claim, self.outcome, self.started_at, self.seconds)


def send(claim: Claim, clients: Clients) -> Sent:
    """One attempt at getting the batch into Isometric, and what came of it."""
    started_at, started = timezone.now(), time.monotonic()
    outcome = _attempt(claim.batch, claim.look_up_first, clients)
    return Sent(claim, outcome, started_at, time.monotonic() - started)


def _attempt(batch: ProductionBatch, look_up_first: bool, clients: Clients) -> Outcome:
    """Whatever goes wrong is an outcome too, never an exception: no batch is left "syncing"."""
    attempt = _Attempt(batch, look_up_first)
    try:
        remote, adopted = attempt.send(clients)
    except IsometricError as exc:
        return attempt.failed(exc)
    except Exception as exc:
        log.exception("push of batch %s failed unexpectedly", batch.pk)
        # Named without its details (which may hold anything): the log has the traceback.
        message = f"Unexpected error in the portal ({type(exc).__name__}); see its log"
        return Retry(message, attempt.possibly_sent)
    return Synced(remote, adopted)


class _Attempt:
    """One attempt at one batch, remembering whether Isometric may now hold it."""

    def __init__(self, batch: ProductionBatch, look_up_first: bool) -> None:
        self.batch = batch
        self.possibly_sent = look_up_first
        self.posting = False

    def send(self, clients: Clients) -> tuple[RemoteBatch, bool]:
        """Isometric's copy of the batch, and whether it was there already."""
        remote, adopted = self._send(clients.get(self.batch.account))
        if not is_isometric_id(remote.id):
            raise MalformedResponse(
                f"Isometric's id for the batch is not an id: {remote.id[:40]!r}"
            )
        return remote, adopted

    def _send(self, client: Client) -> tuple[RemoteBatch, bool]:
        reference = self.batch.supplier_reference_id
        if self.possibly_sent:
            found = client.find_production_batch(reference)
            if found is not None:
                return found, True
            self.possibly_sent = False
        self.posting = self.possibly_sent = True
        try:
            return client.create_production_batch(self.batch.to_api()), False
        except Conflict:
            self.posting = False
            found = client.find_production_batch(reference)
            if found is None:
                raise IsometricError(
                    "Isometric says a batch with this supplier reference exists, "
                    "but does not list one"
                ) from None
            return found, True

    def failed(self, exc: IsometricError) -> Outcome:
        if self.posting and not _may_have_stored(exc):
            self.possibly_sent = False
        if isinstance(exc, AuthenticationFailed):  # UnreadableCredentials too
            return Paused(str(exc), self.possibly_sent, exc.status)
        if isinstance(exc, ValidationFailed):
            return Refused(str(exc), exc.field_errors, exc.status)
        retry_after = exc.retry_after if isinstance(exc, RateLimited | ServerError) else None
        return Retry(str(exc), self.possibly_sent, exc.status, retry_after)


def _may_have_stored(exc: IsometricError) -> bool:
    """Whether Isometric may have stored the batch despite answering our POST with `exc`."""
    if isinstance(exc, TransportError):
        return exc.may_have_reached_server
    if isinstance(exc, ServerError):
        return exc.status != 503  # 503 turns a request away; a 500 may come after the insert
    return not isinstance(exc, ValidationFailed | AuthenticationFailed | RateLimited)
