"""What a locked-out login sees (django-axes' AXES_LOCKOUT_CALLABLE): the login page it posted
to, the portal's or the admin's, with the form saying why instead of "wrong password"."""

import math

from axes.helpers import get_cool_off
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse

LOCKED_OUT = "Too many failed attempts to log in. Try again in {minutes} minute{s}."


def locked_out(
    request: HttpRequest, original_response: HttpResponse, credentials: dict[str, str] | None
) -> HttpResponse:
    message = lockout_message(request)
    if not isinstance(original_response, TemplateResponse):  # not a login form's answer
        return HttpResponse(message, content_type="text/plain", status=429)
    context = dict(original_response.context_data or {})
    form: Form = context["form"]
    # Instead of "Please enter a correct username and password": now only the lock matters.
    form.errors.clear()
    form.add_error(None, message)
    # Rendered now: the response middleware that would render it has run already.
    return TemplateResponse(request, original_response.template_name, context, status=429).render()


def lockout_message(request: HttpRequest) -> str:
    """Each refused attempt starts the cool-off again, so it is all still to wait."""
    cool_off = get_cool_off(request)
    assert cool_off is not None, "AXES_COOLOFF_TIME is set"
    minutes = math.ceil(cool_off.total_seconds() / 60)
    return LOCKED_OUT.format(minutes=minutes, s=pluralize(minutes))
