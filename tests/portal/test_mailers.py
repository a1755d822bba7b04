"""EMAIL_URL becomes the portal's mailer, each backend with only its own options."""

from portal.mailers import mailer


def test_an_smtp_url_gives_the_server_its_login_tls_and_timeout() -> None:
    assert mailer("smtp+tls://portal%40example.com:pa%3Ass@smtp.example.com:587", 7.5) == {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": "smtp.example.com",
            "port": 587,
            "username": "portal@example.com",
            "password": "pa:ss",
            "use_tls": True,
            "use_ssl": False,
            "timeout": 7.5,
        },
    }


def test_the_console_takes_no_option_and_a_file_its_folder() -> None:
    assert mailer("consolemail://", 10) == {
        "BACKEND": "django.core.mail.backends.console.EmailBackend",
        "OPTIONS": {},
    }
    assert mailer("filemail:////var/mail/portal", 10) == {
        "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "OPTIONS": {"file_path": "/var/mail/portal"},
    }
