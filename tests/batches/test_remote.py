"""The "In Isometric" page: the account's batches live from the emulator, a page at a time."""

import re
from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import User
from django.test import Client
from pytest_django.fixtures import Settings

from batches import sync
from batches.models import Facility, ProductionBatch
from isometric.client import Client as IsometricClient
from isometric.emulator import Emulator
from isometric.models import Mass, NewProductionBatch
from portal.models import IsometricAccount
from tests.factories import log_in, make_account, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def logged_in(operator: User) -> None:
    """Every test here is an operator of the account's."""


URL = "/batches/isometric/"
HTMX = {"HX-Request": "true"}


@pytest.fixture
def account(account: IsometricAccount, emulator: Emulator) -> IsometricAccount:
    """The operator's account, whose organisation holds 120 batches in Isometric."""
    emulator.add_production_batches(120)
    return account


def api_calls(emulator: Emulator) -> int:
    requests = emulator.stats()["requests"]
    assert isinstance(requests, dict)
    return sum(sum(outcomes.values()) for outcomes in requests.values())


def link(page: str, rel: str) -> str:
    found = re.search(rf'rel="{rel}" href="([^"]+)"', page)
    assert found, f"no {rel} link"
    return found.group(1).replace("&amp;", "&")


def references(page: str) -> list[str]:
    return re.findall(r'<tr><td>[^<]*<div class="sub">([^<]+)</div></td>', page)


def uploaded(emulator: Emulator) -> list[str]:
    """The references of Isometric's batches, oldest upload first (Isometric's order)."""
    return [
        b["supplier_reference_id"] or "no supplier reference" for b in emulator.production_batches()
    ]


def test_the_newest_come_first_and_pages_go_on_to_older_ones_and_back(
    client: Client, account: IsometricAccount, emulator: Emulator
) -> None:
    newest_first = uploaded(emulator)[::-1]

    first = client.get(URL, {"size": 50}).content.decode()
    assert "120 batches in Isometric" in first
    assert '<option value="newest" selected>Newest first</option>' in first
    assert references(first) == newest_first[:50]
    assert 'rel="prev"' not in first

    second = client.get(link(first, "next")).content.decode()
    third = client.get(link(second, "next")).content.decode()
    assert references(second) == newest_first[50:100]
    assert references(third) == newest_first[100:]
    assert 'rel="next"' not in third

    back = client.get(link(third, "prev")).content.decode()
    assert references(back) == newest_first[50:100]
    top = client.get(link(back, "prev")).content.decode()
    assert references(top) == newest_first[:50]
    assert 'rel="prev"' not in top


def test_pages_forward_and_back_by_cursor_with_the_total_oldest_first(
    client: Client, account: IsometricAccount, emulator: Emulator
) -> None:
    expected = uploaded(emulator)

    first = client.get(URL, {"size": "50", "order": "oldest"}).content.decode()
    assert "120 batches in Isometric" in first
    assert references(first) == expected[:50]
    assert 'rel="prev"' not in first

    second = client.get(link(first, "next")).content.decode()
    third = client.get(link(second, "next")).content.decode()
    assert references(second) == expected[50:100]
    assert references(third) == expected[100:]
    assert 'rel="next"' not in third

    back = client.get(link(third, "prev")).content.decode()
    assert references(back) == expected[50:100]
    assert "size=50" in link(back, "next") and "order=oldest" in link(back, "next")


def test_an_unknown_order_is_refused_at_its_field_and_the_newest_shown(
    client: Client, account: IsometricAccount, emulator: Emulator
) -> None:
    page = client.get(URL, {"size": "10", "order": "random"}).content.decode()
    assert re.search(r'id="field-order">.*Select a valid choice', page, re.S)
    assert references(page) == uploaded(emulator)[::-1][:10]


