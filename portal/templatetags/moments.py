"""Times as the portal shows them: in the current time zone (the user's), saying which."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.formats import date_format

register = template.Library()


@register.filter
def moment(value: datetime | None, precision: str = "minutes") -> str:
    """ "5 Mar 2026 14:00 EET"; with "seconds", "5 Mar 2026 14:00:07 EET". Nothing for none."""
    if not isinstance(value, datetime):
        return ""
    shown = "j M Y H:i:s T" if precision == "seconds" else "j M Y H:i T"
    return date_format(timezone.localtime(value), shown)
