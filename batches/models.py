from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Self

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinLengthValidator, MinValueValidator
from django.db import models
from django.db.models import F
from django.db.models.functions import Coalesce, Concat
from django.urls import reverse
from django.utils import timezone

from batches.folding import Folded, fold
from isometric.models import Mass, NewProductionBatch
from isometric.models import ProductionBatch as RemoteBatch

# Isometric's ids (facilities, feedstock types, batches) are 20 to 37 characters long.
ISOMETRIC_ID_MIN, ISOMETRIC_ID_MAX = 20, 37
# The largest mass either database stores and reads back exactly: SQLite keeps decimals as
# floating point, and a value near the column's 12 integer digits no longer reads back.
MASS_LIMIT = Decimal("999999999.999999")
MASS_STEP = Decimal("0.000001")
# The moments a batch may have, from the form or from Isometric: what every time zone can show
# and both databases' date arithmetic can hold.
EARLIEST_MOMENT = datetime(1900, 1, 1, tzinfo=UTC)
LATEST_MOMENT = datetime(9998, 12, 31, tzinfo=UTC)
# Isometric takes supplier references of 1 to 100 characters.
REFERENCE_MAX = 100
# The largest id either database's integer columns hold: a larger one names no row.
MAX_ROW_ID = 2**63 - 1


def is_isometric_id(value: str) -> bool:
    return ISOMETRIC_ID_MIN <= len(value) <= ISOMETRIC_ID_MAX


def isometric_id_field(**kwargs: object) -> models.CharField:
    return models.CharField(
        max_length=ISOMETRIC_ID_MAX,
        validators=[MinLengthValidator(ISOMETRIC_ID_MIN)],
        **kwargs,  # type: ignore[arg-type]
    )


class Facility(models.Model):
    """A production site of one organisation. Isometric has no facility endpoint, so the portal
    keeps each account's list."""

    account = models.ForeignKey(
        "portal.IsometricAccount", on_delete=models.CASCADE, related_name="facilities"
    )
    isometric_id = isometric_id_field(verbose_name="Isometric facility id")
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "facilities"
        constraints = [
            models.UniqueConstraint(
                fields=["account", "isometric_id"], name="facility_unique_in_account"
            )
        ]

    def __str__(self) -> str:
        return self.name


class FeedstockType(models.Model):
    """A feedstock type of one organisation, as Isometric lists it (pulls keep the list)."""

    account = models.ForeignKey(
        "portal.IsometricAccount", on_delete=models.CASCADE, related_name="feedstock_types"
    )
    isometric_id = isometric_id_field(verbose_name="Isometric feedstock type id")
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "isometric_id"], name="feedstock_type_unique_in_account"
            )
        ]

    def __str__(self) -> str:
        return self.name


class SyncStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SYNCING = "syncing", "Syncing"
    SYNCED = "synced", "Synced"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Failed"
    DELETED = "deleted", "Deleted in Isometric"
    VOIDED = "voided", "Voided"


class BatchKind(models.TextChoices):
    BIOCHAR = "biochar", "Biochar"


class BatchQuerySet(models.QuerySet["ProductionBatch"]):
    def with_references(self, account_id: int, references: Iterable[str]) -> Self:
        """The account's batches with these supplier references, in no order. The unique
        index's condition is said too: SQLite uses a partial index only for a query that
        repeats it, and walks the account's batches otherwise (as it does to keep the list's
        order, which a lookup does not need)."""
        return (
            self.filter(account_id=account_id, supplier_reference_id__in=list(references))
            .exclude(supplier_reference_id="")
            .order_by()
        )

    def with_references_alike(self, account_id: int, references: Iterable[str]) -> Self:
        """The account's batches whose reference reads as one of these once folded (without
        accents, in lower case: batches.folding), found through batch_reference_folded_idx."""
        return (
            self.filter(account_id=account_id)
            .alias(folded_reference=Folded("supplier_reference_id"))
            .filter(folded_reference__in={fold(reference) for reference in references})
            .order_by()
        )


