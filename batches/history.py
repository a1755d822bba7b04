"""A batch's history: who changed which field from what to what, when, and through what, as
django-auditlog's log entries (read back by portal.history).

Saves through the ORM (the form, the admin) are logged by auditlog's signals, each entry marked
with the `changes_via` block it was made in. The pull and the worker write with bulk_create,
bulk_update and update(), which send no signal: they log what they change themselves, in bulk,
with `log_batch_changes` (or `batch_log_entries`, to insert the entries with others at once).
"""

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from auditlog.diff import is_primitive
from auditlog.models import LogEntry
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models.signals import pre_save
from django.utils import timezone
from django.utils.encoding import smart_str

from batches.models import ProductionBatch
from portal.history import track


class Via(models.TextChoices):
    """What a change came through: each entry's additional_data is {"via": source}."""

    FORM = "form", "Web form"
    ADMIN = "admin", "Admin"
    IMPORT = "import", "Import"
    PULL = "pull", "Pull from Isometric"
    WORKER = "worker", "Sync worker"


# The sync machinery's columns change with every attempt and mean nothing to an operator (the
# attempts are in the batch's timeline themselves). Every other field is tracked, one added
# later too.
UNTRACKED = [
    "id",
    "claim_token",
    "next_attempt_at",
    "possibly_sent",
    "sync_attempts",
    "failing_since",
    "last_error",
    "rejection_errors",
    "search_text",
    "created_at",
    "updated_at",
]
# Isometric's ids: the batch's page keeps them in its technical details, out of its timeline.
TECHNICAL = ["remote_id", "replaced_remote_id"]
# The fields' names as the batch's page calls them.
LABELS = {
    "supplier_reference_id": "Supplier reference",
    "started_at": "Production started",
    "ended_at": "Production ended",
    "mass_magnitude": "Mass",
    "remote_id": "Isometric id",
    "uploaded_at": "Uploaded",
    "sync_status": "Status",
    "deleted_in_isometric_at": "Deleted in Isometric",
    "created_by": "Recorded by",
}

_operation: ContextVar[tuple[Via, str] | None] = ContextVar("batch_changes_via", default=None)


def register() -> None:
    """Track batches (the app's ready() calls this once)."""
    track(ProductionBatch, UNTRACKED, LABELS, m2m_fields=["feedstock_types"])
    pre_save.connect(_mark_via, sender=LogEntry, dispatch_uid="batches.history.via")


@contextmanager
def changes_via(source: str) -> Iterator[None]:
    """Log the changes made in the block as made through `source` (a Via value). The block is
    one operation: its entries share a correlation id, and a batch's timeline shows them as one
    change. Usable as a decorator too."""
    token = _operation.set((Via(source), uuid.uuid4().hex))
    try:
        yield
    finally:
        _operation.reset(token)


def operation_id() -> str | None:
    """The id of the operation under way, auditlog's correlation id (AUDITLOG_CID_GETTER)."""
    operation = _operation.get()
    return operation[1] if operation else None


def _mark_via(sender: type[LogEntry], instance: LogEntry, **kwargs: Any) -> None:
    if operation := _operation.get():
        instance.additional_data = {**(instance.additional_data or {}), "via": operation[0]}


# A batch, or its pk, with the (old, new) values of its changed fields by name (a foreign key's
# attname names it too). A many-to-many field's values are iterables of its rows, their names or
# their pks.
BatchChanges = tuple[ProductionBatch | int, Mapping[str, tuple[Any, Any]]]


def log_batch_changes(
    changes: Iterable[BatchChanges],
    via: str,
    created: bool = False,
    actor: AbstractBaseUser | AnonymousUser | None = None,
) -> None:
    """Log changes that auditlog's signals do not see (bulk_create, bulk_update, update()), in
    one insert, e.g. `log_batch_changes([(batch, {"sync_status": (old, new)})], Via.WORKER)`.
    `actor`: the user who made them; none for the portal's own."""
    LogEntry.objects.bulk_create(batch_log_entries(changes, via, created, actor))


