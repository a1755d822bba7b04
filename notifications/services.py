"""Email notifications: events recorded as they happen (a batch refused or given up on, by the
sync queue; an account's credentials refused or its token about to expire, found by the
worker), each told to the users who may act on it, in at most one digest an hour per user, which
the worker sends.

At most once: an event is stored once (a unique key), its notifications with it; a digest is
sent only by the worker that claimed the user's hour (a conditional UPDATE), and holds only the
notifications that worker marked sent (another conditional UPDATE), before the email goes. A
worker that dies while sending loses that digest rather than sending it twice.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Min, Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from notifications.models import ACCOUNT_KINDS, BATCH_KINDS, Event, Kind, Notification, Recipient
from portal.accounts import users_of
from portal.models import ConnectionStatus, IsometricAccount
from portal.time_zones import zone_of

log = logging.getLogger(__name__)

DIGEST_INTERVAL = timedelta(hours=1)
TOKEN_EXPIRY_NOTICE = timedelta(days=14)
# Events are forgotten after this: a refusal or an expired token still there is told again.
EVENT_RETENTION = timedelta(days=90)
# The batches a digest names for each account and kind; it counts the others.
BATCHES_SHOWN = 20
# Who may act on each kind of event, and so is told of it: whoever may correct or retry a batch;
# whoever may change an account's credentials (staff with the permission, as the account admin
# asks: portal.accounts.is_credential_admin).
PERMISSIONS = {
    Kind.BATCH_REJECTED: "batches.change_productionbatch",
    Kind.BATCH_FAILED: "batches.change_productionbatch",
    Kind.CREDENTIALS_REFUSED: "portal.change_isometricaccount",
    Kind.TOKEN_EXPIRING: "portal.change_isometricaccount",
}
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def who_may_act(kind: Kind) -> QuerySet[User]:
    """Active users with the permission to act on this kind of event (superusers included)."""
    users = User.objects.with_perm(PERMISSIONS[kind], backend=MODEL_BACKEND)
    return users.filter(is_staff=True) if kind in ACCOUNT_KINDS else users


def recipients(kind: Kind, account: IsometricAccount) -> QuerySet[User]:
    """The account's users who may act on the event, have an email address and have not turned
    the emails off."""
    return (
        (who_may_act(kind) & users_of(account))
        .exclude(email="")
        .exclude(notification_recipient__email_enabled=False)
    )


def kinds_for(user: User) -> list[Kind]:
    """The kinds of event the user would be told of."""
    return [kind for kind in Kind if who_may_act(kind).filter(pk=user.pk).exists()]


# Recording events


def record_batch_event(
    kind: Kind, *, account: IsometricAccount, batch_id: int, status: str, key: str
) -> None:
    """A batch was refused or given up on (its new `status`): the sync queue calls this in the
    transaction that records the attempt, whose id is the `key`."""
    _store(Event(kind=kind, account=account, batch_id=batch_id, batch_status=status, key=key))


def record_account_events(now: datetime) -> None:
    """Each account whose credentials Isometric refused, or whose token expires within
    TOKEN_EXPIRY_NOTICE, is an event once (per credentials refused, per token)."""
    attention = Q(connection_status=ConnectionStatus.REJECTED) | Q(
        token_expires_at__lte=now + TOKEN_EXPIRY_NOTICE
    )
    for account in IsometricAccount.objects.filter(attention):
        for kind in ACCOUNT_KINDS:
            key = account_event_key(kind, account, now)
            if key and not Event.objects.filter(account=account, kind=kind, key=key).exists():
                _store(Event(kind=kind, account=account, key=key, created_at=now))


def account_event_key(kind: Kind, account: IsometricAccount, now: datetime) -> str:
    """Which occurrence of the kind the account is in now, "" when none: the credentials
    Isometric refused (told again only once they change), the token that expires."""
    if kind == Kind.CREDENTIALS_REFUSED:
        if account.connection_status != ConnectionStatus.REJECTED:
            return ""
        changes = [account.client_secret_changed_at, account.access_token_changed_at]
        changed = max((when for when in changes if when), default=None)
        return f"credentials of {changed.isoformat()}" if changed else "credentials"
    expires = account.token_expires_at
    if expires is None or expires > now + TOKEN_EXPIRY_NOTICE:
        return ""
    return f"token expiring {expires.isoformat()}"


def _store(event: Event) -> None:
    """Store the event and a notification for each of its recipients, unless another worker
    stored it first (the unique key)."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                event.save()
        except IntegrityError:
            return
        users = list(recipients(Kind(event.kind), event.account).values_list("pk", flat=True))
        # Someone told for the first time may have their digest at once.
        Recipient.objects.bulk_create(
            [Recipient(user_id=pk, next_digest_at=event.created_at) for pk in users],
            ignore_conflicts=True,
        )
        Notification.objects.bulk_create(Notification(event=event, user_id=pk) for pk in users)


# Sending digests