class ProductionBatch(models.Model):
    """A production batch, stored here first; the row is also the sync worker's outbox entry."""

    # The organisation the batch belongs to; its facility and feedstock types are the same one's.
    account = models.ForeignKey(
        "portal.IsometricAccount", on_delete=models.PROTECT, related_name="batches"
    )
    facility = models.ForeignKey(Facility, on_delete=models.PROTECT, related_name="batches")
    feedstock_types = models.ManyToManyField(FeedstockType, related_name="batches")
    # Unique within an account (see Meta); "" only for a batch pulled from Isometric without one.
    supplier_reference_id = models.CharField(max_length=REFERENCE_MAX)
    kind = models.CharField(max_length=20, choices=BatchKind, default=BatchKind.BIOCHAR)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    mass_magnitude = models.DecimalField(
        max_digits=18,
        decimal_places=6,
        validators=[MinValueValidator(MASS_STEP), MaxValueValidator(MASS_LIMIT)],
    )
    mass_unit = models.CharField(max_length=20)
    mass_standard_deviation = models.DecimalField(
        max_digits=18,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(MASS_LIMIT)],
    )
    display_name = models.CharField(max_length=100, blank=True)

    # Isometric's id, unique within the account (see Meta): ids are the organisation's.
    remote_id = isometric_id_field(null=True, blank=True, editable=False)
    uploaded_at = models.DateTimeField(null=True, blank=True, editable=False)

    sync_status = models.CharField(
        max_length=10, choices=SyncStatus, default=SyncStatus.PENDING, editable=False
    )
    sync_attempts = models.PositiveIntegerField(default=0, editable=False)
    # Since when the pushes have kept failing; the worker gives up only after SYNC_GIVE_UP_AFTER,
    # so an outage of an afternoon fails nothing.
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    # When the worker next looks at the batch: the retry time while pending, the end of the
    # worker's lease while syncing (a lease that ran out means the worker died: due again);
    # None once settled. So "due" is this column alone, which its index answers.
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, editable=False, default=timezone.now
    )
    claim_token = models.CharField(max_length=32, blank=True, editable=False)
    # A push may have reached Isometric without the portal learning the outcome, so the next
    # attempt looks the batch up by its reference before posting it again.
    possibly_sent = models.BooleanField(default=False, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    # Isometric's 422, as [form field name or None, message] pairs.
    rejection_errors = models.JSONField(default=list, blank=True, editable=False)
    # When a pull found the batch gone from Isometric (its status is then "deleted").
    deleted_in_isometric_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The Isometric batch a correction deleted, until the corrected one is there: it is never
    # adopted back, and a reference Isometric keeps for it is not offered again.
    replaced_remote_id = models.CharField(max_length=ISOMETRIC_ID_MAX, blank=True, editable=False)
    # Why an operator voided the batch; set from the request, so a void under way has one.
    void_reason = models.TextField(blank=True, editable=False)
    voided_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # One column for search, folded (no accents, lower case), kept by the database itself so
    # bulk writes keep it too.
    search_text = models.GeneratedField(
        expression=Folded(
            Concat(
                "display_name",
                models.Value(" "),
                "supplier_reference_id",
                models.Value(" "),
                Coalesce("remote_id", models.Value("")),
                output_field=models.TextField(),
            )
        ),
        output_field=models.TextField(),
        db_persist=True,
    )

    objects = BatchQuerySet.as_manager()

    class Meta:
        verbose_name = "production batch"
        permissions = [("void_productionbatch", "Can void production batch")]
        verbose_name_plural = "production batches"
        ordering = ["-started_at", "-id"]
        indexes = [
            # The list's keyset order, alone and under each equality filter.
            models.Index(fields=["-started_at", "-id"], name="batch_started_idx"),
            models.Index(fields=["account", "-started_at", "-id"], name="batch_account_idx"),
            models.Index(fields=["facility", "-started_at", "-id"], name="batch_facility_idx"),
            models.Index(fields=["sync_status", "-started_at", "-id"], name="batch_status_idx"),
            # The home page's figures, each read from its index alone, never the table: the
            # counts by status (and the batches in one), the tonnes by facility and week.
            models.Index(fields=["account", "sync_status"], name="batch_account_status_idx"),
            models.Index(
                fields=["facility", "started_at", "sync_status", "mass_unit", "mass_magnitude"],
                name="batch_production_idx",
            ),
            # References that differ only in case or accents, which the batch form warns of.
            models.Index(
                F("account"), Folded("supplier_reference_id"), name="batch_reference_folded_idx"
            ),
            # The list sorted by mass (either way: an index is read in both directions).
            models.Index(fields=["mass_magnitude", "started_at", "id"], name="batch_mass_idx"),
            # The worker's queue: only rows still to be sent, in the order they fall due.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(next_attempt_at__isnull=False),
                name="batch_due_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    sync_status__in=[SyncStatus.PENDING, SyncStatus.SYNCING],
                    next_attempt_at__isnull=False,
                )
                | (
                    ~models.Q(sync_status__in=[SyncStatus.PENDING, SyncStatus.SYNCING])
                    & models.Q(next_attempt_at__isnull=True)
                ),
                name="batch_next_attempt_only_unsettled",
            ),
            models.UniqueConstraint(
                fields=["account", "supplier_reference_id"],
                condition=~models.Q(supplier_reference_id=""),
                name="batch_reference_unique_in_account",
            ),
            # NULLs are distinct, so unsent batches do not collide. Its index also links a page
            # of "In Isometric" to the account's copies.
            models.UniqueConstraint(
                fields=["account", "remote_id"], name="batch_remote_id_unique_in_account"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.supplier_reference_id

    def get_absolute_url(self) -> str:
        return reverse("batches:detail", args=[self.pk])

    @property
    def is_editable(self) -> bool:
        """Any batch can be corrected, except one voided or being voided."""
        return not self.void_reason

    @property
    def is_correction(self) -> bool:
        """Saving it replaces a batch Isometric holds (deleted there, then created again)."""
        return bool(self.remote_id) and self.sync_status in (SyncStatus.SYNCED, SyncStatus.DELETED)

    @property
    def work_under_way(self) -> str:
        """What the worker is doing with the batch, in an operator's words ("" when nothing)."""
        if self.sync_status not in (SyncStatus.PENDING, SyncStatus.SYNCING):
            return ""
        if self.void_reason:
            return "Voiding: deleting it in Isometric"
        if self.remote_id:
            return "Correcting: deleting Isometric's copy, then sending the batch again"
        if self.replaced_remote_id:
            return "Correcting: Isometric's old copy deleted, sending the corrected batch"
        return ""

    @property
    def is_in_motion(self) -> bool:
        """Its status may change within the minute, so a page showing it keeps watching."""
        if self.sync_status == SyncStatus.SYNCING:
            return True
        return (
            self.sync_status == SyncStatus.PENDING
            and self.next_attempt_at is not None
            and self.next_attempt_at <= timezone.now() + timedelta(minutes=1)
        )

    @property
    def feedstock_type_ids(self) -> list[str]:
        return [feedstock.isometric_id for feedstock in self.feedstock_types.all()]

    def to_api(self) -> NewProductionBatch:
        """The batch as Isometric's POST /production_batches takes it."""
        deviation = self.mass_standard_deviation
        return NewProductionBatch(
            facility_id=self.facility.isometric_id,
            feedstock_type_ids=self.feedstock_type_ids,
            supplier_reference_id=self.supplier_reference_id,
            kind=self.kind,
            started_at=self.started_at,
            ended_at=self.ended_at,
            mass=Mass(
                magnitude=float(self.mass_magnitude),
                unit=self.mass_unit,
                standard_deviation=None if deviation is None else float(deviation),
            ),
            display_name=self.display_name or None,
        )

    def matches(self, remote: RemoteBatch) -> bool:
        """Whether Isometric's copy holds this batch's values, its reference aside (the key it
        was found by). A display name left blank here is Isometric's to choose."""
        mine, deviation = self.to_api(), remote.mass.standard_deviation
        return (
            mine.facility_id == remote.facility_id
            and sorted(mine.feedstock_type_ids) == sorted(remote.feedstock_type_ids)
            and mine.kind == (remote.kind or BatchKind.BIOCHAR)
            and (mine.started_at, mine.ended_at) == (remote.started_at, remote.ended_at)
            and self.mass_magnitude == decimal_of(remote.mass.magnitude)
            and self.mass_unit == remote.mass.unit
            and self.mass_standard_deviation
            == (None if deviation is None else decimal_of(deviation))
            and (not self.display_name or self.display_name == remote.display_name)
        )

    @staticmethod
    def fields_from_api(remote: RemoteBatch, facility_pk: int) -> dict[str, Any]:
        """The field values of a batch as Isometric holds it (see unmirrorable() first), settled:
        Isometric's copy is the one that counts. Feedstock types are links, not fields."""
        deviation = remote.mass.standard_deviation
        return {
            "remote_id": remote.id,
            "facility_id": facility_pk,
            "supplier_reference_id": remote.supplier_reference_id or "",
            "kind": remote.kind or BatchKind.BIOCHAR,
            "started_at": remote.started_at,
            "ended_at": remote.ended_at,
            "mass_magnitude": decimal_of(remote.mass.magnitude),
            "mass_unit": remote.mass.unit,
            "mass_standard_deviation": None if deviation is None else decimal_of(deviation),
            "display_name": remote.display_name or "",
            "uploaded_at": remote.uploaded_at,
            **synced_state(),
        }

    @staticmethod
    def field_of(loc: tuple[str | int, ...]) -> str | None:
        """The field (the model's and its form's) that a location in Isometric's 422 concerns,
        or None for the batch as a whole."""
        parts = tuple(part for part in loc if isinstance(part, str) and part != "body")
        return _API_FIELDS.get(parts[:2]) or _API_FIELDS.get(parts[:1])


# Where the fields of to_api() come from, by their place in Isometric's request body.
_API_FIELDS = {
    ("facility_id",): "facility",
    ("feedstock_type_ids",): "feedstock_types",
    ("supplier_reference_id",): "supplier_reference_id",
    ("display_name",): "display_name",
    ("started_at",): "started_at",
    ("ended_at",): "ended_at",
    ("mass",): "mass_magnitude",
    ("mass", "magnitude"): "mass_magnitude",
    ("mass", "unit"): "mass_unit",
    ("mass", "standard_deviation"): "mass_standard_deviation",
}


def synced_state() -> dict[str, Any]:
    """The sync columns of a batch Isometric holds: nothing left to send, nothing to report."""
    return {
        "sync_status": SyncStatus.SYNCED,
        "failing_since": None,
        "claim_token": "",
        "possibly_sent": False,
        "next_attempt_at": None,
        "last_error": "",
        "rejection_errors": [],
        "deleted_in_isometric_at": None,
        "replaced_remote_id": "",
    }


def unmirrorable(remote: RemoteBatch) -> str:
    """Why a batch from Isometric cannot be stored here as it is ("" when it can): each value
    must be one the batch's columns hold in both databases."""
    ids = [remote.id, remote.facility_id, *remote.feedstock_type_ids]
    if not all(is_isometric_id(each) for each in ids):
        return "an id is not an Isometric id"
    texts = [
        (remote.supplier_reference_id or "", "supplier reference", 100),
        (remote.display_name or "", "display name", 100),
        (remote.kind or "", "kind", 20),
        (remote.mass.unit, "mass unit", 20),
    ]
    for text, name, limit in texts:
        if len(text) > limit:
            return f"its {name} is longer than {limit} characters"
    masses = [remote.mass.magnitude, remote.mass.standard_deviation or 0.0]
    if not all(0 <= mass <= MASS_LIMIT for mass in masses):
        return "its mass is out of range"
    moments = [remote.started_at, remote.ended_at, remote.uploaded_at or remote.started_at]
    if not all(EARLIEST_MOMENT <= moment <= LATEST_MOMENT for moment in moments):
        return "a date is out of range"
    return ""


def decimal_of(value: float) -> Decimal:
    """A JSON number as the model's decimal (6 places)."""
    return Decimal(repr(value)).quantize(MASS_STEP)


class AttemptOutcome(models.TextChoices):
    CREATED = "created", "Created in Isometric"
    ADOPTED = "adopted", "Found in Isometric"
    REJECTED = "rejected", "Refused by Isometric"
    DELETED = "deleted", "Deleted in Isometric"
    VOIDED = "voided", "Voided"
    RETRY = "retry", "Will retry"
    FAILED = "failed", "Gave up"
    PAUSED = "paused", "Credentials refused"


class SyncAttempt(models.Model):
    """One push of a batch to Isometric, for the batch's history."""

    batch = models.ForeignKey(ProductionBatch, on_delete=models.CASCADE, related_name="attempts")
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=10, choices=AttemptOutcome)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["batch", "-started_at"], name="attempt_batch_idx")]

    def __str__(self) -> str:
        return f"{self.batch_id} {self.outcome} at {self.started_at:%Y-%m-%d %H:%M:%S}"