def batch_log_entries(
    changes: Iterable[BatchChanges],
    via: str,
    created: bool = False,
    actor: AbstractBaseUser | AnonymousUser | None = None,
) -> list[LogEntry]:
    """The log entries, unsaved, of these changes, as auditlog writes them: untracked fields and
    values that did not change are left out, and so is a batch left with no change. A created
    batch (an instance, then) is logged with each tracked field's value, and its `changes` (its
    many-to-many links) besides."""
    content_type = ContentType.objects.get_for_model(ProductionBatch)
    now, cid = timezone.now(), operation_id()
    items = list(changes)
    reprs = _reprs([batch for batch, _ in items if not isinstance(batch, ProductionBatch)])
    links = _link_names([fields for _, fields in items])
    entries = []
    for batch, fields in items:
        pk = batch.pk if isinstance(batch, ProductionBatch) else batch
        if created:
            assert isinstance(batch, ProductionBatch), "a created batch is logged from its row"
            fields = {**_values(batch), **fields}
        stored = _stored_changes(fields, links)
        if not stored:
            continue
        entries.append(
            LogEntry(
                content_type=content_type,
                object_pk=str(pk),
                object_id=pk,
                object_repr=str(batch) if isinstance(batch, ProductionBatch) else reprs[pk],
                action=LogEntry.Action.CREATE if created else LogEntry.Action.UPDATE,
                changes=stored,
                additional_data={"via": Via(via)},
                actor=actor if actor and actor.is_authenticated else None,
                cid=cid,
                timestamp=now,
            )
        )
    return entries


def _reprs(pks: list[int]) -> dict[int, str]:
    if not pks:
        return {}
    rows = ProductionBatch.objects.filter(pk__in=pks).only("display_name", "supplier_reference_id")
    return {batch.pk: str(batch) for batch in rows}


def _link_names(changes: list[Mapping[str, tuple[Any, Any]]]) -> dict[tuple[str, int], str]:
    """The names of the rows that many-to-many values name by pk, a query per field."""
    pks: dict[str, set[int]] = defaultdict(set)
    for fields in changes:
        for name, (old, new) in fields.items():
            if ProductionBatch._meta.get_field(name).many_to_many:
                pks[name].update(
                    value for value in (*(old or ()), *(new or ())) if isinstance(value, int)
                )
    names = {}
    for name, wanted in pks.items():
        field: Any = ProductionBatch._meta.get_field(name)
        for row in field.related_model._default_manager.filter(pk__in=wanted):
            names[name, row.pk] = str(row)
    return names


def _values(batch: ProductionBatch) -> dict[str, tuple[Any, Any]]:
    return {
        field.name: (None, getattr(batch, field.attname))
        for field in ProductionBatch._meta.concrete_fields
        if field.name not in UNTRACKED
    }


def _stored_changes(
    fields: Mapping[str, tuple[Any, Any]], links: Mapping[tuple[str, int], str]
) -> dict[str, Any]:
    stored = {}
    for name, (old, new) in fields.items():
        field = ProductionBatch._meta.get_field(name)
        if field.name in UNTRACKED or old == new:
            continue
        if field.many_to_many:
            pair = [_names(field.name, old, links), _names(field.name, new, links)]
        else:
            pair = [_stored(old), _stored(new)]
        if pair[0] != pair[1]:
            stored[field.name] = pair
    return stored


def _names(
    field: str, rows: Iterable[Any] | None, links: Mapping[tuple[str, int], str]
) -> list[str]:
    return sorted(
        links.get((field, row), str(row)) if isinstance(row, int) else smart_str(row)
        for row in rows or ()
    )


def _stored(value: Any) -> Any:
    """A value as auditlog stores it (AUDITLOG_STORE_JSON_CHANGES): a related row by its pk, a
    moment as naive UTC, what JSON has no type for as text."""
    if isinstance(value, models.Model):
        value = value.pk
    if isinstance(value, datetime) and timezone.is_aware(value):
        value = timezone.make_naive(value, UTC)
    return value if is_primitive(value) else smart_str(value)
