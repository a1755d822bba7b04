"""Histories of rows, kept by django-auditlog, as people read them: who, when, and each field's
label with its old and new values as text (related rows by name, choices by label, moments in
the portal's time zone). Accounts' history lives here; batches' in batches.history."""

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from itertools import groupby
from typing import Any, ClassVar

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.text import capfirst

from portal.models import IsometricAccount

NONE = "—"
CREATE, UPDATE, DELETE = LogEntry.Action.CREATE, LogEntry.Action.UPDATE, LogEntry.Action.DELETE
ACTIONS = {CREATE: "Created", UPDATE: "Changed", DELETE: "Deleted"}
# Rows named by foreign keys: (their model, their pk) → their name.
Names = Mapping[tuple[type[models.Model], Any], str]
# An account's secrets, connection checks and pull schedule are not its history: the secrets'
# values must never be written anywhere (their *_changed_at say when they were replaced), and
# the rest is set by the portal on its own, over and over.
ACCOUNT_UNTRACKED = [
    "id",
    "encrypted_client_secret",
    "encrypted_access_token",
    "organisation_id",
    "organisation_name",
    "connection_status",
    "connection_message",
    "checked_at",
    "pull_due_at",
    "last_pulled_at",
    "last_pull_summary",
    "created_at",
    "updated_at",
]


@dataclass(frozen=True)
class FieldChange:
    label: str
    old: str
    new: str
    # A many-to-many field changed link by link: `old` names the rows unlinked, `new` those
    # linked ("" for none).
    links: bool = False


@dataclass(frozen=True)
class Change:
    """One operation's changes to a row (one log entry, or several sharing a correlation id)."""

    at: datetime
    who: str  # the user, or "the portal" for what it did on its own
    action: str  # "Created", "Changed", "Deleted"
    fields: list[FieldChange]
    via: str = ""  # what it came through, where that was recorded
    object_pk: str = ""  # the changed row's, and its name as it was then
    object_repr: str = ""
    kind: ClassVar[str] = "change"

    @property
    def created(self) -> bool:
        return self.action == ACTIONS[CREATE]


def track(
    model: type[models.Model],
    exclude: list[str],
    labels: Mapping[str, str] | None = None,
    m2m_fields: Iterable[str] = (),
) -> None:
    """Log the model's changes: every field not excluded, one added later too. Rows pointing at
    it are not its fields, though auditlog counts them when one is created."""
    reverse = [relation.name for relation in model._meta.related_objects]
    auditlog.register(
        model,
        exclude_fields=[*exclude, *reverse],
        mapping_fields=dict(labels or {}),
        m2m_fields=set(m2m_fields),
    )


def register() -> None:
    """Track accounts (the app's ready() calls this once)."""
    track(IsometricAccount, ACCOUNT_UNTRACKED, m2m_fields=["members"])


def account_history(account: IsometricAccount, limit: int) -> list[Change]:
    """The newest `limit` changes to the account, newest first."""
    return changes(newest_entries(account, limit), IsometricAccount)


def newest_entries(row: models.Model, limit: int) -> list[LogEntry]:
    entries = LogEntry.objects.get_for_object(row).select_related("actor")
    return list(entries.order_by("-timestamp", "-pk")[:limit])


def changes(
    entries: Sequence[LogEntry],
    model: type[models.Model],
    via_labels: Mapping[str, str] | None = None,
    left_out: Collection[str] = (),
) -> list[Change]:
    """Entries of one model's rows, newest first, as changes: consecutive entries of one
    operation on one row as one, without the fields `left_out`. The rows they name are looked up
    in a query per model named."""
    names = _related_names(model, entries)
    operations = groupby(
        entries, key=lambda entry: (entry.object_pk, entry.cid or f"entry {entry.pk}")
    )
    return [
        _change(model, list(group), names, via_labels or {}, left_out) for _, group in operations
    ]


