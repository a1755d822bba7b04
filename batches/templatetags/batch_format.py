from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

if TYPE_CHECKING:
    from batches.models import ProductionBatch

register = template.Library()


@register.filter(expects_localtime=True)
def minute(moment: datetime | None) -> str:
    """A time to the minute in the portal's time zone, e.g. "3 Nov 2026 14:05".

    By hand: Django's `date` filter costs fifty times as much and strftime five, which shows in
    lists that format two a row.
    """
    if moment is None:
        return ""
    return f"{moment.day} {_MONTHS[moment.month]} {moment.year} {moment.hour:02}:{moment.minute:02}"


_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@register.filter
def quantity(value: Decimal | float | None) -> str:
    """A number as people write it: "12.5", "100", never "12.500" or "1E+2". (Django's
    floatformat costs ten times as much, in a list that formats one per row.)"""
    if value is None:
        return ""
    if isinstance(value, float):
        value = Decimal(repr(value))
    return f"{value.normalize():f}"


@register.simple_tag
def status_badge(batch: "ProductionBatch") -> SafeString:
    """A batch's status badge; while the batch is in motion it asks for itself again every
    3 s (and stops once settled). A tag rather than template markup, as the list renders 25."""
    if not batch.is_in_motion:
        return format_html(
            '<span class="badge badge-{}">{}</span>', batch.sync_status, batch.sync_status_label
        )
    return format_html(
        '<span class="badge badge-{}" hx-get="{}" hx-trigger="every 3s" hx-swap="outerHTML">'
        "{}</span>",
        batch.sync_status,
        reverse("batches:status", args=[batch.pk]),
        batch.sync_status_label,
    )