def test_consecutive_pages_reuse_one_connection_to_isometric(
    client: Client, account: IsometricAccount, emulator: Emulator
) -> None:
    first = client.get(URL, {"size": 10}).content.decode()
    second = client.get(link(first, "next")).content.decode()
    client.get(link(second, "prev"))

    assert api_calls(emulator) == 3
    assert emulator.stats()["connections_opened"] == 1


@pytest.mark.parametrize("size", [10, 25, 50])
def test_each_page_size_costs_one_api_call_per_page(
    client: Client, account: IsometricAccount, emulator: Emulator, size: int
) -> None:
    emulator.reset()
    emulator.add_production_batches(120)
    page = client.get(URL, {"size": size}).content.decode()
    assert api_calls(emulator) == 1
    assert len(references(page)) == size
    assert f'<option value="{size}" selected>' in page


def test_rows_link_to_the_portal_s_copy_or_say_there_is_none(
    client: Client, account: IsometricAccount, emulator: Emulator
) -> None:
    sync.pull(account)
    *_, second, first = emulator.production_batches()
    account.facilities.filter(isometric_id=first["facility_id"]).update(name="Kiln Nørth")
    mirrored = ProductionBatch.objects.get(remote_id=first["id"])
    ProductionBatch.objects.filter(remote_id=second["id"]).delete()

    page = client.get(URL, {"size": 10}).content.decode()

    assert f'href="/batches/{mirrored.pk}/">Open</a>' in page
    assert page.count("Not in the portal yet") == 1
    assert "<td>Kiln Nørth</td>" in page  # the portal's name for Isometric's facility id


def test_isometric_s_text_is_escaped_and_its_times_are_in_the_portal_s_time_zone(
    client: Client,
    account: IsometricAccount,
    emulator: Emulator,
    isometric_client: IsometricClient,
    settings: Settings,
) -> None:
    settings.TIME_ZONE = "Europe/Berlin"
    named, unnamed = emulator.facilities()[:2]
    Facility.objects.create(account=account, isometric_id=named["id"], name="Kiln <North>")
    for facility, reference, name in [
        (named, "R&D-1", '<script>alert("x")</script>'),
        (unnamed, "R&D-2", None),
    ]:
        isometric_client.create_production_batch(
            NewProductionBatch(
                facility_id=facility["id"],
                feedstock_type_ids=emulator.feedstock_type_ids[:1],
                supplier_reference_id=reference,
                started_at=datetime(2026, 3, 4, 23, 30, tzinfo=UTC),
                ended_at=datetime(2026, 3, 5, 1, 0, tzinfo=UTC),
                mass=Mass(magnitude=12.5, unit="tonne"),
                display_name=name,
            )
        )

    first = client.get(URL, {"ref": "R&D-1"}).content.decode()
    second = client.get(URL, {"ref": "R&D-2"}).content.decode()

    assert "<script>" not in first
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in first
    assert '<div class="sub">R&amp;D-1</div>' in first
    assert "<td>Kiln &lt;North&gt;</td>" in first  # the portal's name for the facility
    assert f"<td>{unnamed['id']}</td>" in second  # else Isometric's id
    assert "<td>5 Mar 2026 00:30 CET</td>" in first  # in the portal's time zone
    assert '<td class="num">12.500 tonne</td>' in first
    assert "Not in the portal yet" in first


def test_a_lookup_by_supplier_reference_uses_the_api_filter(
    client: Client, account: IsometricAccount, emulator: Emulator
) -> None:
    wanted = next(b for b in emulator.production_batches() if b["supplier_reference_id"])
    reference = wanted["supplier_reference_id"]

    page = client.get(URL, {"ref": reference}).content.decode()

    assert references(page) == [reference]
    assert "1 batch in Isometric with the reference" in page
    missing = client.get(URL, {"ref": "NOT-THERE"}).content.decode()
    assert "Isometric has no batch with this reference." in missing