class ImportStatus(models.TextChoices):
    CHECKING = "checking", "Checking"
    CHECKED = "checked", "Checked"
    IMPORTING = "importing", "Importing"
    IMPORTED = "imported", "Imported"
    UNREADABLE = "unreadable", "Could not be read"


class BatchImport(models.Model):
    """An uploaded spreadsheet of batches: checked row by row by the worker, previewed, then
    imported by the worker once the operator says so."""

    account = models.ForeignKey(
        "portal.IsometricAccount", on_delete=models.CASCADE, related_name="imports"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    file_name = models.CharField(max_length=255)
    # The file itself, in the database so that any worker on any machine can read it; emptied
    # once it is imported.
    content = models.BinaryField()
    # The operator's word that unusual values in the file (see the batch form) are right.
    confirm_unusual = models.BooleanField(default=False)
    # The time zone the file's times are read in: the uploader's when they uploaded it.
    time_zone = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=10, choices=ImportStatus, default=ImportStatus.CHECKING)
    # A worker's lease on it while checking or importing: one that dies leaves it to another.
    claimed_until = models.DateTimeField(null=True, blank=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    new = models.PositiveIntegerField(default=0)
    same = models.PositiveIntegerField(default=0)
    conflicting = models.PositiveIntegerField(default=0)
    invalid = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)  # why the file could not be read
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "claimed_until"], name="import_due_idx")]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.created_at:%Y-%m-%d %H:%M})"

    def get_absolute_url(self) -> str:
        return reverse("batches:import", args=[self.pk])

    @property
    def in_progress(self) -> bool:
        return self.status in (ImportStatus.CHECKING, ImportStatus.IMPORTING)

    @property
    def recorded_meanwhile(self) -> int:
        """New rows that were in the portal by the time of the import (left out then)."""
        return self.new - self.imported if self.status == ImportStatus.IMPORTED else 0

    @property
    def percent_done(self) -> int:
        return 100 * self.rows_done // self.rows_total if self.rows_total else 0


