"""Email notifications: each kind of event reaches the people who may act on it, in at most one
digest an hour, never twice, never another account's, never with a secret."""

import logging
import re
import smtplib
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from batches.models import ProductionBatch, SyncStatus
from batches.services import retry_batch
from batches.sync.queue import Refused, Retry
from notifications.models import Event, Kind, Notification, Recipient
from notifications.services import BATCHES_SHOWN, send_due, set_email_enabled
from portal.models import IsometricAccount, UserPreferences
from tests.factories import jwt_expiring, make_account, make_batch, make_user
from tests.notifications.conftest import (
    People,
    failed_batch,
    later,
    refuse_credentials,
    refused_batch,
    settle,
)

pytestmark = pytest.mark.django_db


def sent_to(outbox: list[mail.EmailMessage]) -> list[str]:
    return sorted(address for message in outbox for address in message.to)


def expiring_token(account: IsometricAccount, in_days: float) -> str:
    """Give the account a token that expires in `in_days` days."""
    token = jwt_expiring(timezone.now() + timedelta(days=in_days))
    account.set_credentials(access_token=token)
    account.save()
    return token


def test_a_refused_batch_is_emailed_to_its_account_s_operators(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    batch = refused_batch(people.account, "KILN-A-0001")

    assert send_due() == 1

    [message] = mailoutbox
    assert message.to == ["olivia@example.com"]
    assert message.subject == "Batch Portal: 1 thing needs your attention"
    assert "Alderley Char" in message.body
    assert "Isometric refused 1 batch. Correct each one" in message.body
    assert f"KILN-A-0001: http://127.0.0.1:8000/batches/{batch.pk}/" in message.body
    assert "http://127.0.0.1:8000/notifications/" in message.body


def test_a_batch_given_up_on_is_emailed_to_its_account_s_operators(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    batch = failed_batch(people.account, "KILN-A-0002")
    assert ProductionBatch.objects.get(pk=batch.pk).sync_status == SyncStatus.FAILED

    send_due()

    [message] = mailoutbox
    assert message.to == ["olivia@example.com"]
    assert "The portal gave up sending 1 batch" in message.body
    assert f"KILN-A-0002: http://127.0.0.1:8000/batches/{batch.pk}/" in message.body


def test_an_attempt_that_will_be_retried_is_not_an_event(people: People) -> None:
    settle(make_batch(account=people.account), Retry("Isometric answered 503", False, 503))

    assert not Event.objects.exists()


def test_refused_credentials_are_emailed_to_credential_admins_once_per_credentials(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    refuse_credentials(people.account)

    send_due()

    [message] = mailoutbox
    assert message.to == ["carl@example.com"]
    assert "Isometric refused this account's credentials" in message.body
    change = f"/admin/portal/isometricaccount/{people.account.pk}/change/"
    assert f"http://127.0.0.1:8000{change}" in message.body
    # Still refused hours later: the same credentials, told once.
    send_due(later(2))
    assert len(mailoutbox) == 1

    people.account.set_credentials(client_secret="a-new-secret-also-refused")
    people.account.save()
    refuse_credentials(people.account)
    send_due(later(4))
    assert sent_to(mailoutbox) == ["carl@example.com", "carl@example.com"]


def test_a_token_expiring_within_14_days_is_emailed_to_credential_admins_once(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    expiring_token(people.account, in_days=20)
    send_due()
    assert mailoutbox == []

    expiring_token(people.account, in_days=10)
    send_due()
    send_due(later(2))

    [message] = mailoutbox
    assert message.to == ["carl@example.com"]
    assert "Its access token expires on" in message.body


def test_times_are_in_the_user_s_own_time_zone(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    UserPreferences.objects.create(user=people.admin, time_zone="Asia/Kolkata")
    expiring_token(people.account, in_days=10)

    send_due()

    [message] = mailoutbox
    assert re.search(r"expires on \d+ \w+ \d{4} \d\d:\d\d IST\.", str(message.body))


def test_a_token_that_has_expired_is_told_as_expired(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    expiring_token(people.account, in_days=-3)

    send_due()

    [message] = mailoutbox
    assert "Its access token expired on" in message.body


def test_events_gathered_in_one_digest_and_the_next_waits_for_the_hour(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    refused_batch(people.account, "KILN-A-0001")
    refused_batch(people.account, "KILN-A-0002")
    failed_batch(people.account, "KILN-A-0003")

    send_due()

    [first] = mailoutbox
    assert first.subject == "Batch Portal: 3 things need your attention"
    for reference in ("KILN-A-0001", "KILN-A-0002", "KILN-A-0003"):
        assert reference in first.body
    assert "Isometric refused 2 batches" in first.body

    refused_batch(people.account, "KILN-A-0004")
    refused_batch(people.account, "KILN-A-0005")
    assert send_due(later(0.5)) == 0
    assert len(mailoutbox) == 1

    assert send_due(later(1)) == 1
    second = mailoutbox[1]
    assert "KILN-A-0004" in second.body and "KILN-A-0005" in second.body
    assert "KILN-A-0001" not in second.body


def test_a_digest_names_some_batches_and_links_to_the_rest(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    for number in range(BATCHES_SHOWN + 3):
        refused_batch(people.account, f"KILN-A-{number:04d}")

    send_due()

    [message] = mailoutbox
    assert f"Isometric refused {BATCHES_SHOWN + 3} batches" in message.body
    assert message.body.count("/batches/") == BATCHES_SHOWN + 1
    assert "and 3 more: http://127.0.0.1:8000/batches/?sync_status=rejected" in message.body


def test_a_batch_settled_before_the_digest_is_left_out_and_the_hour_kept(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    batch = failed_batch(people.account, "KILN-A-0001")
    retry_batch(batch, people.operator)

    assert send_due() == 0
    assert mailoutbox == []
    # The hour was not used up: the next refusal goes at once.
    refused_batch(people.account, "KILN-A-0002")
    assert send_due() == 1
    assert "KILN-A-0001" not in mailoutbox[0].body


def test_a_batch_refused_twice_in_an_hour_is_named_once(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    batch = refused_batch(people.account, "KILN-A-0001")
    settle(batch, Refused("Isometric refused the corrected batch too", []))

    send_due()

    [message] = mailoutbox
    assert message.body.count("KILN-A-0001") == 1
    assert "Isometric refused 1 batch." in message.body


def test_only_the_user_s_own_accounts_events_reach_them(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    refused_batch(people.account, "ALDERLEY-0001")
    refused_batch(people.other_account, "BROCKWELL-0001")
    refuse_credentials(people.other_account)

    send_due()

    by_recipient = {message.to[0]: message.body for message in mailoutbox}
    assert sorted(by_recipient) == ["olivia@example.com", "otto@example.com"]
    assert "ALDERLEY-0001" in by_recipient["olivia@example.com"]
    assert "Brockwell" not in by_recipient["olivia@example.com"]
    assert "BROCKWELL-0001" in by_recipient["otto@example.com"]
    assert "Alderley" not in by_recipient["otto@example.com"]
    # Nobody in B may change its credentials: nobody is told.
    assert "credentials" not in by_recipient["otto@example.com"]


def test_a_user_who_left_the_account_before_the_digest_is_not_told(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    refused_batch(people.account)
    people.account.members.remove(people.operator)

    send_due()

    assert mailoutbox == []


def test_superusers_are_told_of_every_account_and_users_without_an_address_of_none(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    make_user("root", is_staff=True, is_superuser=True, email="root@example.com")
    nameless = make_user("nemo", operator=True)
    people.account.members.add(nameless)
    refused_batch(people.account, "ALDERLEY-0001")
    refused_batch(people.other_account, "BROCKWELL-0001")

    send_due()

    assert sent_to(mailoutbox) == ["olivia@example.com", "otto@example.com", "root@example.com"]
    [root] = [message for message in mailoutbox if message.to == ["root@example.com"]]
    assert "ALDERLEY-0001" in root.body and "BROCKWELL-0001" in root.body


def test_a_user_who_turns_them_off_gets_none(
    people: People, mailoutbox: list[mail.EmailMessage]
) -> None:
    refused_batch(people.account)
    set_email_enabled(people.operator, False)
    refused_batch(people.account)

    send_due()

    assert mailoutbox == []
    assert not Notification.objects.filter(user=people.operator).exists()

    set_email_enabled(people.operator, True)
    refused_batch(people.account, "KILN-A-0009")
    send_due()
    [message] = mailoutbox
    assert "KILN-A-0009" in message.body


def test_a_digest_the_mail_server_refuses_is_tried_again_after_the_hour(
    people: People,
    mailoutbox: list[mail.EmailMessage],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    refused_batch(people.account, "KILN-A-0001")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")

    monkeypatch.setattr("notifications.services.send_mail", refuse)
    assert send_due() == 0
    assert "was not sent (SMTPServerDisconnected)" in caplog.text
    monkeypatch.undo()

    assert send_due(later(0.5)) == 0
    assert send_due(later(1)) == 1
    [message] = mailoutbox
    assert "KILN-A-0001" in message.body
    assert not Notification.objects.filter(sent_at=None).exists()


def test_no_secret_reaches_an_email_or_a_log_line(
    mailoutbox: list[mail.EmailMessage], caplog: pytest.LogCaptureFixture, db: None
) -> None:
    caplog.set_level(logging.DEBUG)
    secret, token = "client-secret-Zk3Rq8Wm2Tn6", "access-token-Yp1Xv5Lb9Qs4"
    account = make_account("Kilns Ltd", client_secret=secret, access_token=token)
    admin = make_user("ada", is_staff=True, is_superuser=True, email="ada@example.com")
    account.members.add(admin)
    refused_batch(account)
    failed_batch(account)
    refuse_credentials(account)

    send_due()

    [message] = mailoutbox
    assert "Kilns Ltd" in message.body
    for text in (message.subject, message.body, caplog.text):
        assert secret not in text and token not in text
        assert secret[-4:] not in text and token[-4:] not in text


def test_old_events_are_forgotten(people: People) -> None:
    refused_batch(people.account)
    Event.objects.update(created_at=timezone.now() - timedelta(days=91))
    refused_batch(people.account)

    send_due()

    assert Event.objects.count() == 1
    assert Notification.objects.count() == 1


def test_a_recipient_is_kept_for_each_user_told(people: People) -> None:
    refused_batch(people.account)
    assert list(Recipient.objects.values_list("user__username", flat=True)) == ["olivia"]
    assert Event.objects.get().kind == Kind.BATCH_REJECTED
