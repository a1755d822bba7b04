"""A second factor at sign-in (django-otp): a time-based code from an authenticator app, or a
recovery code, for everyone who can see or change Isometric credentials and every superuser.

A password alone still signs such a user in, but every page then leads to the second step
(SecondFactorMiddleware): entering a code, or, the first time, setting up the app.
"""

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import segno
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django_otp import verify_token
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

RECOVERY_CODES = 10
APP_DEVICE = "Authenticator app"
RECOVERY_DEVICE = "Recovery codes"


def needs_second_factor(user: User | AnonymousUser) -> bool:
    """Superusers, and staff who may see or change an Isometric account (its credentials)."""
    if not user.is_authenticated:
        return False
    if getattr(user, "is_superuser", False):
        return True
    return getattr(user, "is_staff", False) and (
        user.has_perm("portal.view_isometricaccount")
        or user.has_perm("portal.change_isometricaccount")
    )


def has_app(user: AbstractBaseUser) -> bool:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).exists()  # type: ignore[no-untyped-call]


def new_app(user: AbstractBaseUser) -> TOTPDevice:
    """An authenticator app to set up: a new secret, unconfirmed until a code from it comes
    back (any earlier unconfirmed one is replaced)."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=APP_DEVICE, confirmed=False)


def pending_app(user: AbstractBaseUser) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=False).last()


def qr_code(device: TOTPDevice) -> str:
    """The app's secret as a QR code image, a data: URI (the CSP allows those for images)."""
    return str(segno.make(device.config_url, error="m").svg_data_uri(scale=4))


def readable_key(device: TOTPDevice) -> str:
    """The secret in base32, as apps ask for it typed in, in groups of four."""
    key = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(key[i : i + 4] for i in range(0, len(key), 4))


@transaction.atomic
def confirm_app(device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the app with a code it shows: the new recovery codes, or None if the code is
    wrong. The app replaces any earlier one."""
    if not device.verify_token(code.strip()):
        return None
    TOTPDevice.objects.filter(user=device.user, confirmed=True).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    return new_recovery_codes(device.user)


@transaction.atomic
def new_recovery_codes(user: AbstractBaseUser) -> list[str]:
    """Ten codes, each good for one sign-in without the app; any earlier ones stop working."""
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name=RECOVERY_DEVICE)
    codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def is_waiting(device: Device) -> bool:
    """Whether a wrong code before makes a try now wait (each device throttles its own: the
    next try after a wrong code waits longer), so that it fails whatever the code."""
    return not device.verify_is_allowed()[0]


def verified_device(user: AbstractBaseUser, code: str) -> tuple[Device | None, bool]:
    """The device that accepts this code (the app for six digits, the recovery codes for any
    other), and whether the try had to wait (is_waiting)."""
    code = code.strip().replace(" ", "")
    kind = TOTPDevice if code.isdigit() and len(code) == 6 else StaticDevice
    device = kind.objects.filter(user=user, confirmed=True).first()
    if device is None:
        return None, False
    waiting = is_waiting(device)
    return verify_token(user, device.persistent_id, code), waiting


def remaining_recovery_codes(user: AbstractBaseUser) -> int:
    return StaticToken.objects.filter(device__user=user).count()


class SecondFactorMiddleware:
    """Leads a signed-in user who needs a second factor and has not given one this session to
    the second step, from any page: the portal's, the admin's, an HTMX fragment's."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user: Any = request.user
        if needs_second_factor(user) and not user.is_verified() and not _exempt(request):
            verify = reverse("second_factor")
            return redirect(f"{verify}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)


def _exempt(request: HttpRequest) -> bool:
    """The second step itself, signing out, and what needs no user."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return True  # nothing there to protect
    return match.url_name in EXEMPT


EXEMPT = ("second_factor", "second_factor_setup", "logout", "healthz", "metrics")
