from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from portal import crypto
from portal.models import IsometricAccount


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored Isometric credential with the newest of ENCRYPTION_KEYS, "
        "after a new key was put first; the old key can be removed afterwards."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        moved = 0
        with transaction.atomic():
            for account in IsometricAccount.objects.select_for_update():
                try:
                    account.encrypted_client_secret = crypto.reencrypt(
                        account.encrypted_client_secret
                    )
                    account.encrypted_access_token = crypto.reencrypt(
                        account.encrypted_access_token
                    )
                except crypto.InvalidToken:
                    raise CommandError(
                        f"No key in ENCRYPTION_KEYS opens the credentials of {account}; "
                        "nothing was changed. Put the old key back in the list."
                    ) from None
                account.save(update_fields=["encrypted_client_secret", "encrypted_access_token"])
                moved += 1
        self.stdout.write(
            f"Re-encrypted the credentials of {moved} account(s) with the newest key."
        )
