"""The portal's mailer (Django's MAILERS) from one email URL, as django-environ reads them."""

from typing import Any

import environ

SMTP = "django.core.mail.backends.smtp.EmailBackend"
FILE = "django.core.mail.backends.filebased.EmailBackend"


def mailer(url: str, timeout: float) -> dict[str, Any]:
    """A MAILERS entry for `url` (smtp://, smtp+tls://, smtp+ssl://, consolemail://,
    filemail:///path…): each backend takes only its own options."""
    config = environ.Env.email_url_config(url)
    backend = config["EMAIL_BACKEND"]
    options: dict[str, Any] = {}
    if backend == SMTP:
        options = {
            "host": config["EMAIL_HOST"],
            "port": config["EMAIL_PORT"],
            "username": config["EMAIL_HOST_USER"],
            "password": config["EMAIL_HOST_PASSWORD"],
            "use_tls": config.get("EMAIL_USE_TLS", False),
            "use_ssl": config.get("EMAIL_USE_SSL", False),
            "timeout": timeout,
        }
    elif backend == FILE:
        options = {"file_path": config["EMAIL_FILE_PATH"]}
    return {"BACKEND": backend, "OPTIONS": options}
