from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django import template
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

if TYPE_CHECKING:
    from batches.models import ProductionBatch
    from batches.remote import Row

register = template.Library()


@register.filter(expects_localtime=True)
def minute(moment: datetime | None) -> str:
    """A time to the minute in the portal's time zone, e.g. "3 Nov 2026 14:05".

    strftime directly: Django's `date` filter costs about ten times as much, which shows in a
    list that formats one per row.
    """
    if moment is None:
        return ""
    return f"{moment.day} {moment:%b %Y %H:%M}"


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


_REMOTE_ROW = (
    '<tr><td>{}<div class="sub">{}</div></td><td class="sub">{}</td><td>{}</td>'
    '<td class="num">{}</td><td>{}</td><td>{}</td></tr>'
)
_NOT_MIRRORED = mark_safe('<span class="sub">Not in the portal yet</span>')


@register.simple_tag
def remote_rows(rows: "list[Row]") -> SafeString:
    """The rows of the "In Isometric" table. They are rendered after Isometric answers, so
    they add to the page's time: one format_html a row costs a tenth of a template loop."""
    return format_html_join(
        "\n",
        _REMOTE_ROW,
        (
            (
                row.display_name,
                row.supplier_reference_id,
                row.facility_id,
                row.started,
                row.mass,
                row.uploaded,
                format_html('<a href="{}">Open</a>', row.local_url)
                if row.local_url
                else _NOT_MIRRORED,
            )
            for row in rows
        ),
    )
