"""The portal's settings for the test suite: production's, less what a test client cannot do."""

import os
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet

from portal.settings import *  # noqa: F403

SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Serve static files from the source folders, as in development: tests do not run collectstatic.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
# A key of the test run's own, which the worker processes a test starts are given.
ENCRYPTION_KEYS = env.list("ENCRYPTION_KEYS", default=[Fernet.generate_key().decode()])  # noqa: F405
# On SQLite the test database is a file, so that worker processes started by tests share it.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": str(Path(tempfile.gettempdir()) / f"batch-portal-test-{os.getpid()}.sqlite3")
    }
