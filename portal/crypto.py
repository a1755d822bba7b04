"""Encryption at rest for the Isometric credentials: Fernet, with keys that rotate.

Keys come from settings.ENCRYPTION_KEYS, newest first. Everything is encrypted with the newest key
and decrypts with any of them, so a new key can be put in front without downtime.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["InvalidToken", "decrypt", "encrypt", "reencrypt", "uses_development_key"]


def uses_development_key() -> bool:
    return not settings.ENCRYPTION_KEYS


def development_key() -> bytes:
    """A key derived from SECRET_KEY, for a development database only."""
    digest = hashlib.sha256(b"batch-portal encryption key\0" + settings.SECRET_KEY.encode())
    return base64.urlsafe_b64encode(digest.digest())


def fernet() -> MultiFernet:
    if uses_development_key():
        if not settings.DEBUG:
            raise ImproperlyConfigured("ENCRYPTION_KEYS must be set when DEBUG is off.")
        return MultiFernet([Fernet(development_key())])
    try:
        return MultiFernet([Fernet(key.encode()) for key in settings.ENCRYPTION_KEYS])
    except ValueError:
        raise ImproperlyConfigured(
            "Each of ENCRYPTION_KEYS must be a Fernet key: 32 bytes, url-safe base64."
        ) from None


def encrypt(text: str) -> str:
    return fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    """Raises InvalidToken when no configured key opens it."""
    return fernet().decrypt(token.encode()).decode()


def reencrypt(token: str) -> str:
    """The same secret, encrypted with the newest key."""
    return fernet().rotate(token.encode()).decode()
