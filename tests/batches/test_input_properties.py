"""Properties of every input a user controls: whatever is posted or put in a URL, the portal
answers without a server error, and whatever it stores reads back.

Each example runs in a savepoint rolled back at its end, so examples share the test's fixtures
and nothing else. The plausible values of a batch (the shape a browser sends) are mixed with
anything at all in a few fields per example, so that most examples reach the save and the
pages that read the batch back, and every field still meets every kind of garbage.
"""

import base64
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.http import QueryDict
from django.test import Client, override_settings
from django.utils import timezone
from django.utils.html import escape
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from batches import sync
from batches.forms import BatchFilterForm, ProductionBatchForm, RemoteBatchesForm
from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus
from batches.remote import PAGE_SIZES
from batches.selectors import SORTS, Cursor
from batches.services import save_batch
from isometric.emulator import Emulator
from portal.accounts import accounts_of
from portal.models import IsometricAccount
from tests.factories import make_account, make_batch, make_facility, make_feedstock_type

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
STALE_LIST_PAGE = "That page link is not valid any more"
STALE_REMOTE_PAGE = "This page link is no longer valid"


def properties(examples: int) -> settings:
    # Function-scoped fixtures are shared by the examples on purpose: each example rolls back.
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


# --- Strategies -------------------------------------------------------------------------------

# What a browser can send: any Unicode scalar value (a lone surrogate has no UTF-8 form).
ANY_CHARACTER = st.characters(exclude_categories=["Cs"])
# What an operator types: the same less NUL, which every text field refuses.
TYPED_CHARACTER = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
# The time zones the portal may be configured in: both ends of the offsets, DST, half hours.
ZONES = ["UTC", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/London", "America/St_Johns"]
NUMBER_EDGES = [
    "999999999999.999999",
    "999999999.999999",
    "999999999.9999995",
    "1000000000",
    "0.000001",
    "0.0000001",
    "1e30",
    "1E-7",
    "1e999999999",
    "NaN",
    "-NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "-0",
    "0",
    "-0.000001",
    "+1",
    " 12.5 ",
    "12,5",
    "1_000",
    "0x10",
    "\u0661\u0662\u066b\u0665",  # 12.5 in Arabic-Indic digits
    "9" * 400,
    "1" + "0" * 40 + ".5",
]
OFFSETS = ["", "Z", "+00:00", "+14:00", "-14:00", "+05:45", "+23:59", "-23:59", "+24:00", "+99:99"]
MALFORMED_MOMENTS = [
    "0000-01-01T00:00",
    "2024-02-30T10:00",
    "2024-13-01T00:00",
    "2024-01-01T24:00",
    "2024-01-01T10:00:60",
    "10000-01-01T00:00",
    "2024-01-01",
    "01/02/2024 10:00",
    "0001-01-01T00:00+14:00",
    "9999-12-31T23:59:59.999999-14:00",
]
ODD_IDS = [
    "99999999999999999999",
    str(2**63),
    str(2**63 - 1),
    "-1",
    "0",
    "1.0",
    "1e3",
    " 1",
    "\u0661",
]


def texts(
    around: int, characters: st.SearchStrategy[str] = ANY_CHARACTER
) -> st.SearchStrategy[str]:
    """Short texts, and texts of about `around` characters (where a length limit lies)."""
    return st.one_of(
        st.text(characters, max_size=12),
        st.text(characters, min_size=around - 3, max_size=around + 3),
    )


def number_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NUMBER_EDGES),
        st.decimals().map(str),
        st.from_regex(r"[-+]?\d{1,40}(\.\d{0,40})?([eE][-+]?\d{1,5})?", fullmatch=True),
        texts(20),
    )


