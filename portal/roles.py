"""The Credential admins group: staff who may see and change the Isometric accounts."""

from typing import Any

from django.contrib.auth.models import Group, Permission

from portal.accounts import CREDENTIAL_ADMINS


def ensure_credential_admins_group(**kwargs: Any) -> None:
    """Create the group with every permission on accounts; runs after every migrate."""
    group, _ = Group.objects.get_or_create(name=CREDENTIAL_ADMINS)
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="portal", codename__endswith="_isometricaccount"
        )
    )
