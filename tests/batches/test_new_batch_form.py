"""The new batch form remembers the operator's last facility and copies their last batch."""

import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from batches.models import Facility, ProductionBatch
from portal.models import IsometricAccount
from tests.factories import make_account, make_batch, make_facility, make_feedstock_type, make_user

pytestmark = pytest.mark.django_db

NEW = reverse("batches:create")


def new_form(client: Client, **params: str) -> str:
    response = client.get(NEW, params, follow=True)
    assert response.status_code == 200
    return response.content.decode()


def selected(html: str, name: str) -> list[str]:
    """The values chosen in the form's select or checkboxes named `name`."""
    select = re.search(rf'<select name="{name}".*?</select>', html, re.S)
    if select:
        return re.findall(r'<option value="(\d+)" selected>', select.group(0))
    return re.findall(rf'name="{name}" value="(\d+)"[^>]* checked', html)


def value(html: str, name: str) -> str | None:
    found = re.search(rf'<input type="[^"]+" name="{name}"(?: value="([^"]*)")?', html)
    assert found, name
    return found.group(1)


@pytest.fixture
def mine(operator: User, account: IsometricAccount) -> ProductionBatch:
    """The operator's last batch, at the second of the account's facilities; an older one of
    theirs and a newer one of a colleague's are at others."""
    first, second, third = (make_facility(name, account=account) for name in ("A", "B", "C"))
    wood, husk = make_feedstock_type("Wood", account=account), make_feedstock_type("Husk", account)
    make_batch(first, [wood], created_by=operator)
    last = make_batch(
        second,
        [wood, husk],
        created_by=operator,
        display_name="Run 12",
        mass_magnitude=Decimal("7.25"),
        mass_unit="kg",
        mass_standard_deviation=Decimal("0.5"),
    )
    make_batch(third, [husk], created_by=make_user())
    return last


def test_a_new_batch_starts_at_the_facility_of_the_operator_s_last_one(
    operator_client: Client, mine: ProductionBatch
) -> None:
    html = new_form(operator_client)
    assert selected(html, "facility") == [str(mine.facility_id)]
    assert selected(html, "feedstock_types") == []
    assert value(html, "mass_magnitude") is None


def test_without_a_batch_of_their_own_nothing_is_chosen(
    operator_client: Client, account: IsometricAccount
) -> None:
    make_batch(make_facility(account=account), created_by=make_user())
    html = new_form(operator_client)
    assert selected(html, "facility") == []
    assert "Copy from my last batch" not in html


def test_copy_from_the_last_batch_fills_all_but_its_own_reference_name_and_times(
    operator_client: Client, mine: ProductionBatch
) -> None:
    html = new_form(operator_client)
    link = re.search(r'href="([^"]+)">Copy from my last batch</a>', html)
    assert link and link.group(1) == f"{NEW}?copy=last"

    copied = new_form(operator_client, copy="last")
    assert "Filled in from your last batch" in copied
    assert selected(copied, "facility") == [str(mine.facility_id)]
    assert sorted(selected(copied, "feedstock_types")) == sorted(
        str(pk) for pk in mine.feedstock_types.values_list("pk", flat=True)
    )
    assert Decimal(value(copied, "mass_magnitude") or "") == Decimal("7.25")
    assert Decimal(value(copied, "mass_standard_deviation") or "") == Decimal("0.5")
    assert '<option value="kg" selected>kg</option>' in copied
    assert value(copied, "display_name") is None
    assert value(copied, "started_at") is None and value(copied, "ended_at") is None
    reference = value(copied, "supplier_reference_id")
    assert reference and reference.startswith("PB-") and reference != mine.supplier_reference_id


def test_with_several_accounts_the_last_batch_s_account_is_chosen(
    operator_client: Client, operator: User, mine: ProductionBatch
) -> None:
    other = make_account("Retorts Ltd", members=(operator,))
    html = new_form(operator_client)
    assert selected(html, "account") == [str(mine.account_id)]
    make_batch(make_facility(account=other), created_by=operator)
    assert selected(new_form(operator_client), "account") == [str(other.pk)]


def test_a_batch_in_an_account_the_operator_left_is_not_theirs_to_copy(
    operator_client: Client, operator: User, mine: ProductionBatch
) -> None:
    gone = make_account("Former employer")
    make_batch(Facility.objects.create(account=gone, isometric_id="fcl_" + "9" * 16, name="X"))
    ProductionBatch.objects.filter(account=gone).update(created_by=operator)
    html = new_form(operator_client, copy="last")
    assert selected(html, "facility") == [str(mine.facility_id)]
