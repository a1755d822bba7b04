"""The Back button, a double click or a resubmitted POST records a batch once: its reference is
generated when the form is shown, and the same form arriving again leads to the batch it saved."""

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from batches.forms import REFERENCE_ALPHABET, ProductionBatchForm
from batches.models import Facility, FeedstockType, ProductionBatch
from portal.models import IsometricAccount
from tests.factories import (
    batch_form_data,
    log_in,
    make_account,
    make_batch,
    make_facility,
    make_feedstock_type,
    make_user,
)

pytestmark = pytest.mark.django_db

ALREADY_RECORDED = "This batch was already recorded; here it is."
TAKEN_AT_FIELD = (
    'id="id_supplier_reference_id_error"><p>Another batch already has this supplier reference.'
)


def shown_reference(client: Client) -> str:
    """The reference in the form an operator is shown after following "Record a batch"."""
    html = client.get(reverse("batches:create"), follow=True).content.decode()
    match = re.search(r'name="supplier_reference_id" value="([^"]*)"', html)
    assert match, "the reference field has a value"
    return match.group(1)


def a_minute_before(moment: str) -> str:
    return f"{datetime.fromisoformat(moment) - timedelta(minutes=1):%Y-%m-%dT%H:%M}"


@pytest.fixture
def data(
    operator_client: Client, facility: Facility, feedstock_type: FeedstockType
) -> dict[str, Any]:
    """The form as shown, filled in and posted as it is."""
    return batch_form_data(
        facility,
        feedstock_type,
        supplier_reference_id=shown_reference(operator_client),
        display_name="Kiln A, week 47",
        mass_standard_deviation="0.1",
    )


def test_the_form_shows_a_generated_reference_the_operator_may_replace(
    operator_client: Client,
) -> None:
    response = operator_client.get(reverse("batches:create"), follow=True)
    assert "Generated for this batch. You may replace it with your own" in response.content.decode()
    first, second = shown_reference(operator_client), shown_reference(operator_client)
    pattern = rf"PB-{timezone.localdate():%Y%m%d}-[{REFERENCE_ALPHABET}]{{6}}"
    assert re.fullmatch(pattern, first), first
    assert first != second, "each new form is a batch of its own"


def test_the_form_address_keeps_its_reference_for_going_back(operator_client: Client) -> None:
    """Going Back to the form may fetch it anew, and the browser restores only what was typed:
    the reference must come again from the address."""
    response = operator_client.get(reverse("batches:create"))
    assert response.status_code == 302
    url = response["Location"]
    assert re.fullmatch(r"/batches/new/\?reference=PB-\d{8}-\w{6}", url), url
    again = [operator_client.get(url).content.decode() for _ in range(2)]
    reference = url.split("=")[1]
    assert all(f'name="supplier_reference_id" value="{reference}"' in html for html in again)


def test_a_new_form_generates_its_own_reference_where_none_is_given(
    account: IsometricAccount,
) -> None:
    """As the admin's add page has it, which gives the form no reference of its own."""
    form = ProductionBatchForm(accounts=IsometricAccount.objects.all())
    pattern = rf"PB-{timezone.localdate():%Y%m%d}-[{REFERENCE_ALPHABET}]{{6}}"
    assert re.fullmatch(pattern, form["supplier_reference_id"].initial)
    given = ProductionBatchForm(
        accounts=IsometricAccount.objects.all(), initial={"supplier_reference_id": "PB-MINE"}
    )
    assert given["supplier_reference_id"].initial == "PB-MINE"


def test_the_edit_form_keeps_the_batch_reference(operator_client: Client) -> None:
    batch = make_batch(supplier_reference_id="KILN-A-0042")
    html = operator_client.get(reverse("batches:edit", args=[batch.pk])).content.decode()
    assert 'name="supplier_reference_id" value="KILN-A-0042"' in html
    assert "Generated for this batch" not in html


def test_the_same_form_posted_twice_records_one_batch(
    operator_client: Client, data: dict[str, Any]
) -> None:
    first = operator_client.post(reverse("batches:create"), data, follow=True)
    batch = ProductionBatch.objects.get()
    assert first.redirect_chain == [(batch.get_absolute_url(), 302)]
    assert f"Batch {data['supplier_reference_id']} saved." in first.content.decode()

    again = operator_client.post(reverse("batches:create"), data, follow=True)
    assert again.redirect_chain == [(batch.get_absolute_url(), 302)]
    html = again.content.decode()
    assert ALREADY_RECORDED in html
    assert "saved." not in html
    assert ProductionBatch.objects.count() == 1


