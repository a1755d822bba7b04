import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from batches import selectors
from batches.models import Facility, ProductionBatch, SyncStatus
from batches.selectors import DEFAULT_SORT, Cursor
from tests.factories import make_account, make_batch, make_facility, make_feedstock_type

pytestmark = pytest.mark.django_db

LIST = reverse("batches:list")


def references(response: Any) -> list[str]:
    return re.findall(r"REF-[\w%-]+", response.content.decode())


def cursor(response: Any, rel: str) -> str | None:
    """The cursor in the page's Next or Previous link, or None when there is no such link."""
    match = re.search(
        rf'rel="{rel}" href="[^"]*(?:after|before)=([\w-]+)"', response.content.decode()
    )
    return match.group(1) if match else None


def follow(response: Any, rel: str) -> str:
    token = cursor(response, rel)
    assert token, f"no {rel} link"
    return token


@pytest.fixture
def sixty(settings: Any) -> list[ProductionBatch]:
    """60 batches a day apart, newest first; pages of 25 give 25, 25 and 10."""
    settings.BATCH_PAGE_SIZE = 25
    facility, feedstock = make_facility(), make_feedstock_type()
    now = timezone.now()
    return [
        make_batch(
            facility,
            [feedstock],
            started_at=now - timedelta(days=n + 1),
            supplier_reference_id=f"REF-{n:03d}",
        )
        for n in range(60)
    ]


def test_list_shows_newest_first_with_status_badges(operator_client: Client) -> None:
    old = make_batch(started_at=timezone.now() - timedelta(days=9), supplier_reference_id="REF-old")
    new = make_batch(started_at=timezone.now() - timedelta(days=1), supplier_reference_id="REF-new")
    ProductionBatch.objects.filter(pk=new.pk).update(
        sync_status=SyncStatus.FAILED, next_attempt_at=None
    )
    response = operator_client.get(LIST)
    assert response.status_code == 200
    assert references(response) == ["REF-new", "REF-old"]
    assert 'class="badge badge-failed">Failed<' in response.content.decode()
    assert old.get_absolute_url() in response.content.decode()


def test_pages_forward_to_the_end_and_back_to_the_start(
    operator_client: Client, sixty: list[ProductionBatch]
) -> None:
    expected = [f"REF-{n:03d}" for n in range(60)]
    first = operator_client.get(LIST)
    assert references(first) == expected[:25]
    assert cursor(first, "prev") is None
    second = operator_client.get(LIST, {"after": follow(first, "next")})
    assert references(second) == expected[25:50]
    last = operator_client.get(LIST, {"after": follow(second, "next")})
    assert references(last) == expected[50:]
    assert cursor(last, "next") is None
    back = operator_client.get(LIST, {"before": follow(last, "prev")})
    assert references(back) == expected[25:50]
    top = operator_client.get(LIST, {"before": follow(back, "prev")})
    assert references(top) == expected[:25]
    assert cursor(top, "prev") is None


def test_going_back_from_a_short_offset_lands_on_a_full_first_page(
    operator_client: Client, sixty: list[ProductionBatch]
) -> None:
    near_top = DEFAULT_SORT.cursor_of(sixty[3]).encode()
    response = operator_client.get(LIST, {"before": near_top})
    assert references(response) == [f"REF-{n:03d}" for n in range(25)]


def test_a_page_past_the_end_says_so(operator_client: Client, sixty: list[ProductionBatch]) -> None:
    past_end = DEFAULT_SORT.cursor_of(sixty[-1]).encode()
    html = operator_client.get(LIST, {"after": past_end}).content.decode()
    assert "No more batches." in html


@pytest.mark.parametrize(
    "token",
    ["garbage", "!!!", "MjAyNi0wMS0wMXwx", "", "x" * 5000, Cursor(timezone.now(), 1).encode()[:-3]],
)
def test_a_tampered_cursor_shows_the_first_page_with_a_message(
    operator_client: Client, sixty: list[ProductionBatch], token: str
) -> None:
    response = operator_client.get(LIST, {"after": token})
    assert response.status_code == 200
    assert references(response)[:1] == ["REF-000"]
    if token:
        assert "That page link is not valid any more" in response.content.decode()


