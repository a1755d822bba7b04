from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from notifications import services
from notifications.forms import RecipientForm
from notifications.models import Recipient
from portal.accounts import request_accounts


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    """The user's own choice of email notifications."""
    user = request.user
    assert isinstance(user, User)  # LoginRequiredMiddleware lets no one else in
    recipient = Recipient.objects.filter(user=user).first() or Recipient(user=user)
    # Bound on every POST: an unticked box posts nothing.
    form = RecipientForm(request.POST if request.method == "POST" else None, instance=recipient)
    if form.is_valid():
        services.set_email_enabled(user, form.cleaned_data["email_enabled"])
        if form.cleaned_data["email_enabled"]:
            messages.success(request, "Saved: the portal emails you when something needs you.")
        else:
            messages.success(request, "Saved: the portal no longer emails you.")
        return redirect("notifications:preferences")
    context = {
        "form": form,
        "kinds": services.kinds_for(user),
        "accounts": request_accounts(request),
        "expiry_days": services.TOKEN_EXPIRY_NOTICE.days,
    }
    return render(request, "notifications/preferences.html", context)
