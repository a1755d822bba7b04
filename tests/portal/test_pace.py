"""The workers' shared pace of an account's requests to Isometric (portal/pace.py): turns
spaced by the account's rate limit whoever takes them, slower after a 429, faster again as
requests go through."""

import time

import pytest
from pytest_django.fixtures import Settings

from isometric.errors import NotYourTurn
from portal.models import IsometricAccount, RequestBudget
from portal.pace import AccountPace
from tests.factories import make_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def limited() -> IsometricAccount:
    account = make_account("Kilns Ltd")
    account.request_rate_limit = 10
    account.save()
    return account


def test_turns_are_spaced_by_the_rate_limit_whichever_worker_takes_them(
    limited: IsometricAccount,
) -> None:
    first, second = AccountPace(limited), AccountPace(limited)  # two workers' clients

    waits = [pace.take_turn() for pace in (first, second, first, second, second)]

    assert waits == pytest.approx([0, 0.1, 0.2, 0.3, 0.4], abs=0.02)


def test_each_account_has_a_budget_of_its_own(limited: IsometricAccount) -> None:
    other = make_account("Retorts Ltd")
    other.request_rate_limit = 10
    other.save()

    assert [AccountPace(account).take_turn() for account in (limited, other)] == [0, 0]


def test_a_429_slows_the_account_down_and_the_turns_that_follow_speed_it_up(
    limited: IsometricAccount,
) -> None:
    pace = AccountPace(limited)
    pace.take_turn()

    pace.slow_down(retry_after=2)

    budget = RequestBudget.objects.get(account=limited)
    assert budget.interval == pytest.approx(0.2)
    assert pace.take_turn() == pytest.approx(2, abs=0.05)  # Retry-After is honoured
    for _ in range(10):
        pace.take_turn()
    budget.refresh_from_db()
    assert budget.interval == pytest.approx(0.1)  # back to the limit, never faster


def test_the_429s_of_one_burst_slow_the_account_down_once(limited: IsometricAccount) -> None:
    workers = [AccountPace(limited) for _ in range(4)]
    time.sleep(max(pace.take_turn() for pace in workers))  # all four sent

    for pace in workers:  # then their 429s come back
        pace.slow_down(retry_after=None)

    assert RequestBudget.objects.get(account=limited).interval == pytest.approx(0.2)
    workers[0].take_turn()  # sent after the slow-down, and still too fast: slower again
    workers[0].slow_down(retry_after=None)
    assert RequestBudget.objects.get(account=limited).interval == pytest.approx(0.2 * 0.9 * 2)


def test_an_account_without_a_limit_goes_unpaced_until_isometric_says_otherwise() -> None:
    account = make_account("Kilns Ltd")
    pace = AccountPace(account)

    assert [pace.take_turn() for _ in range(3)] == [0, 0, 0]
    assert not RequestBudget.objects.exists()  # nothing written for an unpaced account

    pace.slow_down(retry_after=None)
    assert pace.take_turn() > 0
    for _ in range(60):
        pace.take_turn()
    assert RequestBudget.objects.get(account=account).interval == 0


def test_a_turn_further_off_than_the_longest_wait_is_not_waited_for(
    limited: IsometricAccount, settings: Settings
) -> None:
    settings.ISOMETRIC_MAX_TURN_WAIT = 5
    pace = AccountPace(limited)
    pace.take_turn()
    pace.slow_down(retry_after=60)
    before = RequestBudget.objects.get(account=limited).next_at

    with pytest.raises(NotYourTurn) as refused:
        pace.wait_turn()

    assert refused.value.retry_after == pytest.approx(60, abs=1)
    assert refused.value.status is None  # never sent
    assert RequestBudget.objects.get(account=limited).next_at == before  # no turn taken