def test_search_matches_display_name_reference_and_remote_id(operator_client: Client) -> None:
    make_batch(supplier_reference_id="REF-kiln-north", display_name="Northern Kiln run")
    make_batch(supplier_reference_id="REF-south", display_name="South yard")
    make_batch(supplier_reference_id="REF-remote", remote_id="ptb_1G8QT5ZAB1S0XSDW")
    assert references(operator_client.get(LIST, {"q": "NORTHERN"})) == ["REF-kiln-north"]
    assert references(operator_client.get(LIST, {"q": "ref-sou"})) == ["REF-south"]
    assert references(operator_client.get(LIST, {"q": "8qt5z"})) == ["REF-remote"]
    assert "No batches match." in operator_client.get(LIST, {"q": "nothing"}).content.decode()


def test_search_treats_wildcards_literally(operator_client: Client) -> None:
    make_batch(supplier_reference_id="REF-100%")
    make_batch(supplier_reference_id="REF-1000")
    assert references(operator_client.get(LIST, {"q": "100%"})) == ["REF-100%"]
    assert references(operator_client.get(LIST, {"q": "_"})) == []


def test_filters_by_facility_feedstock_status_and_date_range(operator_client: Client) -> None:
    north, south = make_facility("North"), make_facility("South")
    wood, husk = make_feedstock_type("Wood"), make_feedstock_type("Husk")
    day = timezone.make_aware(datetime(2026, 3, 15, 12))
    make_batch(north, [wood], started_at=day, supplier_reference_id="REF-a")
    make_batch(
        south, [wood, husk], started_at=day - timedelta(days=10), supplier_reference_id="REF-b"
    )
    make_batch(north, [husk], started_at=day - timedelta(days=20), supplier_reference_id="REF-c")
    ProductionBatch.objects.filter(supplier_reference_id="REF-c").update(
        sync_status="failed", next_attempt_at=None
    )

    def found(**params: str) -> list[str]:
        return references(operator_client.get(LIST, params))

    assert found(facility=str(north.pk)) == ["REF-a", "REF-c"]
    assert found(feedstock_type=str(husk.pk)) == ["REF-b", "REF-c"]
    assert found(sync_status="failed") == ["REF-c"]
    assert found(started_from="2026-03-05", started_to="2026-03-15") == ["REF-a", "REF-b"]
    assert found(started_to="2026-03-05") == ["REF-b", "REF-c"]
    assert found(facility=str(north.pk), feedstock_type=str(wood.pk)) == ["REF-a"]
    assert found(q="ref-b", feedstock_type=str(husk.pk)) == ["REF-b"]


def test_filters_and_search_carry_over_to_the_next_page(
    operator_client: Client, sixty: list[ProductionBatch]
) -> None:
    first = operator_client.get(LIST, {"q": "ref-0", "sync_status": "pending"})
    html = first.content.decode()
    assert re.search(r'rel="next" href="\?q=ref-0&amp;sync_status=pending&amp;after=', html)
    second = operator_client.get(
        LIST, {"q": "ref-0", "sync_status": "pending", "after": follow(first, "next")}
    )
    assert references(second) == [f"REF-{n:03d}" for n in range(25, 50)]


@pytest.mark.parametrize(
    "params",
    [
        {"facility": "fcl_unknown"},
        {"feedstock_type": "<script>"},
        {"sync_status": "exploded"},
        {"started_from": "2026-13-45"},
        {"started_to": "yesterday"},
        {"q": "x" * 10_000},
        {"after": "x", "before": "y"},
        {"page": "-1"},
    ],
)
def test_bad_filter_values_get_a_field_message_never_a_500(
    operator_client: Client, params: dict[str, str]
) -> None:
    make_batch(supplier_reference_id="REF-only")
    response = operator_client.get(LIST, params)
    assert response.status_code == 200
    assert "<script>" not in response.content.decode()


def test_unknown_facility_is_reported_at_its_field(operator_client: Client) -> None:
    html = operator_client.get(LIST, {"facility": "fcl_unknown"}).content.decode()
    assert re.search(r'id="field-facility">.*Select a valid choice', html, re.S)


def test_htmx_request_gets_only_the_results_fragment(operator_client: Client) -> None:
    make_batch(supplier_reference_id="REF-frag")
    full = operator_client.get(LIST)
    fragment = operator_client.get(LIST, headers={"HX-Request": "true"})
    assert full.content.decode().startswith("<!doctype html>")
    assert fragment.content.decode().strip().startswith('<div id="results"')
    assert "<html" not in fragment.content.decode()
    assert references(fragment) == ["REF-frag"]
    assert fragment["Vary"] and "HX-Request" in fragment["Vary"]


