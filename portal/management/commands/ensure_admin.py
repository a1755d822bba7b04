from typing import Any

from django.core.management.base import BaseCommand

from portal.first_admin import create_first_admin


class Command(BaseCommand):
    help = "Create a first admin user with a random password, once, if no superuser exists."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        password = create_first_admin(username)
        if password:
            # Printed once, to the terminal that ran set-up; it is stored only as a hash.
            self.stdout.write(
                self.style.SUCCESS(f"Created the first admin. Log in as {username} / {password}")
            )
