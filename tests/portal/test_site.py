import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.db import connection
from django.test import Client
from django.urls import reverse

from tests.factories import log_in, make_account, make_user

ROOT = Path(__file__).resolve().parents[2]


def run_django(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh process with the portal set up under the given environment."""
    script = f"import django; django.setup()\n{code}"
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.django_db
def test_healthz_answers_200_without_login(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.parametrize(
    "database_url",
    ["sqlite:////nonexistent/folder/portal.sqlite3", "postgres://portal@127.0.0.1:1/portal"],
)
def test_healthz_answers_503_when_the_database_does_not(database_url: str) -> None:
    result = run_django(
        "from django.test import Client\n"
        "r = Client().get('/healthz', headers={'host': 'localhost'})\n"
        "print(r.status_code, r.content.decode())",
        DATABASE_URL=database_url,
    )
    assert result.stdout.split(" ", 1) == [
        "503",
        '{"status": "unavailable", "database": "unreachable"}\n',
    ], result.stderr


def check_deploy(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
            "DEBUG": "0",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_silent_with_a_production_environment(tmp_path: Path) -> None:
    result = check_deploy(
        tmp_path,
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="portal.example.com",
        ENCRYPTION_KEYS=Fernet.generate_key().decode(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_requires_encryption_keys(tmp_path: Path) -> None:
    result = check_deploy(
        tmp_path, SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="portal.example.com"
    )
    assert result.returncode != 0
    assert "portal.E001" in result.stderr


def test_check_deploy_refuses_a_key_that_is_not_a_fernet_key(tmp_path: Path) -> None:
    result = check_deploy(
        tmp_path,
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="portal.example.com",
        ENCRYPTION_KEYS="not-a-key",
    )
    assert result.returncode != 0
    assert "portal.E002" in result.stderr


def test_check_deploy_flags_the_development_secret_key(tmp_path: Path) -> None:
    result = check_deploy(tmp_path)
    assert result.returncode != 0
    assert "security.W009" in result.stderr


@pytest.mark.django_db
def test_sqlite_waits_for_the_write_lock_instead_of_failing() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite settings only")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone() == (20000,)
    assert settings.DATABASES["default"]["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_sqlite_file_database_uses_wal(tmp_path: Path) -> None:
    result = run_django(
        "from django.db import connection\n"
        "c = connection.cursor(); c.execute('PRAGMA journal_mode'); print(c.fetchone()[0])",
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
    )
    assert result.stdout.strip() == "wal", result.stderr


def test_a_database_connection_serves_request_after_request(tmp_path: Path) -> None:
    """As a WSGI server calls the portal (the test client never closes connections)."""
    result = run_django(
        "from wsgiref.util import setup_testing_defaults\n"
        "from django.core.handlers.wsgi import WSGIHandler\n"
        "from django.db import connection\n"
        "handler, kept = WSGIHandler(), []\n"
        "for _ in range(3):\n"
        "    environ = {'PATH_INFO': '/healthz', 'HTTP_HOST': 'localhost'}\n"
        "    setup_testing_defaults(environ)\n"
        "    response = handler(environ, lambda status, headers: None)\n"
        "    assert b'ok' in b''.join(response)\n"
        "    response.close()\n"
        "    kept.append(connection.connection)\n"
        "print(kept[0] is not None and all(c is kept[0] for c in kept))",
        DATABASE_URL=f"sqlite:///{tmp_path / 'portal.sqlite3'}",
    )
    assert result.stdout.strip() == "True", result.stderr


@pytest.mark.django_db
def test_every_page_but_login_and_healthz_needs_login(client: Client) -> None:
    assert client.get(reverse("dashboard"))["Location"] == "/login/?next=/"
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    assert client.get(reverse("login")).status_code == 200


@pytest.mark.django_db
def test_login_with_good_and_bad_password(client: Client) -> None:
    make_account(members=(make_user("olivia", operator=True),))
    bad = client.post(reverse("login"), {"username": "olivia", "password": "wrong"})
    assert bad.status_code == 200
    assert "Please enter a correct username and password" in bad.content.decode()
    good = client.post(reverse("login"), {"username": "olivia", "password": "correct horse"})
    assert good["Location"] == reverse("dashboard")
    home = client.get(reverse("dashboard")).content.decode()
    assert "Record a batch" in home and "olivia" in home


@pytest.mark.django_db
def test_logout_is_a_post(client: Client) -> None:
    log_in(client, make_user())
    assert client.post(reverse("logout"))["Location"] == reverse("login")
    assert client.get(reverse("dashboard")).status_code == 302


@pytest.mark.django_db
def test_user_without_a_role_is_told_how_to_get_access(client: Client) -> None:
    log_in(client, make_user())
    html = client.get(reverse("dashboard")).content.decode()
    assert "Ask an admin to add you to the Operators group" in html
    assert reverse("batches:list") not in html


@pytest.mark.django_db
def test_pages_carry_a_strict_content_security_policy(client: Client) -> None:
    policy = client.get(reverse("login"))["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy


@pytest.mark.django_db
def test_ensure_admin_creates_one_admin_once() -> None:
    from io import StringIO

    from django.contrib.auth.models import User
    from django.core.management import call_command

    out = StringIO()
    call_command("ensure_admin", stdout=out)
    call_command("ensure_admin", stdout=out)
    assert out.getvalue().count("Created the first admin. Log in as admin / ") == 1
    password = out.getvalue().rsplit("/ ", 1)[1].strip()
    assert User.objects.get(is_superuser=True).check_password(password)


@pytest.mark.django_db
def test_ensure_admin_leaves_a_portal_with_a_superuser_alone() -> None:
    from io import StringIO

    from django.contrib.auth.models import User
    from django.core.management import call_command

    make_user("root", is_superuser=True, is_staff=True)
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    assert out.getvalue() == ""
    assert not User.objects.filter(username="admin").exists()


@pytest.mark.django_db
def test_a_user_in_no_account_is_not_offered_to_record_a_batch(client: Client) -> None:
    log_in(client, make_user("nadia", operator=True))

    home = client.get(reverse("dashboard")).content.decode()

    assert reverse("batches:create") not in home
    assert "You are not a member of any Isometric account yet" in home


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/admin/r/nope/1/", "/admin/r/99999999999999999999/1/"])
def test_view_on_site_of_no_content_type_is_404(client: Client, path: str) -> None:
    log_in(client, make_user("root", is_superuser=True, is_staff=True))

    assert client.get(path).status_code == 404
