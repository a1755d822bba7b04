from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from portal.accounts import accounts_needing_attention, accounts_of, is_credential_admin


def isometric_accounts(request: HttpRequest) -> dict[str, Any]:
    """For every page: the accounts an admin must see to (expiring or refused credentials), and
    whether the user has any account at all. Lazy, so a page that shows neither queries nothing."""
    user = request.user

    def alerts() -> list[Any]:
        return list(accounts_needing_attention()) if is_credential_admin(user) else []

    return {
        "account_alerts": SimpleLazyObject(alerts),
        "has_isometric_account": SimpleLazyObject(lambda: accounts_of(user).exists()),
    }