def test_list_page_works_without_javascript(operator_client: Client) -> None:
    html = operator_client.get(LIST).content.decode()
    assert re.search(r'<form class="filters" method="get" action="/batches/"', html)
    assert '<button type="submit" class="button">Search</button>' in html
    assert 'hx-push-url="true"' in html


def test_status_counts_are_shown(operator_client: Client) -> None:
    make_batch()
    failed = make_batch()
    ProductionBatch.objects.filter(pk=failed.pk).update(
        sync_status=SyncStatus.FAILED, next_attempt_at=None
    )
    html = operator_client.get(LIST).content.decode()
    assert re.search(r"badge-pending\">Pending</span> 1<", html)
    assert re.search(r"badge-failed\">Failed</span> 1<", html)


def test_status_counts_stop_at_the_cap(
    operator_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selectors, "COUNT_CAP", 2)
    for _ in range(3):
        make_batch()
    make_batch(sync_status=SyncStatus.REJECTED)
    html = operator_client.get(LIST).content.decode()
    assert re.search(r"badge-pending\">Pending</span> 2\+<", html)
    assert re.search(r"badge-rejected\">Rejected</span> 1<", html)
    assert re.search(r"badge-syncing\">Syncing</span> 0<", html)


def test_chosen_filters_stay_chosen(operator_client: Client) -> None:
    north = make_facility(name="North kiln")
    make_facility(name="South kiln")
    html = operator_client.get(LIST, {"facility": str(north.pk), "sync_status": "failed"})
    page = html.content.decode()
    assert re.search(rf'<option value="{north.pk}" selected>North kiln</option>', page)
    assert re.search(r'<option value="failed" selected>Failed</option>', page)
    assert page.count(" selected>") == 3  # and "All feedstock types"
    assert '<select name="facility" id="id_facility">' in page


def test_masses_show_three_decimals_and_whole_ones_none(operator_client: Client) -> None:
    make_batch(mass_magnitude=Decimal("100.000"))
    make_batch(mass_magnitude=Decimal("12.500"))
    html = operator_client.get(LIST).content.decode()
    assert '<td class="num">100 tonne</td>' in html
    assert '<td class="num">12.500 tonne</td>' in html


def test_start_times_are_shown_in_the_portal_time_zone_saying_which(
    operator_client: Client, settings: Any
) -> None:
    make_batch(started_at=datetime(2026, 3, 5, 12, 0, tzinfo=UTC))
    assert "<td>5 Mar 2026 12:00 UTC</td>" in operator_client.get(LIST).content.decode()
    settings.TIME_ZONE = "Europe/Helsinki"
    assert "<td>5 Mar 2026 14:00 EET</td>" in operator_client.get(LIST).content.decode()


# --- Sorting ----------------------------------------------------------------------------------