def test_htmx_gets_only_the_table_and_history_restore_the_whole_page(
    client: Client, account: IsometricAccount
) -> None:
    fragment = client.get(URL, headers=HTMX).content.decode()
    assert fragment.lstrip().startswith('<div id="remote-results"')
    assert "<html" not in fragment

    restored = client.get(URL, headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in restored.content.decode()


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"error_503_rate": 1.0}, "Isometric is having trouble right now"),
        ({"error_500_rate": 1.0}, "Isometric is having trouble right now"),
        ({"rate_limited_rate": 1.0, "retry_after_seconds": 7}, "Try again in 7 seconds"),
        ({"reset_rate": 1.0}, "Isometric cannot be reached right now"),
    ],
)
def test_when_isometric_fails_the_page_says_so_with_try_again(
    client: Client, account: IsometricAccount, emulator: Emulator, fault: dict, says: str
) -> None:
    emulator.configure(**fault)

    response = client.get(URL, {"size": 10})

    page = response.content.decode()
    assert response.status_code == 200
    assert says in page
    assert re.search(r'href="/batches/isometric/\?size=10"[^>]*>Try again</a>', page)
    emulator.configure(**dict.fromkeys([k for k in fault if k.endswith("rate")], 0.0))
    assert "120 batches in Isometric" in client.get(URL, {"size": 10}).content.decode()


def test_a_slow_isometric_and_refused_credentials_are_explained(
    client: Client, operator: User, emulator: Emulator, settings: Settings
) -> None:
    slow = make_account("Slow", emulator=emulator, members=(operator,))
    refused = make_account("Refused", emulator=emulator, members=(operator,), access_token="x.y.z")
    emulator.configure(latency_ms=1500)
    settings.ISOMETRIC_TIMEOUT = (1.0, 0.3)
    slow_page = client.get(URL, {"account": slow.pk}).content.decode()
    assert "Isometric is taking too long to answer" in slow_page

    emulator.configure(latency_ms=0)
    refused_page = client.get(URL, {"account": refused.pk}).content.decode()
    assert "Isometric refused this account&#x27;s credentials" in refused_page


def test_a_stale_or_tampered_cursor_gets_a_clear_message_and_a_way_back(
    client: Client, account: IsometricAccount
) -> None:
    page = client.get(URL, {"size": "25", "after": "bm90LWEtY3Vyc29y"}).content.decode()

    assert "This page link is no longer valid" in page
    assert 'href="/batches/isometric/?size=25"' in page and "Go to the first page" in page


def test_a_link_with_both_page_markers_goes_back_from_before(
    client: Client, account: IsometricAccount, emulator: Emulator
) -> None:
    """Isometric refuses `after` with `before`: the portal sends `before` alone, as its own
    list reads such a link."""
    for order, expected in [("newest", uploaded(emulator)[::-1]), ("oldest", uploaded(emulator))]:
        first = client.get(URL, {"size": "10", "order": order}).content.decode()
        second = client.get(link(first, "next")).content.decode()

        page = client.get(link(second, "prev") + "&after=bm90LWEtY3Vyc29y")

        assert references(page.content.decode()) == expected[:10]


def test_an_unknown_page_size_is_refused_at_its_field_and_the_default_used(
    client: Client, account: IsometricAccount
) -> None:
    page = client.get(URL, {"size": 1000}).content.decode()

    assert "Select a valid choice" in page
    assert "120 batches in Isometric" in page


def test_without_an_account_the_page_says_so(client: Client) -> None:
    log_in(client, make_user("nadia", operator=True))

    page = client.get(URL).content.decode()

    assert "You are not a member of any Isometric account yet" in page


def test_a_member_without_the_batch_permission_is_refused_before_isometric_is_asked(
    client: Client, account: IsometricAccount, emulator: Emulator
) -> None:
    stranger = make_user("sam")
    account.members.add(stranger)
    log_in(client, stranger)
    emulator.reset()

    response = client.get(URL)

    assert response.status_code == 403
    assert "batches in Isometric" not in response.content.decode()
    assert api_calls(emulator) == 0  # no request spent on the organisation's rate limit
