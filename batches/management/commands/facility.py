from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batches.models import Facility, is_isometric_id
from portal.models import IsometricAccount


class Command(BaseCommand):
    help = (
        "Add a facility to an Isometric account, or rename it, by its Isometric id (Isometric's "
        "API lists no facilities, so the portal learns them here or in the admin)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("account", help="the account's name in the portal")
        parser.add_argument("isometric_id", help="e.g. fcl_1G8QT5ZAB1S0XSDW")
        parser.add_argument("name")

    def handle(
        self, *args: Any, account: str, isometric_id: str, name: str, **options: Any
    ) -> None:
        found = IsometricAccount.objects.filter(name=account).first()
        if found is None:
            raise CommandError(f"There is no Isometric account named {account!r}.")
        if not is_isometric_id(isometric_id) or not name.strip():
            raise CommandError("Give the facility's Isometric id and a name.")
        facility, created = Facility.objects.update_or_create(
            account=found, isometric_id=isometric_id, defaults={"name": name.strip()[:200]}
        )
        self.stdout.write(f"{'Added' if created else 'Renamed'} {facility} in {found}.")
