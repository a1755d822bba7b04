"""Isometric accounts: who may use which, and whether their credentials work."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from isometric.errors import AuthenticationFailed, IsometricError, TransportError
from portal.models import EXPIRY_WARNING, ConnectionStatus, IsometricAccount, UnreadableCredentials

CREDENTIAL_ADMINS = "Credential admins"


def accounts_of(user: AbstractBaseUser | AnonymousUser) -> QuerySet[IsometricAccount]:
    """The accounts whose batches the user works with: a superuser's are all of them."""
    if getattr(user, "is_superuser", False):
        return IsometricAccount.objects.all()
    if not user.is_authenticated:
        return IsometricAccount.objects.none()
    return IsometricAccount.objects.filter(members__pk=user.pk)


def users_of(account: IsometricAccount) -> QuerySet[User]:
    """The users whose accounts (accounts_of) include this one: its members and every
    superuser."""
    return User.objects.filter(Q(is_superuser=True) | Q(pk__in=account.members.values("pk")))


def request_accounts(request: HttpRequest) -> list[IsometricAccount]:
    """The requesting user's accounts, queried once however many parts of the page ask."""
    accounts: list[IsometricAccount] | None = getattr(request, "_isometric_accounts", None)
    if accounts is None:
        accounts = list(accounts_of(request.user))
        request._isometric_accounts = accounts  # type: ignore[attr-defined]
    return accounts


def is_credential_admin(user: User | AnonymousUser) -> bool:
    """Staff who may change accounts' credentials: the Credential admins group's permission
    (portal.roles), which the account admin checks too, and every superuser."""
    return getattr(user, "is_staff", False) and user.has_perm("portal.change_isometricaccount")


def accounts_needing_attention(
    user: AbstractBaseUser | AnonymousUser,
) -> QuerySet[IsometricAccount]:
    """The user's accounts whose token expires within EXPIRY_WARNING (or has expired) or whose
    credentials Isometric refused."""
    soon = timezone.now() + EXPIRY_WARNING
    return accounts_of(user).filter(
        Q(token_expires_at__lte=soon) | Q(connection_status=ConnectionStatus.REJECTED)
    )


@sensitive_variables()
def check_connection(account: IsometricAccount) -> IsometricAccount:
    """Ask Isometric who the credentials belong to (GET /organisation) and record the answer:
    the organisation, and whether the credentials work."""
    try:
        with account.client() as client:
            organisation = client.get_organisation()
    except UnreadableCredentials as exc:
        _record(account, ConnectionStatus.REJECTED, str(exc))
    except AuthenticationFailed as exc:
        _record(account, ConnectionStatus.REJECTED, _REFUSED.format(status=exc.status))
    except TransportError as exc:
        message = _SLOW if exc.timed_out else _UNREACHABLE.format(url=account.api_url)
        _record(account, ConnectionStatus.UNREACHABLE, message)
    except IsometricError as exc:
        _record(account, ConnectionStatus.UNREACHABLE, _FAILING.format(status=exc.status or "?"))
    else:
        account.organisation_id, account.organisation_name = organisation.id, organisation.name
        _record(account, ConnectionStatus.OK, f"Connected to {organisation.name}.")
    return account


_REFUSED = "Isometric refused the credentials ({status}). Check the client secret and token."
_SLOW = "Isometric did not answer in time. Try again in a few minutes."
_UNREACHABLE = "Could not reach Isometric at {url}."
_FAILING = "Isometric answered with an error ({status}). Try again in a few minutes."


def _record(account: IsometricAccount, status: ConnectionStatus, message: str) -> None:
    account.connection_status = status
    account.connection_message = message
    account.checked_at = timezone.now()
    account.save(
        update_fields=[
            "organisation_id",
            "organisation_name",
            "connection_status",
            "connection_message",
            "checked_at",
        ]
    )
