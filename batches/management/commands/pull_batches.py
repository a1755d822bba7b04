from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from batches import sync
from portal.models import IsometricAccount


class Command(BaseCommand):
    help = "Mirror the batches Isometric holds for each account (or one) into the portal."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", metavar="NAME", help="only this account")

    def handle(self, *args: Any, account: str | None, **options: Any) -> None:
        accounts = IsometricAccount.objects.all()
        if account is not None:
            accounts = accounts.filter(name=account)
            if not accounts:
                raise CommandError(f"There is no Isometric account named {account!r}.")
        failed = []
        for each in accounts:
            try:
                result = sync.pull(each)
            except sync.PullFailed as exc:
                self.stderr.write(f"{each.name}: the pull failed: {exc}")
                failed.append(each.name)
            else:
                self.stdout.write(f"{each.name}: {result}")
        if failed:
            raise CommandError(f"Could not pull {', '.join(failed)}.")
