"""What the portal tells people by email: events (a batch refused, credentials refused…), each
one's notifications (one per user told), and each user's choice and digest schedule."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Kind(models.TextChoices):
    BATCH_REJECTED = "batch_rejected", "Batch refused by Isometric"
    BATCH_FAILED = "batch_failed", "Batch given up on"
    CREDENTIALS_REFUSED = "credentials_refused", "Credentials refused by Isometric"
    TOKEN_EXPIRING = "token_expiring", "Access token expiring"


BATCH_KINDS = (Kind.BATCH_REJECTED, Kind.BATCH_FAILED)
ACCOUNT_KINDS = (Kind.CREDENTIALS_REFUSED, Kind.TOKEN_EXPIRING)


class Event(models.Model):
    """Something an account's people are told about, once: `key` tells one occurrence from the
    next (a batch's attempt, the credentials refused, the token that expires)."""

    kind = models.CharField(max_length=30, choices=Kind)
    account = models.ForeignKey(
        "portal.IsometricAccount", on_delete=models.CASCADE, related_name="+"
    )
    batch = models.ForeignKey(
        "batches.ProductionBatch", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    # A batch event's status: a digest leaves the event out once the batch has left it.
    batch_status = models.CharField(max_length=10, blank=True)
    key = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "kind", "key"], name="event_unique_key")
        ]
        indexes = [models.Index(fields=["created_at"], name="event_created_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.account_id}, {self.key})"


class Notification(models.Model):
    """An event, for one user: waiting for their next digest until `sent_at`."""

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="notifications")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event", "user"], name="notification_once_per_user")
        ]
        indexes = [
            # The digests to send: only notifications still waiting.
            models.Index(
                fields=["user"],
                condition=models.Q(sent_at__isnull=True),
                name="notification_waiting_idx",
            ),
            # A digest's notifications: the user's, marked sent at the digest's time.
            models.Index(fields=["user", "sent_at"], name="notification_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} for {self.user_id}"


class Recipient(models.Model):
    """A user as notifications see them: whether they want the emails, and when their next
    digest may go (at most one an hour)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="notification_recipient",
    )
    email_enabled = models.BooleanField(
        "Email me when something needs my attention",
        default=True,
        help_text="At most one email an hour, gathering everything since the last one.",
    )
    next_digest_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return str(self.user_id)
