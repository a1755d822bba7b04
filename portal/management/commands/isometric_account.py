import os
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.views.decorators.debug import sensitive_variables

from portal.accounts import check_connection
from portal.models import ConnectionStatus, Environment, IsometricAccount

SECRET_VARIABLES = ("ISOMETRIC_CLIENT_SECRET", "ISOMETRIC_ACCESS_TOKEN")


class Command(BaseCommand):
    help = (
        "Create or update an Isometric account and test its connection. The client secret and "
        "access token are read from ISOMETRIC_CLIENT_SECRET and ISOMETRIC_ACCESS_TOKEN, never "
        "from the command line, where other users of the machine could see them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        set_account = actions.add_parser("set", help="create or update the account NAME")
        set_account.add_argument("name")
        where = set_account.add_mutually_exclusive_group(required=True)
        where.add_argument("--environment", choices=[Environment.SANDBOX, Environment.PRODUCTION])
        where.add_argument("--base-url", help="a custom API base URL, e.g. the emulator's")
        set_account.add_argument(
            "--member", action="append", default=[], metavar="USER", help="a user who uses it"
        )

    @sensitive_variables("client_secret", "access_token")
    def handle(self, *args: Any, **options: Any) -> None:
        client_secret, access_token = (
            os.environ.get(name, "").strip() for name in SECRET_VARIABLES
        )
        account = IsometricAccount.objects.filter(name=options["name"]).first()
        if account is None and not (client_secret and access_token):
            raise CommandError(f"Set {' and '.join(SECRET_VARIABLES)} to create an account.")
        members = self._users(options["member"])
        account = account or IsometricAccount(name=options["name"])
        if options["base_url"]:
            account.environment, account.base_url = Environment.CUSTOM, options["base_url"]
        else:
            account.environment, account.base_url = options["environment"], ""
        account.set_credentials(client_secret=client_secret, access_token=access_token)
        account.save()
        account.members.add(*members)
        self.stdout.write(f"Saved the Isometric account {account}.")

        check_connection(account)
        if account.connection_status != ConnectionStatus.OK:
            raise CommandError(f"Connection test failed: {account.connection_message}")
        self.stdout.write(self.style.SUCCESS(account.connection_message))

    def _users(self, usernames: list[str]) -> list[Any]:
        users = list(get_user_model().objects.filter(username__in=usernames))
        missing = set(usernames) - {user.get_username() for user in users}
        if missing:
            raise CommandError(f"No such user: {', '.join(sorted(missing))}")
        return users
