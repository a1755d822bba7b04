"""Push: every batch reaches Isometric exactly once, and a correction or a void replaces or
removes it there exactly once.

The protocol of one attempt: delete Isometric's copy first if the batch was corrected or voided
since it was sent, look the batch up if an earlier attempt may have stored it, post it, and on a
conflict look it up again. send() makes it and writes nothing: it answers
with the outcome (batches.sync.queue), which Sent.record() has the queue record under the
worker's claim. push() does both.
"""

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from django.utils import timezone

from batches.models import REFERENCE_MAX, AttemptOutcome, ProductionBatch, is_isometric_id
from batches.sync.queue import (
    Claim,
    Kept,
    Outcome,
    Paused,
    Postponed,
    Refused,
    Retry,
    Synced,
    Voided,
    record,
)
from isometric.client import Client
from isometric.errors import (
    AuthenticationFailed,
    Conflict,
    IsometricError,
    MalformedResponse,
    NotFound,
    NotYourTurn,
    RateLimited,
    RepeatedCursor,
    ServerError,
    TransportError,
    ValidationFailed,
)
from isometric.models import ProductionBatch as RemoteBatch
from portal.models import Clients

log = logging.getLogger(__name__)


def push(claim: Claim, clients: Clients) -> AttemptOutcome | None:
    """Send one claimed batch and record what came of it (None: postponed, not sent)."""
    return send(claim, clients).record()


@dataclass(frozen=True)
class Sent:
    """An attempt made and not yet recorded: the worker records it once its place among the
    pushes at once has gone to the next batch. `deleted`: the Isometric batch this attempt
    found deleted (a correction's or a void's first step), recorded before the outcome."""

    claim: Claim
    outcome: Outcome
    started_at: datetime
    seconds: float
    deleted: str = ""

    def record(self) -> AttemptOutcome | None:
        return record(self.claim, self.outcome, self.started_at, self.seconds, self.deleted)


def send(claim: Claim, clients: Clients) -> Sent:
    """One attempt at getting the batch into Isometric (or out of it), and what came of it."""
    started_at, started = timezone.now(), time.monotonic()
    attempt = _Attempt(claim.batch, claim.look_up_first)
    outcome = attempt.outcome(clients)
    return Sent(claim, outcome, started_at, time.monotonic() - started, attempt.deleted)


class _Attempt:
    """One attempt at one batch, remembering whether Isometric may now hold it.

    A batch Isometric holds (remote_id) that was corrected or voided is deleted there first;
    only once that is confirmed is the corrected one created, so Isometric never holds two.
    """

    def __init__(self, batch: ProductionBatch, look_up_first: bool) -> None:
        self.batch = batch
        self.possibly_sent = look_up_first
        self.posting = False
        self.deleting = ""  # the Isometric batch being deleted, until it is gone
        self.deleted = ""  # confirmed gone from Isometric in this attempt
        self.replaced = batch.replaced_remote_id  # deleted by this correction, never adopted

    def outcome(self, clients: Clients) -> Outcome:
        """Whatever goes wrong is an outcome too, never an exception: no batch is left
        "syncing"."""
        try:
            client = clients.get(self.batch.account)
            if self.batch.void_reason:
                return self._void(client)
            if self.batch.remote_id:
                self._delete(client, self.batch.remote_id)
            remote, adopted = self._create(client)
        except IsometricError as exc:
            return self.failed(exc)
        except Exception as exc:
            log.exception("push of batch %s failed unexpectedly", self.batch.pk)
            # Named without its details (which may hold anything): the log has the traceback.
            message = f"Unexpected error in the portal ({type(exc).__name__}); see its log"
            return Retry(message, self.possibly_sent)
        if not is_isometric_id(remote.id):
            return self.failed(
                MalformedResponse(f"Isometric's id for the batch is not an id: {remote.id[:40]!r}")
            )
        return Synced(remote, adopted)

    def _void(self, client: Client) -> Outcome:
        remote_id = self.batch.remote_id
        if not remote_id and self.possibly_sent:
            found = self._find(client, self.batch.supplier_reference_id)
            remote_id = found.id if found else None
        if remote_id:
            self._delete(client, remote_id)
        self.possibly_sent = False
        return Voided(self.batch.void_reason)

    def _delete(self, client: Client, remote_id: str) -> None:
        """Delete Isometric's copy. Already gone counts as done: an earlier attempt's answer
        was lost, or someone deleted it in Certify."""
        self.deleting = remote_id
        with contextlib.suppress(NotFound):
            client.delete_production_batch(remote_id)
        self.deleting = ""
        self.deleted = self.replaced = remote_id

    def _create(self, client: Client) -> tuple[RemoteBatch, bool]:
        """Isometric's copy of the batch, and whether it was there already."""
        if self.possibly_sent:
            found = self._find(client, self.batch.supplier_reference_id)
            if found is not None:
                return found, True
            self.possibly_sent = False
        body = self.batch.to_api()
        for reference in self._references():
            self.posting = self.possibly_sent = True
            try:
                posted = replace(body, supplier_reference_id=reference)
                return client.create_production_batch(posted), False
            except Conflict:
                self.posting = False
            found = self._find(client, reference)
            own = reference == self.batch.supplier_reference_id
            if found is not None and (own or self.batch.matches(found)):
                return found, True
            if not self.replaced:
                raise IsometricError(
                    "Isometric says a batch with this supplier reference exists, "
                    "but does not list one"
                )
        raise IsometricError(
            "Isometric keeps the supplier reference of the deleted batch, and every reference "
            "derived from it is taken: give the batch another reference"
        )

    def _references(self) -> Iterator[str]:
        """The batch's reference, then (after a correction's delete, when Isometric keeps the
        deleted batch's reference) those derived from it, looked up only if needed."""
        yield self.batch.supplier_reference_id
        if self.replaced:
            yield from derived_references(self.batch)

    def _find(self, client: Client, reference: str) -> RemoteBatch | None:
        found = client.find_production_batch(reference)
        return None if found is None or found.id == self.replaced else found

    def failed(self, exc: IsometricError) -> Outcome:
        if self.posting and not _may_have_stored(exc):
            self.possibly_sent = False
        if isinstance(exc, NotYourTurn):
            return Postponed(self.possibly_sent)
        if isinstance(exc, AuthenticationFailed):  # UnreadableCredentials too
            return Paused(str(exc), self.possibly_sent, exc.status)
        if self.deleting and isinstance(exc, ValidationFailed | Conflict):
            return Kept(str(exc), self.deleting, exc.status, in_words(exc))
        if isinstance(exc, ValidationFailed):
            return Refused(str(exc), exc.field_errors, exc.status)
        retry_after = exc.retry_after if isinstance(exc, RateLimited | ServerError) else None
        return Retry(str(exc), self.possibly_sent, exc.status, retry_after, in_words(exc))