def moment_texts() -> st.SearchStrategy[str]:
    """Date-times of any year 1 to 9999 in the forms people and browsers write them, with any
    offset (some impossible), and malformed ones."""
    written = st.builds(
        lambda moment, separator, precision, offset: (
            moment.isoformat(separator, precision) + offset
        ),
        st.datetimes(),
        st.sampled_from("T "),
        st.sampled_from(["minutes", "seconds", "microseconds"]),
        st.sampled_from(OFFSETS),
    )
    return st.one_of(written, st.sampled_from(MALFORMED_MOMENTS), texts(30))


def date_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.dates().map(date.isoformat),
        st.sampled_from(["0000-01-01", "2024-02-30", "9999-12-31", "10000-01-01", "01/02/2024"]),
        texts(12),
    )


def row_ids(pks: list[int]) -> st.SearchStrategy[str]:
    """Ids as posted: real rows' (the user's or not), any integer, and not integers at all."""
    return st.one_of(
        st.sampled_from(pks).map(str),
        st.integers().map(str),
        st.sampled_from(ODD_IDS),
        texts(10),
    )


def cursor_texts(real: Sequence[str] = ()) -> st.SearchStrategy[str]:
    """Page markers: the list's own form ("isoformat|pk", base64) around every edge of its
    range, base64 of anything, garbage, very long ones, and `real` ones."""
    moments = st.one_of(
        st.builds(
            lambda moment, offset: moment.isoformat() + offset,
            st.datetimes(),
            st.sampled_from(OFFSETS),
        ),
        st.sampled_from(MALFORMED_MOMENTS),
        texts(30),
    )
    pks = st.one_of(st.integers().map(str), st.sampled_from(ODD_IDS), texts(10))
    raw = st.one_of(
        st.builds(lambda moment, pk: f"{moment}|{pk}".encode(), moments, pks),
        st.builds(
            lambda moment, pk, key: Cursor(moment, pk, key).encode().encode(),
            st.datetimes(timezones=st.just(UTC)),
            st.integers(min_value=1, max_value=2**63),
            # Each order's own key: a mass, a status, a facility's id, or anything.
            st.one_of(
                st.none(),
                st.decimals(),
                st.sampled_from(SyncStatus.values),
                st.integers(),
                texts(10),
            ),
        ),
        st.binary(),
    )
    encoded = raw.map(lambda data: base64.urlsafe_b64encode(data).decode().rstrip("="))
    samples = [st.sampled_from(real)] if real else []
    return st.one_of(
        *samples, encoded, texts(40), st.text(ANY_CHARACTER, min_size=400, max_size=1200)
    )


@dataclass(frozen=True)
class Rows:
    """The operator's account, a second account the operator joins in some examples, and
    another organisation's rows (whose ids are someone else's)."""

    account: IsometricAccount
    second: IsometricAccount
    foreign_ids: list[int]
    # Now, fixed for the test: a strategy's bounds must not move while Hypothesis shrinks.
    now: datetime

    def facility_ids(self, account: IsometricAccount) -> list[int]:
        return list(Facility.objects.filter(account=account).values_list("pk", flat=True))

    def feedstock_type_ids(self, account: IsometricAccount) -> list[int]:
        return list(FeedstockType.objects.filter(account=account).values_list("pk", flat=True))


@dataclass(frozen=True)
class BatchPost:
    data: dict[str, Any]
    joined: bool  # the operator is in the second account too: the form asks which account
    zone: str


FORM_FIELDS = tuple(ProductionBatchForm.base_fields)


