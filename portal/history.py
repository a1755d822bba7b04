"""Histories of rows, kept by django-auditlog."""

from collections.abc import Iterable, Mapping

from auditlog.registry import auditlog
from django.db import models


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