def in_words(exc: IsometricError) -> str:
    """What went wrong as the operator reads it on the batch's page: no HTTP status, no
    address (the attempt keeps Isometric's answer as it was, for the technical details)."""
    match exc:
        case ValidationFailed(field_errors=[_, *_] as errors):
            return "; ".join(error.msg for error in errors)
        case Conflict():
            return "Isometric says it conflicts with a batch it holds"
        case RateLimited():
            return "Isometric is receiving too many requests from the portal"
        case ServerError():
            return "Isometric is having trouble (it answered with an error)"
        case TransportError(timed_out=True):
            return "Isometric did not answer in time"
        case TransportError():
            return "Isometric could not be reached"
        case NotFound():
            return "Isometric does not have it"
        case MalformedResponse() | RepeatedCursor():
            return "Isometric sent an answer the portal cannot read"
    if type(exc) is IsometricError and exc.status is None:
        return str(exc)  # the portal's own, in words already
    return "Isometric answered in a way the portal does not expect"


def derived_references(batch: ProductionBatch, tries: int = 10) -> list[str]:
    """References to create a corrected batch under when Isometric will not take its own again
    after the delete: "REF~2", "REF~3"… (counting on from a "~n" the reference already has),
    the same for every attempt, so one whose answer was lost is found, not made twice. Those
    another batch here has are left out."""
    base, _, number = batch.supplier_reference_id.rpartition("~")
    if not (base and number.isdigit()):
        base, number = batch.supplier_reference_id, "1"
    candidates = []
    for n in range(int(number) + 1, int(number) + 1 + tries):
        suffix = f"~{n}"
        candidates.append(base[: REFERENCE_MAX - len(suffix)] + suffix)
    taken = set(
        ProductionBatch.objects.with_references(batch.account_id, candidates).values_list(
            "supplier_reference_id", flat=True
        )
    )
    return [reference for reference in candidates if reference not in taken]


def _may_have_stored(exc: IsometricError) -> bool:
    """Whether Isometric may have stored the batch despite answering our POST with `exc`."""
    if isinstance(exc, TransportError):
        return exc.may_have_reached_server
    if isinstance(exc, ServerError):
        return exc.status != 503  # 503 turns a request away; a 500 may come after the insert
    return not isinstance(exc, ValidationFailed | AuthenticationFailed | RateLimited)