@st.composite
def batch_posts(draw: st.DrawFn, rows: Rows) -> BatchPost:
    """A batch form as posted: plausible values, except in a few fields anything at all."""
    joined = draw(st.booleans())
    chosen = draw(st.sampled_from([rows.account, rows.second] if joined else [rows.account]))
    facility_ids, feedstock_ids = rows.facility_ids(chosen), rows.feedstock_type_ids(chosen)
    every_id = [
        *rows.foreign_ids,
        *rows.facility_ids(rows.second),
        *rows.feedstock_type_ids(rows.second),
        *facility_ids,
        *feedstock_ids,
    ]
    now = rows.now
    started = draw(
        st.one_of(
            st.datetimes(min_value=now - timedelta(days=400), max_value=now),
            st.datetimes(min_value=datetime(1899, 12, 30), max_value=now + timedelta(days=2)),
        )
    )
    run = timedelta(minutes=draw(st.integers(min_value=-60, max_value=10 * 24 * 60)))
    precision = draw(st.sampled_from(["minutes", "minutes", "seconds", "microseconds"]))
    plausible: dict[str, st.SearchStrategy[Any]] = {
        "account": st.just(str(chosen.pk) if joined else None),
        "facility": st.sampled_from(facility_ids).map(str),
        "feedstock_types": st.lists(
            st.sampled_from(feedstock_ids).map(str), min_size=1, max_size=3
        ),
        "supplier_reference_id": texts(100, TYPED_CHARACTER),
        "display_name": texts(100, TYPED_CHARACTER),
        "started_at": st.just(started.isoformat("T", precision)),
        "ended_at": st.just(min(started + run, datetime.max).isoformat("T", precision)),
        "mass_magnitude": masses(),
        "mass_unit": st.sampled_from(["tonne", "kg"]),
        "mass_standard_deviation": st.one_of(st.just(""), masses(Decimal(0))),
        # Mostly confirmed, so that unusual values get saved too.
        "confirm_unusual": st.sampled_from(["on", "on", None]),
    }
    anything: dict[str, st.SearchStrategy[Any]] = {
        "account": row_ids([rows.account.pk, rows.second.pk, *rows.foreign_ids]),
        "facility": row_ids(every_id),
        "feedstock_types": st.lists(row_ids(every_id), max_size=4),
        "supplier_reference_id": texts(100),
        "display_name": texts(100),
        "started_at": moment_texts(),
        "ended_at": moment_texts(),
        "mass_magnitude": number_texts(),
        "mass_unit": texts(20),
        "mass_standard_deviation": number_texts(),
        "confirm_unusual": st.one_of(st.sampled_from(["true", "false", "0", "1", ""]), texts(5)),
    }
    wild = draw(st.sets(st.sampled_from(FORM_FIELDS), max_size=3))
    data = {}
    for name in FORM_FIELDS:
        value = draw(anything[name] if name in wild else plausible[name])
        if value is not None:
            data[name] = value
    return BatchPost(data, joined, draw(st.sampled_from(ZONES)))


def masses(least: Decimal = Decimal("0.000001")) -> st.SearchStrategy[str]:
    """Masses at the column's precision: of a batch's size, and anywhere in the column's range
    (12 integer digits, every one drawn), most of which the form must refuse or read back."""
    return st.one_of(
        st.decimals(min_value=least, max_value=Decimal(10**4), places=6).map(str),
        st.from_regex(r"[1-9][0-9]{0,11}(\.[0-9]{1,6})?", fullmatch=True),
    )


# --- Fixtures and helpers ---------------------------------------------------------------------


@pytest.fixture
def rows(account: IsometricAccount, operator: User, emulator: Emulator) -> Rows:
    """Two facilities and feedstock types in each of the operator's possible accounts, and
    settled batches for the lists (so the only batch due for sync is an example's)."""
    second = make_account("Retorts Ltd", emulator=emulator)
    foreign = make_account("Someone Else Ltd")
    owners = (account, second)
    facilities = [make_facility(n, account=o) for o in owners for n in ("Kiln A", "Kiln B")]
    feedstock_types = [make_feedstock_type(n, account=o) for o in owners for n in ("Wood", "Husk")]
    for started_at in (datetime(1900, 1, 1, tzinfo=UTC), timezone.now() - timedelta(days=1)):
        for _ in range(3):
            make_batch(
                facilities[0],
                feedstock_types[:1],
                started_at=started_at,
                sync_status=SyncStatus.SYNCED,
            )
    foreign_ids = [make_facility(account=foreign).pk, make_feedstock_type(account=foreign).pk]
    return Rows(account, second, foreign_ids, now=timezone.now().replace(tzinfo=None))


