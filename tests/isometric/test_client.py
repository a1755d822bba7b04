"""The client against the emulator over real HTTP: every method, paging, and the look-up."""

import json
import math
from datetime import UTC, datetime

import pytest

from isometric.client import Client
from isometric.emulator import Emulator
from isometric.errors import NotFound
from isometric.models import Mass, Organisation, ProductionBatch
from tests.isometric.canned_server import CannedServer
from tests.isometric.factories import STARTED_AT, new_batch


def request_count(emulator: Emulator, route: str) -> int:
    stats = emulator.stats()["requests"]
    assert isinstance(stats, dict)
    return sum(stats.get(route, {}).values())


def test_create_returns_the_stored_batch(emulator: Emulator, isometric_client: Client) -> None:
    before = datetime.now(UTC)

    batch = isometric_client.create_production_batch(new_batch(emulator, "REF-1"))

    assert batch.id.startswith("ptb_")
    assert batch.supplier_reference_id == "REF-1"
    assert batch.facility_id == emulator.facility_ids[0]
    assert batch.feedstock_type_ids == tuple(emulator.feedstock_type_ids[:2])
    assert batch.started_at == STARTED_AT
    assert batch.mass == Mass(magnitude=12.5, unit="tonne", standard_deviation=0.4)
    assert batch.kind == "biochar"
    assert batch.display_name
    assert batch.uploaded_at is not None
    assert before <= batch.uploaded_at <= datetime.now(UTC)
    assert emulator.stats()["created_by_supplier_reference_id"] == {"REF-1": 1}


def test_get_returns_what_create_returned(emulator: Emulator, isometric_client: Client) -> None:
    created = isometric_client.create_production_batch(new_batch(emulator, display_name="Mine"))

    fetched = isometric_client.get_production_batch(created.id)

    assert fetched == created
    assert fetched.display_name == "Mine"


def test_delete_removes_the_batch(emulator: Emulator, isometric_client: Client) -> None:
    created = isometric_client.create_production_batch(new_batch(emulator))

    isometric_client.delete_production_batch(created.id)

    assert emulator.production_batches() == []
    with pytest.raises(NotFound):
        isometric_client.get_production_batch(created.id)


def test_list_returns_one_page(emulator: Emulator, isometric_client: Client) -> None:
    emulator.add_production_batches(12)

    page = isometric_client.list_production_batches(first=5)

    expected = [batch["id"] for batch in emulator.production_batches()[:5]]
    assert [batch.id for batch in page.nodes] == expected
    assert page.total_count == 12
    assert page.page_info.has_next_page
    assert not page.page_info.has_previous_page


def test_list_filters_by_supplier_reference(emulator: Emulator, isometric_client: Client) -> None:
    emulator.add_production_batches(5)
    created = isometric_client.create_production_batch(new_batch(emulator, "REF-7"))

    page = isometric_client.list_production_batches(supplier_reference_id="REF-7")

    assert page.nodes == [created]
    assert page.total_count == 1


def test_iterate_follows_every_cursor(emulator: Emulator, isometric_client: Client) -> None:
    emulator.add_production_batches(23)

    batches = list(isometric_client.iter_production_batches(page_size=5))

    assert [batch.id for batch in batches] == [b["id"] for b in emulator.production_batches()]
    assert request_count(emulator, "GET /production_batches") == 5


def test_feedstock_types_list_and_iterate(emulator: Emulator, isometric_client: Client) -> None:
    page = isometric_client.list_feedstock_types(first=3)
    everything = list(isometric_client.iter_feedstock_types(page_size=3))

    assert page.total_count == 4
    assert everything[:3] == page.nodes
    assert {item.id for item in everything} == set(emulator.feedstock_type_ids)
    assert {item.name for item in everything} >= {"Rice husk", "Pine wood chips"}


def test_get_organisation(emulator: Emulator, isometric_client: Client) -> None:
    organisation = isometric_client.get_organisation()

    assert organisation == Organisation(emulator.organisation["id"], emulator.organisation["name"])


def test_consecutive_calls_share_one_connection(
    emulator: Emulator, isometric_client: Client
) -> None:
    isometric_client.create_production_batch(new_batch(emulator))
    for _ in range(10):
        isometric_client.list_production_batches(first=50)
    isometric_client.get_organisation()

    assert emulator.stats()["connections_opened"] == 1


