"""Builders for test data: users in their roles, facilities, feedstock types and batches."""

from datetime import datetime, timedelta
from decimal import Decimal
from itertools import count
from typing import Any

from django.contrib.auth.models import Group, User
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from batches.models import Facility, FeedstockType, ProductionBatch, SyncStatus
from batches.roles import OPERATORS
from isometric.emulator import Emulator
from isometric.emulator.credentials import make_access_token
from portal.accounts import CREDENTIAL_ADMINS
from portal.models import Environment, IsometricAccount
from portal.second_factor import needs_second_factor

_serial = count(1)


def isometric_id(prefix: str) -> str:
    return f"{prefix}_{next(_serial):016d}"


def make_user(
    username: str = "", *, operator: bool = False, credential_admin: bool = False, **fields: Any
) -> User:
    if credential_admin:
        fields["is_staff"] = True  # the admin site is where they manage the credentials
    user = User.objects.create_user(
        username=username or f"user{next(_serial)}", password="correct horse", **fields
    )
    if operator:
        user.groups.add(Group.objects.get(name=OPERATORS))
    if credential_admin:
        user.groups.add(Group.objects.get(name=CREDENTIAL_ADMINS))
    return user


def make_account(
    name: str = "",
    *,
    emulator: Emulator | None = None,
    base_url: str = "http://127.0.0.1:9/mrv/v0",
    members: tuple[User, ...] = (),
    client_secret: str | None = None,
    access_token: str | None = None,
) -> IsometricAccount:
    """An account for `emulator` (its credentials unless others are given), or for base_url."""
    account = IsometricAccount(
        name=name or f"Account {next(_serial)}",
        environment=Environment.CUSTOM,
        base_url=emulator.base_url if emulator else base_url,
    )
    if client_secret is None:
        client_secret = emulator.client_secret if emulator else "test-client-secret"
    if access_token is None:
        access_token = emulator.access_token if emulator else "test.access.token"
    account.set_credentials(client_secret=client_secret, access_token=access_token)
    account.save()
    account.members.add(*members)
    return account


def jwt_expiring(at: datetime) -> str:
    """An access token that expires at `at`, issued a year before (as Isometric issues them)."""
    return make_access_token("org_1GB56M1ST1S0GVNA", at - timedelta(days=365))


def default_account() -> IsometricAccount:
    """The test's first account (in tests/batches, the operator's), else a new one: rows built
    without an account go there."""
    return IsometricAccount.objects.order_by("pk").first() or make_account()


def make_facility(name: str = "Kiln A", account: IsometricAccount | None = None) -> Facility:
    return Facility.objects.create(
        account=account or default_account(), isometric_id=isometric_id("fcl"), name=name
    )


def make_feedstock_type(
    name: str = "Wood chips", account: IsometricAccount | None = None
) -> FeedstockType:
    return FeedstockType.objects.create(
        account=account or default_account(), isometric_id=isometric_id("ftt"), name=name
    )


def make_batch(
    facility: Facility | None = None,
    feedstock_types: list[FeedstockType] | None = None,
    started_at: datetime | None = None,
    **fields: Any,
) -> ProductionBatch:
    """A batch of `account`, else of the facility's, else of the default account."""
    started_at = started_at or timezone.now() - timedelta(days=1)
    account = fields.pop("account", None) or (facility.account if facility else default_account())
    batch = ProductionBatch.objects.create(
        account=account,
        facility=facility or make_facility(account=account),
        supplier_reference_id=fields.pop("supplier_reference_id", f"REF-{next(_serial)}"),
        started_at=started_at,
        ended_at=fields.pop("ended_at", started_at + timedelta(hours=6)),
        mass_magnitude=fields.pop("mass_magnitude", Decimal("12.5")),
        mass_unit=fields.pop("mass_unit", "tonne"),
        next_attempt_at=fields.pop("next_attempt_at", _next_attempt(fields)),
        **fields,
    )
    batch.feedstock_types.set(feedstock_types or [make_feedstock_type(account=account)])
    return batch


def _next_attempt(fields: dict[str, Any]) -> datetime | None:
    """Now for a batch still to be sent, None for a settled one (as the model requires)."""
    unsettled = fields.get("sync_status", SyncStatus.PENDING) in (
        SyncStatus.PENDING,
        SyncStatus.SYNCING,
    )
    return timezone.now() if unsettled else None


def batch_form_data(
    facility: Facility, feedstock_type: FeedstockType, **changes: Any
) -> dict[str, Any]:
    """What an operator posts in the batch form: a valid batch that started two days ago."""
    started = timezone.localtime() - timedelta(days=2)
    return {
        "facility": facility.pk,
        "feedstock_types": [feedstock_type.pk],
        "supplier_reference_id": "KILN-A-0001",
        "display_name": "",
        "started_at": started.strftime("%Y-%m-%dT%H:%M"),
        "ended_at": (started + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M"),
        "mass_magnitude": "12.5",
        "mass_unit": "tonne",
        "mass_standard_deviation": "",
        **changes,
    }


def make_pending_batches(
    account: IsometricAccount, facility: Facility, feedstock_type: FeedstockType, count: int
) -> list[ProductionBatch]:
    """`count` batches due to be sent, written in bulk (references BULK-0000000 and on)."""
    started = timezone.now() - timedelta(days=1)
    batches = ProductionBatch.objects.bulk_create(
        (
            ProductionBatch(
                account=account,
                facility=facility,
                supplier_reference_id=f"BULK-{n:07d}",
                started_at=started,
                ended_at=started + timedelta(hours=6),
                mass_magnitude=Decimal("10.5"),
                mass_unit="tonne",
                next_attempt_at=timezone.now(),
            )
            for n in range(count)
        ),
        batch_size=5000,
    )
    through = ProductionBatch.feedstock_types.through
    through.objects.bulk_create(
        (
            through(productionbatch_id=batch.pk, feedstocktype_id=feedstock_type.pk)
            for batch in batches
        ),
        batch_size=5000,
    )
    return batches


def log_in(client: Client, user: User) -> Client:
    """Sign `user` in on `client` as the whole sign-in would: with the second factor given,
    for those who need one (superusers, credential admins)."""
    client.force_login(user)
    if needs_second_factor(User.objects.get(pk=user.pk)):  # its permissions as they are now
        device, _ = TOTPDevice.objects.get_or_create(
            user=user, name="Test app", defaults={"confirmed": True}
        )
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


def totp_code(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The code the authenticator app of `device` shows now, or `steps_ahead` steps later."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time += steps_ahead * device.step
    return f"{totp.token():06d}"