@contextmanager
def rolled_back(client: Client) -> Iterator[None]:
    """One example's world: its writes undone at the end, no messages left from the last one."""
    client.cookies.pop("messages", None)
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def page_text(response: Any) -> str:
    return response.content.decode()


def assert_errors_shown(response: Any, form: BatchFilterForm | RemoteBatchesForm) -> None:
    """Each invalid field's message is on the page; a broken page link is told in a banner."""
    text = page_text(response)
    for name, errors in form.errors.items():
        if name in ("after", "before"):
            assert STALE_LIST_PAGE in text
        else:
            for message in errors:
                assert escape(message) in text, (name, message)


def query(params: dict[str, str]) -> QueryDict:
    data = QueryDict(mutable=True)
    data.update(params)
    return data


# --- The batch form ---------------------------------------------------------------------------


def assert_reads_back(client: Client, admin_client: Client, url: str) -> None:
    """The saved batch loads on every page that shows it, its names find it, and the sync
    worker can take it."""
    pk = int(url.strip("/").rsplit("/", 1)[-1])
    for path in ("/batches/", url, f"{url}edit/"):
        assert client.get(path).status_code == 200, path
    assert client.get("/batches/", headers=HTMX).status_code == 200
    batch = ProductionBatch.objects.get(pk=pk)
    for term in filter(None, (batch.supplier_reference_id, batch.display_name)):
        assert f'href="{url}"' in page_text(client.get("/batches/", {"q": term})), term
    for path in ("/admin/batches/productionbatch/", f"/admin/batches/productionbatch/{pk}/change/"):
        assert admin_client.get(path).status_code == 200, path
    claims = sync.claim_due(10)
    assert [claim.batch.pk for claim in claims] == [pk]
    for claim in claims:
        sync.release(claim)


@properties(150)
@given(data=st.data())
def test_the_batch_form_answers_every_post_and_what_it_saves_reads_back(
    client: Client, admin_client: Client, operator: User, rows: Rows, data: st.DataObject
) -> None:
    post = data.draw(batch_posts(rows))
    with rolled_back(client), override_settings(TIME_ZONE=post.zone):
        if post.joined:
            rows.second.members.add(operator)
        response = client.post("/batches/new/", post.data)
        assert response.status_code in (200, 302)
        event("saved" if response.status_code == 302 else "refused")
        if response.status_code == 302:
            assert_reads_back(client, admin_client, response["Location"])


# The form's fields stored as they are; the account and the feedstock types are checked apart.
STORED_FIELDS = [
    name for name in ProductionBatchForm.Meta.fields if name not in ("account", "feedstock_types")
]


@properties(200)
@given(data=st.data())
def test_the_form_stores_exactly_what_it_cleaned(
    client: Client, operator: User, rows: Rows, data: st.DataObject
) -> None:
    post = data.draw(batch_posts(rows))
    with rolled_back(client), override_settings(TIME_ZONE=post.zone):
        if post.joined:
            rows.second.members.add(operator)
        before = ProductionBatch.objects.count()
        form = ProductionBatchForm(post.data, accounts=accounts_of(operator))
        if not form.is_valid():
            event("refused")
            assert ProductionBatch.objects.count() == before
            return
        event("saved")
        saved = save_batch(form, operator)
        assert saved is not None
        stored = ProductionBatch.objects.get(pk=saved.pk)
        cleaned = form.cleaned_data
        for name in STORED_FIELDS:
            assert getattr(stored, name) == cleaned[name], name
        assert set(stored.feedstock_types.all()) == set(cleaned["feedstock_types"])
        assert stored.account == cleaned.get("account", rows.account)


# --- The lists' parameters --------------------------------------------------------------------