@pytest.fixture
def varied(settings: Any) -> list[ProductionBatch]:
    """Batches of three facilities, every status and masses with ties, some starting at the
    same moment; pages of 4."""
    settings.BATCH_PAGE_SIZE = 4
    # Names not in the order of their rows, and two facilities of the same name.
    facilities = [make_facility("Oak yard"), make_facility("Birch kiln"), make_facility("Oak yard")]
    feedstock = make_feedstock_type()
    day = timezone.now() - timedelta(days=30)
    statuses = [status for status in SyncStatus.values if status != SyncStatus.VOIDED]
    batches = []
    for n in range(23):
        batch = make_batch(
            facilities[n % 3],
            [feedstock],
            started_at=day + timedelta(hours=n // 3),
            supplier_reference_id=f"REF-{n:03d}",
            mass_magnitude=Decimal(n % 5) + Decimal("0.5"),
        )
        status = statuses[n % len(statuses)]
        unsettled = status in (SyncStatus.PENDING, SyncStatus.SYNCING)
        ProductionBatch.objects.filter(pk=batch.pk).update(
            sync_status=status, next_attempt_at=timezone.now() if unsettled else None
        )
        batches.append(ProductionBatch.objects.select_related("facility").get(pk=batch.pk))
    return batches


STATUS_LABELS = dict(SyncStatus.choices)


def in_order(batches: list[ProductionBatch], sort: str) -> list[str]:
    """The references in the order the list promises for `sort`."""
    newest_first = sorted(batches, key=lambda b: (b.started_at, b.pk), reverse=True)
    descending = sort.startswith("-")
    match sort.removeprefix("-"):
        case "start":
            ordered = sorted(batches, key=lambda b: (b.started_at, b.pk), reverse=descending)
        case "mass":
            ordered = sorted(
                batches, key=lambda b: (b.mass_magnitude, b.started_at, b.pk), reverse=descending
            )
        case "facility":  # by name, then row; each facility's batches newest first
            ordered = sorted(
                newest_first,
                key=lambda b: (b.facility.name, b.facility_id),
                reverse=descending,
            )
            ordered = [b for group in _groups(ordered, "facility_id") for b in group]
        case "status":
            ordered = sorted(
                newest_first, key=lambda b: STATUS_LABELS[b.sync_status], reverse=descending
            )
            ordered = [b for group in _groups(ordered, "sync_status") for b in group]
    return [b.supplier_reference_id for b in ordered]


def _groups(batches: list[ProductionBatch], field: str) -> list[list[ProductionBatch]]:
    """Runs of batches with the same value, each newest first (sorted() keeps a reversed
    group's order reversed too)."""
    groups: list[list[ProductionBatch]] = []
    for batch in batches:
        if groups and getattr(groups[-1][0], field) == getattr(batch, field):
            groups[-1].append(batch)
        else:
            groups.append([batch])
    return [sorted(group, key=lambda b: (b.started_at, b.pk), reverse=True) for group in groups]


SORTS = ["-start", "start", "-mass", "mass", "facility", "-facility", "status", "-status"]


@pytest.mark.parametrize("sort", SORTS)
def test_every_sort_pages_through_every_batch_once_both_ways(
    operator_client: Client, varied: list[ProductionBatch], sort: str
) -> None:
    expected = in_order(varied, sort)
    pages, response = [], operator_client.get(LIST, {"sort": sort})
    while True:
        pages.append(references(response))
        if not cursor(response, "next"):
            break
        response = operator_client.get(LIST, {"sort": sort, "after": follow(response, "next")})
    assert [ref for page in pages for ref in page] == expected
    assert [len(page) for page in pages] == [4, 4, 4, 4, 4, 3]
    for page in reversed(pages[:-1]):
        response = operator_client.get(LIST, {"sort": sort, "before": follow(response, "prev")})
        assert references(response) == page
    assert cursor(response, "prev") is None


def test_sort_headers_link_to_each_order_and_say_which_is_in_force(
    operator_client: Client, varied: list[ProductionBatch]
) -> None:
    html = operator_client.get(LIST).content.decode()
    assert re.search(
        r'<th aria-sort="descending"><a class="sort" href="\?sort=start">Started', html
    )
    assert '<a class="sort" href="?sort=-mass">Mass</a>' in html
    assert '<a class="sort" href="?sort=facility">Facility</a>' in html
    assert '<a class="sort" href="?sort=status">Status</a>' in html
    by_mass = operator_client.get(LIST, {"sort": "-mass"}).content.decode()
    assert re.search(r'aria-sort="descending"><a class="sort" href="\?sort=mass">Mass', by_mass)
    assert by_mass.count("aria-sort=") == 1


def test_sort_links_keep_the_filters_and_start_from_the_first_page(
    operator_client: Client, varied: list[ProductionBatch]
) -> None:
    first = operator_client.get(LIST, {"q": "ref", "sort": "mass"})
    second = operator_client.get(LIST, {"q": "ref", "sort": "mass", "after": follow(first, "next")})
    html = second.content.decode()
    assert '<a class="sort" href="?q=ref&amp;sort=-mass">Mass' in html
    assert '<a class="sort" href="?q=ref&amp;sort=facility">Facility' in html
    assert re.search(r'rel="next" href="\?q=ref&amp;sort=mass&amp;after=', html)
    # The filters' form keeps the order when a filter changes.
    assert '<option value="mass" selected>Lightest first</option>' in html


def test_the_filters_offer_every_order(operator_client: Client) -> None:
    html = operator_client.get(LIST).content.decode()
    offered = re.findall(
        r'<option value="(-?[a-z]+)">', html.split('name="sort"')[1].split("</select>")[0]
    )
    assert sorted(offered) == sorted(selectors.SORTS)


@pytest.mark.parametrize("sort", ["weight", "--mass", "-", "<script>", "x" * 500])
def test_an_unknown_sort_is_refused_at_its_field_and_the_newest_shown_first(
    operator_client: Client, varied: list[ProductionBatch], sort: str
) -> None:
    response = operator_client.get(LIST, {"sort": sort})
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'id="field-sort">.*Select a valid choice', html, re.S)
    assert references(response) == in_order(varied, "-start")[:4]
    assert "<script>" not in html


