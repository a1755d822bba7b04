import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a first admin user with a random password, once, if no superuser exists."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, password=password)
        # Printed once, to the terminal that ran set-up; it is stored only as a hash.
        self.stdout.write(
            self.style.SUCCESS(f"Created the first admin. Log in as {username} / {password}")
        )