def send_due(now: datetime | None = None) -> int:
    """The worker's round: record the accounts' events, forget old ones, and email each user
    whose hour is up the digest of what waits for them. The number of digests sent."""
    now = now or timezone.now()
    record_account_events(now)
    old = Event.objects.filter(created_at__lt=now - EVENT_RETENTION)
    if old.exists():  # else no write, so no lock on SQLite
        old.delete()
    due = (
        Notification.objects.filter(
            sent_at=None,
            user__notification_recipient__email_enabled=True,
            user__notification_recipient__next_digest_at__lte=now,
        )
        .values_list("user_id", flat=True)
        .distinct()
    )
    return sum(_send_digest(user_id, now) for user_id in list(due))


def set_email_enabled(user: User, enabled: bool) -> None:
    """The user's choice; turned off, what waits for them is dropped too."""
    with transaction.atomic():
        Recipient.objects.update_or_create(user=user, defaults={"email_enabled": enabled})
        if not enabled:
            Notification.objects.filter(user=user, sent_at=None).delete()


@dataclass
class BatchNews:
    kind: Kind
    events: list[Event]  # one for each batch named
    count: int  # batches, named or not

    @property
    def more(self) -> int:
        return self.count - len(self.events)


@dataclass
class AccountNews:
    account: IsometricAccount
    kinds: set[Kind] = field(default_factory=set)  # the account's own events
    batches: list[BatchNews] = field(default_factory=list)

    @property
    def credentials_refused(self) -> bool:
        return Kind.CREDENTIALS_REFUSED in self.kinds

    @property
    def token_expiring(self) -> bool:
        return Kind.TOKEN_EXPIRING in self.kinds


def _send_digest(user_id: int, now: datetime) -> bool:
    """Claim the user's hour and what waits for them, and email it; whether an email went."""
    until = now + DIGEST_INTERVAL
    hour_claimed = Recipient.objects.filter(
        user_id=user_id, email_enabled=True, next_digest_at__lte=now
    ).update(next_digest_at=until)
    if not hour_claimed:
        return False  # another worker's, or turned off meanwhile
    # Marked sent before it is: an email is never sent twice, and the mark shows what it holds.
    Notification.objects.filter(user_id=user_id, sent_at=None).update(sent_at=now)
    user = User.objects.get(pk=user_id)
    claimed = Event.objects.filter(notifications__user=user, notifications__sent_at=now)
    news = _news(user, claimed, now)
    if not news:
        # All of it was over by now (corrected, retried, replaced): the hour is not used up.
        Recipient.objects.filter(user_id=user_id, next_digest_at=until).update(next_digest_at=now)
        return False
    context = {
        "user": user,
        "news": news,
        "total": sum(len(each.kinds) + sum(b.count for b in each.batches) for each in news),
        "now": now,
        "portal_url": settings.PORTAL_URL.rstrip("/"),
    }
    subject = " ".join(render_to_string("notifications/digest_subject.txt", context).split())
    with timezone.override(zone_of(user)):  # times in the user's zone, as the portal shows them
        body = render_to_string("notifications/digest.txt", context)
    try:
        send_mail(subject, body, None, [user.email])
    except OSError as exc:  # smtplib's errors among them
        Notification.objects.filter(user_id=user_id, sent_at=now).update(sent_at=None)
        log.warning(
            "notifications: the digest to %s was not sent (%s); it is tried again in an hour",
            user.get_username(),
            type(exc).__name__,
        )
        return False
    log.info("notifications: emailed %s their digest", user.get_username())
    return True


def _news(user: User, events: QuerySet[Event], now: datetime) -> list[AccountNews]:
    """What of these events is still true and still the user's, by account: a batch still in
    the status it was told for (named once however often), the account's credentials and token
    as they were."""
    news: dict[int, AccountNews] = {}
    groups = list(events.values_list("account", "kind").distinct().order_by())
    accounts = IsometricAccount.objects.in_bulk({account for account, _ in groups})
    kinds = list(Kind)
    for account_id, value in sorted(
        groups, key=lambda group: (accounts[group[0]].name, kinds.index(Kind(group[1])))
    ):
        kind, account = Kind(value), accounts[account_id]
        if not recipients(kind, account).filter(pk=user.pk).exists():
            continue  # no longer theirs to act on
        of_kind = events.filter(account=account, kind=kind)
        if kind in BATCH_KINDS:
            current = of_kind.filter(batch__sync_status=F("batch_status"))
            count = current.values("batch").distinct().count()
            if count:
                first = current.values("batch").annotate(first=Min("pk")).values("first")
                named = list(
                    Event.objects.filter(pk__in=first)
                    .select_related("batch")
                    .order_by("created_at", "pk")[:BATCHES_SHOWN]
                )
                news.setdefault(account_id, AccountNews(account)).batches.append(
                    BatchNews(kind, named, count)
                )
        elif of_kind.filter(key=account_event_key(kind, account, now)).exists():
            news.setdefault(account_id, AccountNews(account)).kinds.add(kind)
    return list(news.values())