@pytest.mark.parametrize(("issued_by", "used_by"), [("-mass", "status"), ("status", "-start")])
def test_a_page_link_of_another_order_is_stale(
    operator_client: Client, varied: list[ProductionBatch], issued_by: str, used_by: str
) -> None:
    token = follow(operator_client.get(LIST, {"sort": issued_by}), "next")
    response = operator_client.get(LIST, {"sort": used_by, "after": token})
    assert "That page link is not valid any more" in response.content.decode()
    assert references(response) == in_order(varied, used_by)[:4]


def test_a_facility_page_link_of_another_account_is_stale(
    operator_client: Client, varied: list[ProductionBatch]
) -> None:
    foreign = make_facility(account=make_account())
    token = selectors.Cursor(timezone.now(), 1, foreign.pk).encode()
    response = operator_client.get(LIST, {"sort": "facility", "after": token})
    assert "That page link is not valid any more" in response.content.decode()


def test_sorting_reads_a_bounded_number_of_rows_per_page(
    operator_client: Client, varied: list[ProductionBatch]
) -> None:
    """Each page is a query or one per facility or status it spans, however deep it is."""
    token = follow(operator_client.get(LIST, {"sort": "status"}), "next")
    with CaptureQueriesContext(connection) as queries:
        operator_client.get(LIST, {"sort": "status", "after": token})
    walked = [
        q["sql"]
        for q in queries
        if q["sql"].startswith('SELECT "batches_productionbatch"."id"') and "ORDER BY" in q["sql"]
    ]
    assert 1 <= len(walked) <= len(SyncStatus.values)
    assert all('"sync_status" = ' in sql for sql in walked)


@pytest.mark.parametrize("sort", SORTS)
def test_an_index_gives_each_order(sort: str, varied: list[ProductionBatch]) -> None:
    """No sort of the rows: deep pages read the index from the cursor on."""
    order = selectors.Sort.of(sort, Facility.objects.all())
    position = order.cursor_of(varied[10])
    segment = next(order.segments(ProductionBatch.objects.all(), position, backward=False))
    with connection.cursor() as db:
        if connection.vendor == "postgresql":
            db.execute("SET LOCAL enable_sort = off")
            db.execute("SET LOCAL enable_seqscan = off")
        plan = segment[:5].explain()
    assert "TEMP B-TREE" not in plan and "Sort" not in plan and "batch_" in plan, plan


# --- The total and the status filter ----------------------------------------------------------


def test_the_list_says_how_many_batches_match(
    operator_client: Client, varied: list[ProductionBatch]
) -> None:
    assert "23 batches" in operator_client.get(LIST).content.decode()
    fragment = operator_client.get(LIST, {"q": "ref-00"}, headers={"HX-Request": "true"})
    assert "10 batches" in fragment.content.decode()
    assert "1 batch<" in operator_client.get(LIST, {"q": "ref-001"}).content.decode()
    assert "0 batches" in operator_client.get(LIST, {"q": "none"}).content.decode()


def test_the_total_stops_at_the_cap(
    operator_client: Client, varied: list[ProductionBatch], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selectors, "COUNT_CAP", 20)
    assert "20+ batches" in operator_client.get(LIST).content.decode()
    assert "3 batches" in operator_client.get(LIST, {"q": "ref-02"}).content.decode()


def test_the_status_filter_offers_every_status_and_each_works(
    operator_client: Client, varied: list[ProductionBatch]
) -> None:
    voided = make_batch(supplier_reference_id="REF-void", sync_status=SyncStatus.VOIDED)
    html = operator_client.get(LIST).content.decode()
    for status, label in SyncStatus.choices:
        assert f'<option value="{status}">{label}</option>' in html
        shown = references(operator_client.get(LIST, {"sync_status": status, "sort": "start"}))
        expected = [b for b in [*varied, voided] if b.sync_status == status]
        assert shown == in_order(expected, "start")[:4], status
