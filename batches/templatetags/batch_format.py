from datetime import datetime, tzinfo
from decimal import Decimal
from functools import cache
from html import escape
from typing import TYPE_CHECKING

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

if TYPE_CHECKING:
    from batches.models import ProductionBatch
    from batches.remote import RemotePage
    from isometric.models import ProductionBatch as RemoteBatch

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


_NOT_MIRRORED = '<span class="sub">Not in the portal yet</span>'


@register.simple_tag
def remote_rows(page: "RemotePage") -> SafeString:
    """The rows of the "In Isometric" table, each linked to the portal's copy. They are rendered
    after Isometric answers, so they add to the page's time: straight from the API's batches,
    one f-string a row (format_html, or a template loop, costs several times as much)."""
    zone = timezone.get_current_timezone()
    detail_url = _detail_url_pattern()
    return mark_safe(
        "\n".join(
            _remote_row(
                batch,
                page.facility_names.get(batch.facility_id, batch.facility_id),
                page.local_ids.get(batch.id),
                detail_url,
                zone,
            )
            for batch in page.batches
        )
    )


def _remote_row(
    batch: "RemoteBatch", facility: str, local_id: int | None, detail_url: str, zone: tzinfo
) -> str:
    # minute() and quantity() give digits and month names, the URL a path with a number:
    # only the API's strings and the facility's name need escaping.
    uploaded = batch.uploaded_at
    portal_copy = f'<a href="{detail_url.format(local_id)}">Open</a>' if local_id else _NOT_MIRRORED
    return (
        f"<tr><td>{escape(batch.display_name or batch.id)}"
        f'<div class="sub">{escape(batch.supplier_reference_id or "no supplier reference")}</div>'
        f"</td><td>{escape(facility)}</td>"
        f"<td>{minute(batch.started_at.astimezone(zone))}</td>"
        f'<td class="num">{quantity(batch.mass.magnitude)} {escape(batch.mass.unit)}</td>'
        f"<td>{minute(uploaded.astimezone(zone)) if uploaded else '—'}</td>"
        f"<td>{portal_copy}</td></tr>"
    )


@cache
def _detail_url_pattern() -> str:
    """A batch page's URL with a {} for its id: reverse() costs more than the rest of a row."""
    mark = "987654321"
    return reverse("batches:detail", args=[mark]).replace(mark, "{}")