def _change(
    model: type[models.Model],
    entries: list[LogEntry],
    names: Names,
    via_labels: Mapping[str, str],
    left_out: Collection[str],
) -> Change:
    actions = {entry.action for entry in entries}
    action = next((ACTIONS[each] for each in (CREATE, DELETE) if each in actions), ACTIONS[UPDATE])
    values: dict[str, list[Any]] = {}  # old, new
    links: dict[str, tuple[set[str], set[str]]] = {}  # unlinked, linked
    for entry in reversed(entries):  # oldest first: a field changed twice ends at its last value
        for name, change in (entry.changes or {}).items():
            if name in left_out:
                continue
            if isinstance(change, dict):  # auditlog's many-to-many format
                unlinked, linked = links.setdefault(name, (set(), set()))
                (unlinked if change["operation"] == "delete" else linked).update(change["objects"])
            else:
                values.setdefault(name, [change[0], None])[1] = change[1]
    fields = {
        name: _field_change(model, name, old, new, names) for name, (old, new) in values.items()
    }
    fields |= {
        name: FieldChange(_label(model, name), ", ".join(sorted(old)), ", ".join(sorted(new)), True)
        for name, (old, new) in links.items()
    }
    order = [field.name for field in model._meta.get_fields()]
    newest = entries[0]
    via = (newest.additional_data or {}).get("via", "")
    return Change(
        at=newest.timestamp,
        who=newest.actor.get_username() if newest.actor else "the portal",
        action=action,
        fields=[
            fields[name]
            for name in sorted(fields, key=lambda name: order.index(name) if name in order else 0)
            # A new row's history lists the values it was created with.
            if action != ACTIONS[CREATE] or fields[name].new not in ("", NONE)
        ],
        via=via_labels.get(via, via),
        object_pk=newest.object_pk,
        object_repr=newest.object_repr,
    )


def _field_change(
    model: type[models.Model], name: str, old: Any, new: Any, names: Names
) -> FieldChange:
    field = _field(model, name)
    return FieldChange(_label(model, name), _text(field, old, names), _text(field, new, names))


def _field(model: type[models.Model], name: str) -> Any:
    """The model's field of that name; None for one since removed."""
    try:
        return model._meta.get_field(name)
    except FieldDoesNotExist:
        return None


def _label(model: type[models.Model], name: str) -> str:
    mapped = auditlog.get_model_fields(model)["mapping_fields"]
    field = _field(model, name)
    return str(mapped.get(name) or (capfirst(field.verbose_name) if field else name))


def _text(field: Any, value: Any, names: Names) -> str:
    if value is None or value == "" or value == []:
        return NONE
    if field is None:
        return str(value)
    if isinstance(value, list):  # a many-to-many field's rows, by name
        return ", ".join(map(str, value))
    if field.many_to_one or field.one_to_one:
        related = field.related_model
        pk = related._meta.pk.to_python(value)
        return names.get((related, pk), f"(deleted {related._meta.verbose_name} {value})")
    if field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if isinstance(field, models.DateTimeField):
        moment = datetime.fromisoformat(str(value))
        if timezone.is_naive(moment):  # auditlog keeps moments as naive UTC
            moment = moment.replace(tzinfo=UTC)
        precise = moment.second or moment.microsecond  # not a time typed in by the minute
        shown = "j M Y H:i:s T" if precise else "j M Y H:i T"
        return date_format(timezone.localtime(moment), shown)
    if isinstance(field, models.DecimalField):
        return f"{Decimal(str(value)).normalize():f}"
    if isinstance(field, models.BooleanField):
        return "Yes" if value else "No"
    return str(value)


def _related_names(model: type[models.Model], entries: Sequence[LogEntry]) -> Names:
    """The names of the rows the entries' foreign keys point at."""
    wanted: dict[type[models.Model], set[Any]] = defaultdict(set)
    for entry in entries:
        for name, change in (entry.changes or {}).items():
            field = _field(model, name)
            if field and (field.many_to_one or field.one_to_one):
                related = field.related_model
                wanted[related].update(
                    related._meta.pk.to_python(v) for v in change if v is not None
                )
    return {
        (related, row.pk): str(row)
        for related, pks in wanted.items()
        for row in related._default_manager.filter(pk__in=pks)
    }
