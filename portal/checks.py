from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from portal import crypto, proxies


@checks.register(checks.Tags.security)
def encryption_keys(**kwargs: Any) -> list[checks.CheckMessage]:
    """The Isometric credentials are encrypted with ENCRYPTION_KEYS: production must set them."""
    if crypto.uses_development_key():
        if settings.DEBUG:
            return [
                checks.Info(
                    "ENCRYPTION_KEYS is not set: Isometric credentials are encrypted with a key "
                    "derived from SECRET_KEY, which is fine for local development only.",
                    id="portal.I001",
                )
            ]
        return [
            checks.Error(
                "ENCRYPTION_KEYS is not set, so Isometric credentials cannot be stored.",
                hint='Generate a key: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"',
                id="portal.E001",
            )
        ]
    try:
        crypto.fernet()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="portal.E002")]
    return []


@checks.register(checks.Tags.security)
def address_lists(**kwargs: Any) -> list[checks.CheckMessage]:
    """The settings that list addresses or networks hold nothing else."""
    errors: list[checks.CheckMessage] = []
    for name in ("TRUSTED_PROXIES", "METRICS_ALLOWED_ADDRESSES"):
        try:
            proxies.networks(getattr(settings, name))
        except ValueError as exc:
            errors.append(
                checks.Error(
                    f"{name}: {exc}.",
                    hint="List addresses or networks, separated by commas: 10.0.0.5,10.1.0.0/16",
                    id="portal.E003",
                )
            )
    return errors
