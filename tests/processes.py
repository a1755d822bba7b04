"""Running the portal's management commands as separate processes against the test database,
as they run in production: a worker is a process, not a thread of the test."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the test database (not the one settings name) for a process to use."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{credentials}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start_manage(*args: str, **environment: Any) -> subprocess.Popen[str]:
    """`manage.py ARGS` with the test settings and database, plus `environment`."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "ENCRYPTION_KEYS": ",".join(settings.ENCRYPTION_KEYS),
        **{name: str(value) for name, value in environment.items()},
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_manage(*args: str, timeout: float = 120, **environment: Any) -> tuple[int, str]:
    process = start_manage(*args, **environment)
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output
