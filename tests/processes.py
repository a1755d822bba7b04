"""Running the portal's management commands as separate processes against the test database,
as they run in production: a worker is a process, not a thread of the test."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import requests
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


def free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return int(listener.getsockname()[1])


def start_gunicorn(
    port: int, output: IO[str] | int = subprocess.PIPE, **environment: str
) -> subprocess.Popen[str]:
    """The portal served as the image serves it (gunicorn with gunicorn.conf.py) on `port`,
    over the test database, with `environment` (the test settings unless it names others).
    Its output is kept, to read once it is stopped, unless it goes to `output`."""
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url(),
            "ALLOWED_HOSTS": "localhost",
            "PORT": str(port),
            "WEB_CONCURRENCY": "1",
            **environment,
        },
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
    )


def get_when_up(url: str, **headers: str) -> requests.Response:
    """GET `url` once a server has started listening there (within 30 s)."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return requests.get(url, headers=headers, allow_redirects=False, timeout=5)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
