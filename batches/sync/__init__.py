"""The sync service: the portal's batches go to Isometric (push), Isometric's come back (pull).
The queue (claims on the batch table, and each attempt's outcome recorded under its claim) is
batches.sync.queue. The worker (batches.worker) runs both; views and commands call them here."""

from batches.sync.pull import (
    PullFailed,
    PullPostponed,
    PullResult,
    claim_due_pull,
    pull,
    pull_next_due,
    request_pull,
)
from batches.sync.push import Sent, push, send
from batches.sync.queue import Claim, claim_due, release

__all__ = [
    "Claim",
    "PullFailed",
    "PullPostponed",
    "PullResult",
    "Sent",
    "claim_due",
    "claim_due_pull",
    "pull",
    "pull_next_due",
    "push",
    "release",
    "request_pull",
    "send",
]
