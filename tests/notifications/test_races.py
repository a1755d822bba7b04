"""Several workers at once: each digest is sent once, each event stored once. Threads with a
connection each, so on PostgreSQL the claims really race."""

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core import mail
from django.db import connections
from django.utils import timezone

from notifications.models import Event, Kind, Notification
from notifications.services import _store, account_event_key, send_due
from tests.factories import make_user
from tests.notifications.conftest import People, refuse_credentials, refused_batch

pytestmark = pytest.mark.django_db(transaction=True)


def race(*targets: Callable[[], Any]) -> None:
    """Run the targets at once, each in its own thread and database connection."""
    start = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def run(target: Callable[[], Any]) -> None:
        try:
            start.wait()
            target()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []


def test_two_senders_send_each_digest_once(
    people: People, mailoutbox: list[mail.EmailMessage], monkeypatch: pytest.MonkeyPatch
) -> None:
    operators = [
        make_user(f"operator{n}", operator=True, email=f"operator{n}@example.com")
        for n in range(12)
    ]
    people.account.members.add(*operators)
    refused_batch(people.account, "KILN-A-0001")
    refused_batch(people.account, "KILN-A-0002")
    send_mail = mail.send_mail

    def slow_send_mail(*args: Any, **kwargs: Any) -> int:
        time.sleep(0.02)  # so the senders overlap
        return send_mail(*args, **kwargs)

    monkeypatch.setattr("notifications.services.send_mail", slow_send_mail)

    race(send_due, send_due)

    recipients = sorted(message.to[0] for message in mailoutbox)
    expected = sorted(user.email for user in [people.operator, *operators])
    assert recipients == expected
    assert all("KILN-A-0001" in m.body and "KILN-A-0002" in m.body for m in mailoutbox)
    assert not Notification.objects.filter(sent_at=None).exists()


def test_two_workers_store_an_event_once(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    refuse_credentials(people.account)
    people.account.refresh_from_db()
    kind = Kind.CREDENTIALS_REFUSED
    key = account_event_key(kind, people.account, timezone.now())

    def store() -> None:
        _store(Event(kind=kind, account=people.account, key=key))

    race(store, store)

    assert Event.objects.count() == 1
    assert list(Notification.objects.values_list("user__username", flat=True)) == ["carl"]

    race(send_due, send_due)
    assert [message.to for message in mailoutbox] == [["carl@example.com"]]
    assert Event.objects.count() == 1
