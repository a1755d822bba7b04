"""Each user's own time zone: chosen on the preferences page, then every time the portal shows
says it, and every time a form reads is read, in that zone."""

import csv
import io
import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from batches import imports
from batches.models import Facility, FeedstockType, ProductionBatch
from isometric.emulator import Emulator
from portal.models import IsometricAccount, UserPreferences
from tests.factories import (
    batch_form_data,
    make_account,
    make_batch,
    make_facility,
    make_feedstock_type,
    make_user,
)

pytestmark = pytest.mark.django_db

PREFERENCES = reverse("preferences")
NOON_UTC = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def operator(client: Client, emulator: Emulator) -> User:
    """An operator of an account with a batch that started at noon UTC on 5 March 2026."""
    user = make_user("olivia", operator=True)
    account = make_account("Kilns Ltd", emulator=emulator, members=(user,))
    make_batch(make_facility(account=account), started_at=NOON_UTC, supplier_reference_id="REF-1")
    client.force_login(user)
    return user


def choose(client: Client, zone: str) -> None:
    response = client.post(PREFERENCES, {"time_zone": zone}, follow=True)
    assert response.status_code == 200
    assert "Saved: the portal&#x27;s times are in" in response.content.decode()


def test_times_are_in_the_portal_s_zone_until_the_user_chooses_their_own(
    client: Client, operator: User, settings: Settings
) -> None:
    settings.TIME_ZONE = "Europe/London"
    page = client.get(PREFERENCES).content.decode()
    assert re.search(
        r'<option value="" selected>The portal&#x27;s \(Europe/London\)</option>', page
    )
    assert (
        '<optgroup label="Europe">' in page and '<option value="Europe/Helsinki">Helsinki' in page
    )
    assert "<td>5 Mar 2026 12:00 GMT</td>" in client.get("/batches/").content.decode()

    choose(client, "Europe/Helsinki")
    assert UserPreferences.objects.get(user=operator).time_zone == "Europe/Helsinki"
    assert "<td>5 Mar 2026 14:00 EET</td>" in client.get("/batches/").content.decode()
    page = client.get(PREFERENCES).content.decode()
    assert '<option value="Europe/Helsinki" selected>Helsinki</option>' in page
    assert re.search(r"It is now \d+ \w+ \d{4} \d\d:\d\d EET\.", page)

    choose(client, "")
    assert "<td>5 Mar 2026 12:00 GMT</td>" in client.get("/batches/").content.decode()


def test_each_user_sees_their_own_zone(client: Client, operator: User) -> None:
    choose(client, "Asia/Kolkata")
    other = Client()
    colleague = make_user("oscar", operator=True)
    IsometricAccount.objects.get().members.add(colleague)
    other.force_login(colleague)
    for _ in range(2):  # whichever thread serves whom
        assert "<td>5 Mar 2026 17:30 IST</td>" in client.get("/batches/").content.decode()
        assert "<td>5 Mar 2026 12:00 UTC</td>" in other.get("/batches/").content.decode()


@pytest.mark.parametrize("zone", ["Mars/Olympus", "US/Eastern", "x" * 100, "<script>"])
def test_a_zone_that_is_not_offered_is_refused_at_its_field(
    client: Client, operator: User, zone: str
) -> None:
    response = client.post(PREFERENCES, {"time_zone": zone})
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'id="field-time_zone">.*Select a valid choice', html, re.S)
    assert not UserPreferences.objects.filter(time_zone=zone).exists()


def test_the_batch_form_reads_times_in_the_user_s_zone(client: Client, operator: User) -> None:
    choose(client, "America/St_Johns")  # UTC-2:30 in July
    facility = Facility.objects.get()
    form = client.get(reverse("batches:create"), follow=True).content.decode()
    assert "Times are in America/St_Johns." in form
    data = batch_form_data(
        facility,
        FeedstockType.objects.create(
            account=facility.account, isometric_id="ftt_" + "1" * 16, name="Wood"
        ),
        started_at="2025-07-01T08:00",
        ended_at="2025-07-01T12:00",
    )
    assert client.post(reverse("batches:create"), data).status_code == 302
    batch = ProductionBatch.objects.get(supplier_reference_id="KILN-A-0001")
    assert batch.started_at == datetime(2025, 7, 1, 10, 30, tzinfo=UTC)
    edit = client.get(reverse("batches:edit", args=[batch.pk])).content.decode()
    assert 'value="2025-07-01T08:00"' in edit
    page = client.get(batch.get_absolute_url()).content.decode()
    assert "<dd>1 Jul 2025 08:00 NDT</dd>" in page  # Newfoundland daylight time


def test_the_batch_page_s_times_and_history_say_their_zone(client: Client, operator: User) -> None:
    choose(client, "Europe/Helsinki")
    batch = ProductionBatch.objects.get()
    page = client.get(batch.get_absolute_url()).content.decode()
    assert "<dt>Production started</dt><dd>5 Mar 2026 14:00 EET</dd>" in page
    recorded = re.search(r"<dt>Recorded</dt><dd>([^<]+)</dd>", page)
    assert recorded and re.search(r"\d\d:\d\d EES?T$", recorded.group(1).strip())
    history = page.split('id="history"')[1]
    assert "5 Mar 2026 14:00 EET" in history  # the start it was created with


def test_an_import_reads_its_times_in_the_uploader_s_zone_and_an_export_writes_them(
    client: Client, operator: User
) -> None:
    choose(client, "Asia/Tokyo")
    facility = Facility.objects.get()
    make_feedstock_type("Wood", account=facility.account)
    content = (
        "Facility,Feedstock types,Production started,Production ended,Mass\n"
        f"{facility.name},Wood,2026-03-05 21:00,2026-03-06 03:00,3\n"
    )
    response = client.post(
        reverse("batches:imports"), {"file": SimpleUploadedFile("tokyo.csv", content.encode())}
    )
    assert response.status_code == 302
    # The worker has no request, hence no zone of its own: the import remembers the uploader's.
    while imports.process_due():
        pass
    client.post(response["Location"] + "start/")
    while imports.process_due():
        pass
    imported = ProductionBatch.objects.exclude(supplier_reference_id="REF-1").get()
    assert imported.started_at == datetime(2026, 3, 5, 12, 0, tzinfo=UTC)

    body = client.get(reverse("batches:export"), {"format": "csv"}).getvalue()
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert [row[4] for row in rows[1:]] == ["2026-03-05 21:00", "2026-03-05 21:00"]


def test_the_login_page_needs_no_zone(client: Client) -> None:
    assert client.get(reverse("login")).status_code == 200
