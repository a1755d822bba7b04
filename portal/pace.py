"""The sync workers' pace for an account's requests to Isometric: one budget per account, in
the database, that every worker thread in every process on every machine takes its turns from.

Each request takes the next turn (`RequestBudget.next_at`) and moves it on by the interval, in
one locked row: turns are spaced at least 1 / the account's rate limit apart, however many
workers ask. A 429 doubles the interval and puts the next turn after its Retry-After; each turn
taken then shortens the interval a little, back to the limit's (or to none) once Isometric
stops refusing.
"""

import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from isometric.errors import NotYourTurn
from portal.models import IsometricAccount, RequestBudget

# Each turn taken shortens the interval by a tenth: seven turns undo a 429's doubling.
SPEED_UP = 0.9
SLOW_DOWN = 2.0
# The interval a 429 starts from for an account without a limit, and the longest it grows to.
FIRST_INTERVAL = 0.05
LONGEST_INTERVAL = 10.0
# Below this an account without a limit is unpaced again.
UNPACED_BELOW = 0.001


class AccountPace:
    """The turns of one account's requests (isometric.client.Pace)."""

    def __init__(self, account: IsometricAccount) -> None:
        self.account_id = account.pk
        limit = account.rate_limit
        self.shortest = 1 / limit if limit else 0.0
        self.longest_wait = settings.ISOMETRIC_MAX_TURN_WAIT
        self.last_turn: datetime | None = None  # when this client's last request went

    def wait_turn(self) -> None:
        wait = self.take_turn()
        if wait > self.longest_wait:
            raise NotYourTurn(wait)
        if wait > 0:
            time.sleep(wait)

    def take_turn(self) -> float:
        """Take the next turn: seconds until it comes. A turn further off than the longest
        wait is not taken (the caller does not wait for it)."""
        if not self.shortest and not self._slowed():
            return 0.0
        return self._take_turn()

    def _slowed(self) -> bool:
        """Whether a 429 slowed the account down and it has not sped up again yet. Read without
        a lock: an account without a limit pays a lookup for each request, not a write."""
        return (
            RequestBudget.objects.filter(account_id=self.account_id)
            .filter(Q(interval__gt=0) | Q(next_at__gt=timezone.now()))
            .exists()
        )

    @transaction.atomic
    def _take_turn(self) -> float:
        budget = self._budget()
        now = timezone.now()
        turn = max(now, budget.next_at)
        wait = (turn - now).total_seconds()
        if wait > self.longest_wait:
            return wait
        self.last_turn = turn
        interval = max(self.shortest, budget.interval * SPEED_UP)
        if interval < UNPACED_BELOW:
            interval = 0.0
        budget.interval = interval
        budget.next_at = turn + timedelta(seconds=interval)
        budget.save(update_fields=["interval", "next_at"])
        return wait

    @transaction.atomic
    def slow_down(self, retry_after: float | None) -> None:
        """A request of this client's was answered 429: slow the account down, once for all
        the requests sent before the last slow-down (a burst's 429s come together)."""
        budget = self._budget()
        now = timezone.now()
        if budget.slowed_at is None or (self.last_turn or now) >= budget.slowed_at:
            budget.interval = min(
                LONGEST_INTERVAL, max(budget.interval, self.shortest, FIRST_INTERVAL) * SLOW_DOWN
            )
            budget.slowed_at = now
        budget.next_at = max(
            budget.next_at, now + timedelta(seconds=retry_after or budget.interval)
        )
        budget.save(update_fields=["interval", "next_at", "slowed_at"])

    def _budget(self) -> RequestBudget:
        budget, _ = RequestBudget.objects.select_for_update().get_or_create(
            account_id=self.account_id,
            defaults={"interval": self.shortest, "next_at": timezone.now()},
        )
        return budget
