from functools import cache
from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from portal.accounts import accounts_needing_attention, is_credential_admin, request_accounts
from portal.models import ConnectionStatus


def isometric_accounts(request: HttpRequest) -> dict[str, Any]:
    """For every page: whether the user is a credential admin, the accounts such an admin must
    see to (expiring or refused credentials), an operator's accounts whose sending is paused,
    and whether the user has any account at all. Lazy, so a page that shows none of them
    queries nothing."""

    @cache
    def admin() -> bool:
        return is_credential_admin(request.user)

    def alerts() -> list[Any]:
        return list(accounts_needing_attention(request.user)) if admin() else []

    def paused() -> list[Any]:
        """For operators: their accounts whose sending is paused (admins see the alert)."""
        if admin():
            return []
        return [
            account
            for account in request_accounts(request)
            if account.connection_status == ConnectionStatus.REJECTED
        ]

    return {
        "is_credential_admin": SimpleLazyObject(admin),
        "account_alerts": SimpleLazyObject(alerts),
        "paused_accounts": SimpleLazyObject(paused),
        "has_isometric_account": SimpleLazyObject(lambda: bool(request_accounts(request))),
    }
