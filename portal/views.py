from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import User
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from portal import second_factor
from portal.forms import PreferencesForm
from portal.models import UserPreferences


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    """The user's own settings: the time zone the portal's times are in."""
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware let no one else in
    mine = UserPreferences.objects.filter(user=user).first()
    data = request.POST if request.method == "POST" else None
    form = PreferencesForm(data, instance=mine or UserPreferences(user=user))
    if request.method == "POST" and form.is_valid():
        form.save()
        zone = form.cleaned_data["time_zone"] or "the portal's time zone"
        messages.success(request, f"Saved: the portal's times are in {zone} for you now.")
        return redirect("preferences")
    context = {
        "form": form,
        "now": timezone.now(),
        "second_factor": second_factor.needs_second_factor(user),
    }
    return render(request, "portal/preferences.html", context)


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return JsonResponse({"status": "unavailable", "database": "unreachable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})