class BatchImportRow(models.Model):
    """A row an import's check found new, as the batch form cleaned it: saved as a batch when
    the operator imports the file, without checking it a second time."""

    batch_import = models.ForeignKey(BatchImport, on_delete=models.CASCADE, related_name="new_rows")
    number = models.PositiveIntegerField()  # its row in the file
    values = models.JSONField(encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["batch_import", "number"]
        indexes = [models.Index(fields=["batch_import", "number"], name="import_new_row_idx")]

    def __str__(self) -> str:
        return f"row {self.number} of {self.batch_import_id}"


class RejectedRow(models.Model):
    """A row an import's check refused, with why: listed on the import's page and downloaded
    with its reasons, ready to fix. (A table, not a list on the import: a file may hold 50,000
    of them, and its page shows a few.)"""

    batch_import = models.ForeignKey(
        BatchImport, on_delete=models.CASCADE, related_name="rejected_rows"
    )
    number = models.PositiveIntegerField()  # its row in the file
    conflicting = models.BooleanField()  # its reference is a batch's with other values
    values = models.JSONField()  # as the file had them, by column key
    errors = models.JSONField()  # the messages by column header, "" for the row as a whole

    class Meta:
        ordering = ["batch_import", "number"]
        indexes = [models.Index(fields=["batch_import", "number"], name="import_rejected_row_idx")]

    def __str__(self) -> str:
        return f"row {self.number} of {self.batch_import_id}"