def test_every_request_carries_credentials_and_a_user_agent() -> None:
    body = json.dumps({"id": "org_1GB56M1ST1S0GVNA", "name": "Char Co"}).encode()
    with (
        CannedServer(200, body) as server,
        Client(server.url, "the-secret", "the-token") as client,
    ):
        client.get_organisation()

    headers = server.received[0]
    assert headers["X-Client-Secret"] == "the-secret"
    assert headers["Authorization"] == "Bearer the-token"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"].startswith("batch-portal/")
    assert len(headers["User-Agent"]) > len("batch-portal/")


def test_the_environment_s_proxy_is_used(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emulator answers an absolute-URL request, so it can stand in for a forward proxy.
    monkeypatch.setenv("HTTP_PROXY", emulator.base_url.split("/mrv")[0])
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    unreachable = "http://isometric.invalid/mrv/v0"
    with Client(unreachable, emulator.client_secret, emulator.access_token) as client:
        organisation = client.get_organisation()

    assert organisation.id == emulator.organisation["id"]


@pytest.mark.parametrize("page_size", [1, 7, 50])
def test_pages_forwards_and_backwards_without_gaps_or_repeats(
    emulator: Emulator, isometric_client: Client, page_size: int
) -> None:
    emulator.add_production_batches(137)
    pages = math.ceil(137 / page_size)

    forwards: list[ProductionBatch] = []
    after = None
    for number in range(1, pages + 1):
        page = isometric_client.list_production_batches(first=page_size, after=after)
        assert page.total_count == 137
        assert page.page_info.has_previous_page == (number > 1)
        assert page.page_info.has_next_page == (number < pages)
        forwards.extend(page.nodes)
        after = page.page_info.end_cursor

    backwards: list[ProductionBatch] = []
    before = None
    for number in range(1, pages + 1):
        page = isometric_client.list_production_batches(last=page_size, before=before)
        assert page.total_count == 137
        assert page.page_info.has_next_page == (number > 1)
        assert page.page_info.has_previous_page == (number < pages)
        backwards[:0] = page.nodes
        before = page.page_info.start_cursor

    ids = [batch.id for batch in forwards]
    assert len(set(ids)) == 137
    assert ids == [batch["id"] for batch in emulator.production_batches()]
    assert forwards == sorted(forwards, key=lambda batch: (batch.uploaded_at, batch.id))
    assert backwards == forwards


def test_cursors_are_stable(emulator: Emulator, isometric_client: Client) -> None:
    emulator.add_production_batches(30)

    first = isometric_client.list_production_batches(first=10)
    again = isometric_client.list_production_batches(first=10)

    assert first.page_info == again.page_info


def test_paging_survives_batches_added_and_deleted_meanwhile(
    emulator: Emulator, isometric_client: Client
) -> None:
    emulator.add_production_batches(40)
    original = [batch["id"] for batch in emulator.production_batches()]
    deleted = original[25]

    seen: list[str] = []
    after = None
    while True:
        page = isometric_client.list_production_batches(first=10, after=after)
        seen.extend(batch.id for batch in page.nodes)
        emulator.add_production_batches(3)
        emulator.delete_production_batch(deleted)
        if not page.page_info.has_next_page:
            break
        after = page.page_info.end_cursor

    assert len(seen) == len(set(seen))
    assert set(original) - {deleted} <= set(seen)


def test_find_uses_the_filter(emulator: Emulator, isometric_client: Client) -> None:
    emulator.add_production_batches(60)
    created = isometric_client.create_production_batch(new_batch(emulator, "REF-FIND"))

    assert isometric_client.find_production_batch("REF-FIND") == created
    assert isometric_client.find_production_batch("REF-NOWHERE") is None
    assert request_count(emulator, "GET /production_batches") == 2


def test_find_scans_every_page_when_the_filter_is_ignored(
    emulator: Emulator, isometric_client: Client
) -> None:
    emulator.add_production_batches(120)
    created = isometric_client.create_production_batch(new_batch(emulator, "REF-FIND"))
    emulator.configure(ignore_supplier_reference_filter=True)

    assert isometric_client.find_production_batch("REF-FIND") == created
    # One filtered page that did not match, then all three pages (the batch is the last).
    assert request_count(emulator, "GET /production_batches") == 4
    assert isometric_client.find_production_batch("REF-NOWHERE") is None


def test_find_on_an_empty_list_returns_none(emulator: Emulator, isometric_client: Client) -> None:
    emulator.configure(ignore_supplier_reference_filter=True)

    assert isometric_client.find_production_batch("REF-1") is None