@st.composite
def list_params(draw: st.DrawFn, rows: Rows) -> dict[str, str]:
    ids = [*rows.foreign_ids, *rows.facility_ids(rows.account)]
    ids += rows.feedstock_type_ids(rows.account)
    statuses = st.one_of(st.sampled_from([*SyncStatus.values, ""]), texts(10))
    return draw(
        st.fixed_dictionaries(
            {},
            optional={
                "q": texts(100),
                "facility": row_ids(ids),
                "feedstock_type": row_ids(ids),
                "sync_status": statuses,
                "started_from": date_texts(),
                "started_to": date_texts(),
                "sort": st.one_of(st.sampled_from(SORTS), texts(10)),
                "after": cursor_texts(),
                "before": cursor_texts(),
            },
        )
    )


@properties(200)
@given(data=st.data())
def test_the_batch_list_answers_every_query(
    client: Client, operator: User, rows: Rows, data: st.DataObject
) -> None:
    params, htmx = data.draw(list_params(rows)), data.draw(st.booleans())
    with rolled_back(client):
        response = client.get("/batches/", params, headers=HTMX if htmx else {})
        assert response.status_code == 200
        if not htmx:
            assert_errors_shown(response, BatchFilterForm(query(params), accounts_of(operator)))


@pytest.fixture
def real_cursors(client: Client, operator: User, emulator: Emulator) -> list[str]:
    """Isometric's own page markers for the operator's account's 30 batches."""
    emulator.add_production_batches(30)
    with IsometricAccount.objects.get(members=operator).client() as isometric:
        first = isometric.list_production_batches(first=10)
        last = isometric.list_production_batches(last=10)
    markers = [first.page_info.end_cursor, last.page_info.start_cursor]
    return [marker for marker in markers if marker]


@properties(100)
@given(data=st.data())
def test_in_isometric_answers_every_query_and_explains_a_bad_page_link(
    client: Client, operator: User, rows: Rows, real_cursors: list[str], data: st.DataObject
) -> None:
    joined, htmx = data.draw(st.booleans()), data.draw(st.booleans())
    account_ids = [rows.account.pk, rows.second.pk, *rows.foreign_ids]
    params = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "size": st.one_of(st.sampled_from([str(size) for size in PAGE_SIZES]), texts(5)),
                "ref": texts(100),
                "account": row_ids(account_ids),
                "after": cursor_texts(real_cursors),
                "before": cursor_texts(real_cursors),
            },
        )
    )
    with rolled_back(client):
        if joined:
            rows.second.members.add(operator)
        response = client.get("/batches/isometric/", params, headers=HTMX if htmx else {})
        assert response.status_code == 200
        form = RemoteBatchesForm(query(params), list(accounts_of(operator)))
        form.is_valid()
        if not htmx:
            assert_errors_shown(response, form)
        marker = form.cleaned_data.get("before") or form.cleaned_data.get("after")
        if marker and marker not in real_cursors:
            assert STALE_REMOTE_PAGE in page_text(response)


@properties(150)
@given(data=st.data())
def test_the_admin_changelist_answers_every_query(
    admin_client: Client, rows: Rows, data: st.DataObject
) -> None:
    ids = [*rows.foreign_ids, *rows.facility_ids(rows.account)]
    params = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "q": texts(100),
                "sync_status__exact": st.one_of(st.sampled_from(SyncStatus.values), texts(10)),
                "facility__id__exact": row_ids(ids),
                "o": st.one_of(st.from_regex(r"[-0-9.]{0,12}", fullmatch=True), texts(10)),
                "p": st.one_of(st.integers().map(str), texts(10)),
            },
        )
    )
    with rolled_back(admin_client):
        response = admin_client.get("/admin/batches/productionbatch/", params)
        assert response.status_code in (200, 302)
        if response.status_code == 302:
            assert response["Location"].endswith("?e=1")
