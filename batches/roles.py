"""The Operators group: who may record and browse production batches."""

from typing import Any

from django.contrib.auth.models import Group, Permission

OPERATORS = "Operators"
OPERATOR_PERMISSIONS = (
    "view_productionbatch",
    "add_productionbatch",
    "change_productionbatch",
    "void_productionbatch",
)


def ensure_operators_group(**kwargs: Any) -> None:
    """Create the group with its permissions; runs after every migrate, so it is idempotent."""
    group, _ = Group.objects.get_or_create(name=OPERATORS)
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="batches", codename__in=OPERATOR_PERMISSIONS
        )
    )
