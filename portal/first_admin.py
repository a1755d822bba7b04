"""The first admin of a new portal: made once, with a random password that is shown only then."""

import secrets

from django.contrib.auth import get_user_model


def create_first_admin(username: str = "admin") -> str | None:
    """A superuser with a random password, if the portal has none: its password, which is
    stored only as a hash (so this is the one chance to show it), else None."""
    User = get_user_model()
    if User.objects.filter(is_superuser=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    User.objects.create_superuser(username=username, password=password)
    return password
