"""The sync service: the portal's batches go to Isometric (push), Isometric's come back (pull).
The worker (batches.worker) runs both; views and commands call them here."""

from batches.sync.pull import (
    PullFailed,
    PullResult,
    pull,
    pull_due,
    pull_due_accounts,
    request_pull,
)
from batches.sync.push import Attempt, Claim, claim_due, push, release, send

__all__ = [
    "Attempt",
    "Claim",
    "PullFailed",
    "PullResult",
    "claim_due",
    "pull",
    "pull_due",
    "pull_due_accounts",
    "push",
    "release",
    "request_pull",
    "send",
]
