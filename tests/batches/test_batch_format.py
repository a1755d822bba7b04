"""The formatting the batch lists do by hand, for speed: it must still read right and escape."""

from datetime import UTC, datetime

from pytest_django.fixtures import Settings

from batches.remote import RemotePage
from batches.templatetags.batch_format import minute, remote_rows
from isometric.models import Mass
from isometric.models import ProductionBatch as RemoteBatch


def test_a_time_reads_to_the_minute_without_leading_zero_on_the_day() -> None:
    assert minute(datetime(2026, 3, 4, 9, 5)) == "4 Mar 2026 09:05"
    assert minute(datetime(2026, 12, 31, 23, 59)) == "31 Dec 2026 23:59"
    assert minute(None) == ""


def remote_batch(
    batch_id: str, display_name: str | None, reference: str | None, facility_id: str
) -> RemoteBatch:
    return RemoteBatch(
        id=batch_id,
        facility_id=facility_id,
        feedstock_type_ids=(),
        supplier_reference_id=reference,
        kind="biochar",
        started_at=datetime(2026, 3, 4, 23, 30, tzinfo=UTC),
        ended_at=datetime(2026, 3, 5, 1, 0, tzinfo=UTC),
        uploaded_at=None,
        display_name=display_name,
        mass=Mass(magnitude=12.50, unit="tonne"),
    )


def test_remote_rows_escape_isometric_s_text_and_link_the_portal_s_copy(
    settings: Settings,
) -> None:
    settings.TIME_ZONE = "Europe/Berlin"
    page = RemotePage(
        batches=[
            remote_batch("pbt_1", '<script>alert("x")</script>', "R&D-1", "fcl_1"),
            remote_batch("pbt_2", None, None, "fcl_<b>"),
        ],
        unreadable=(),
        local_ids={"pbt_1": 42},
        facility_names={"fcl_1": "Kiln <North>"},
        total_count=2,
        next_cursor=None,
        previous_cursor=None,
    )

    html = remote_rows(page)

    assert "<script>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "R&amp;D-1" in html
    assert "<td>Kiln &lt;North&gt;</td>" in html  # the portal's name for the facility
    assert "<td>fcl_&lt;b&gt;</td>" in html  # else Isometric's id
    assert "<td>5 Mar 2026 00:30</td>" in html  # in the portal's time zone
    assert '<td class="num">12.5 tonne</td>' in html
    first, second = html.split("\n")
    assert '<a href="/batches/42/">Open</a>' in first
    assert "pbt_2" in second and "no supplier reference" in second
    assert "Not in the portal yet" in second and "<td>—</td>" in second
