"""The second step of signing in (portal/second_factor.py): a code, or setting up the app."""

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from portal import second_factor

WRONG_CODE = "That code is not right, or was used already. Try the next one."
WRONG_NEW_CODE = "That code is not right. Check that the phone's clock is right, then try again."
TOO_SOON = "Several wrong codes in a row: wait a few seconds, then try the code shown then."


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=16,
        help_text="The six digits your authenticator app shows, or one of your recovery codes.",
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "text"}),
    )


def _next(request: HttpRequest) -> str:
    wanted = request.POST.get("next") or request.GET.get("next") or "/"
    safe = url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return wanted if safe else "/"


@never_cache
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    """A code from the app or a recovery code, once a session; the setup the first time."""
    user = request.user
    if not second_factor.needs_second_factor(user) or user.is_verified():  # type: ignore[union-attr]
        return redirect(_next(request))
    if not second_factor.has_app(user):  # type: ignore[arg-type]
        return redirect(f"{reverse('second_factor_setup')}?{urlencode({'next': _next(request)})}")
    form = CodeForm(request.POST or None)
    if form.is_valid():
        code = form.cleaned_data["code"]
        device, waiting = second_factor.verified_device(user, code)  # type: ignore[arg-type]
        if device is not None:
            otp_login(request, device)
            if device.name == second_factor.RECOVERY_DEVICE:
                left = second_factor.remaining_recovery_codes(user)  # type: ignore[arg-type]
                messages.warning(
                    request,
                    f"You signed in with a recovery code; {left} left. Make new ones on the "
                    "second factor page if you are running short.",
                )
            return redirect(_next(request))
        form.add_error("code", TOO_SOON if waiting else WRONG_CODE)
    return render(
        request, "registration/second_factor.html", {"form": form, "next": _next(request)}
    )


@never_cache
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    """Set up the authenticator app: its secret as a QR code and as text, then a code from it
    to confirm; the recovery codes, once. Once set up, changing the app needs the second factor
    of this session."""
    user = request.user
    if not second_factor.needs_second_factor(user):
        return redirect(_next(request))
    if second_factor.has_app(user) and not user.is_verified():  # type: ignore[arg-type, union-attr]
        return redirect(f"{reverse('second_factor')}?{urlencode({'next': _next(request)})}")
    # The secret shown stays the same until it is confirmed: a reload shows the same QR code.
    device = second_factor.pending_app(user) or second_factor.new_app(user)  # type: ignore[arg-type]
    form = CodeForm(request.POST or None)
    if form.is_valid():
        waiting = second_factor.is_waiting(device)
        codes = second_factor.confirm_app(device, form.cleaned_data["code"])
        if codes is not None:
            otp_login(request, device)
            return render(
                request,
                "registration/recovery_codes.html",
                {"codes": codes, "next": _next(request)},
            )
        form.add_error("code", TOO_SOON if waiting else WRONG_NEW_CODE)
    context = {
        "form": form,
        "next": _next(request),
        "qr_code": second_factor.qr_code(device),
        "key": second_factor.readable_key(device),
    }
    return render(request, "registration/second_factor_setup.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """How many recovery codes are left; new ones, shown once (the earlier ones stop working)."""
    user = request.user
    if not second_factor.needs_second_factor(user):
        return redirect("dashboard")
    if request.method == "POST":
        codes = second_factor.new_recovery_codes(user)  # type: ignore[arg-type]
        return render(request, "registration/recovery_codes.html", {"codes": codes, "next": "/"})
    left = second_factor.remaining_recovery_codes(user)  # type: ignore[arg-type]
    return render(request, "registration/second_factor_codes.html", {"left": left})