@pytest.mark.parametrize(
    "change",
    [
        "facility",
        "feedstock_types",
        "started_at",
        "ended_at",
        "mass_magnitude",
        "mass_unit",
        "mass_standard_deviation",
        "display_name",
    ],
)
def test_the_same_reference_with_other_values_is_refused_at_the_field(
    operator_client: Client, data: dict[str, Any], account: IsometricAccount, change: str
) -> None:
    operator_client.post(reverse("batches:create"), data)
    other_values = {
        "facility": make_facility("Kiln B", account=account).pk,
        "feedstock_types": [make_feedstock_type("Husks", account=account).pk],
        "started_at": a_minute_before(data["started_at"]),
        "ended_at": a_minute_before(data["ended_at"]),
        "mass_magnitude": "3.26",
        "mass_unit": "kg",
        "mass_standard_deviation": "",
        "display_name": "Kiln A, week 48",
    }
    assert other_values[change] != data[change]
    response = operator_client.post(
        reverse("batches:create"), {**data, change: other_values[change]}
    )
    assert response.status_code == 200
    assert TAKEN_AT_FIELD in response.content.decode()
    assert ProductionBatch.objects.count() == 1


def test_the_same_reference_on_a_batch_of_another_kind_is_refused(
    operator_client: Client, data: dict[str, Any]
) -> None:
    operator_client.post(reverse("batches:create"), data)
    ProductionBatch.objects.update(
        kind="biochar-v2"
    )  # no other kind yet: as if Isometric added one
    response = operator_client.post(reverse("batches:create"), data)
    assert TAKEN_AT_FIELD in response.content.decode()
    assert ProductionBatch.objects.count() == 1


def test_another_user_posting_the_same_reference_is_refused(
    client: Client, data: dict[str, Any], account: IsometricAccount
) -> None:
    client.post(reverse("batches:create"), data)
    colleague = make_user("oscar", operator=True)
    account.members.add(colleague)
    log_in(client, colleague)
    response = client.post(reverse("batches:create"), data)
    assert response.status_code == 200
    assert TAKEN_AT_FIELD in response.content.decode()
    assert ProductionBatch.objects.count() == 1


def test_a_batch_not_created_in_the_portal_is_no_earlier_submission(
    operator_client: Client, data: dict[str, Any]
) -> None:
    operator_client.post(reverse("batches:create"), data)
    ProductionBatch.objects.update(created_by=None)  # as a batch pulled from Isometric has
    response = operator_client.post(reverse("batches:create"), data)
    assert TAKEN_AT_FIELD in response.content.decode()


def test_a_blank_reference_is_still_generated_when_saved(
    operator_client: Client, data: dict[str, Any]
) -> None:
    response = operator_client.post(
        reverse("batches:create"), {**data, "supplier_reference_id": ""}
    )
    batch = ProductionBatch.objects.get()
    assert response["Location"] == batch.get_absolute_url()
    started = timezone.localtime() - timedelta(days=2)
    pattern = rf"PB-{started:%Y%m%d}-[{REFERENCE_ALPHABET}]{{6}}"
    assert re.fullmatch(pattern, batch.supplier_reference_id)


@pytest.mark.parametrize(("same_values", "redirected"), [(True, True), (False, False)])
def test_two_submissions_at_once_record_one_batch(
    operator_client: Client,
    data: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    same_values: bool,
    redirected: bool,
) -> None:
    """Both pass validation before either is saved: the unique constraint refuses the second,
    which then ends where a resubmission does (or at the field, for other values)."""
    monkeypatch.setattr("batches.forms.reference_taken", lambda *args, **kwargs: False)
    operator_client.post(reverse("batches:create"), data)
    second = data if same_values else {**data, "mass_magnitude": "3.26"}
    response = operator_client.post(reverse("batches:create"), second, follow=True)
    batch = ProductionBatch.objects.get()
    if redirected:
        assert response.redirect_chain == [(batch.get_absolute_url(), 302)]
        assert ALREADY_RECORDED in response.content.decode()
    else:
        assert response.redirect_chain == []
        assert TAKEN_AT_FIELD in response.content.decode()


def test_posted_twice_into_one_of_several_accounts_records_one_batch(
    operator_client: Client, operator: User
) -> None:
    second = make_account("Second", members=(operator,))
    data = batch_form_data(
        make_facility("Retort", account=second),
        make_feedstock_type("Straw", account=second),
        account=second.pk,
        supplier_reference_id=shown_reference(operator_client),
    )
    operator_client.post(reverse("batches:create"), data)
    response = operator_client.post(reverse("batches:create"), data, follow=True)
    batch = ProductionBatch.objects.get()
    assert batch.account == second
    assert response.redirect_chain == [(batch.get_absolute_url(), 302)]
    assert ALREADY_RECORDED in response.content.decode()
