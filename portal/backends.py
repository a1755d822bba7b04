"""How a request's user is read from the database."""

from django.contrib.auth import backends, get_user_model
from django.contrib.auth.models import User

from portal.prepared import prepared_query

_prepared_user = prepared_query(lambda: get_user_model()._default_manager.filter(pk=0))


class ModelBackend(backends.ModelBackend):
    """Django's, reading the user of each request with prepared SQL: every page but the login
    page loads the user before its view runs (0.35 ms of the "In Isometric" page, A/B)."""

    def get_user(self, user_id: int) -> User | None:
        users = _prepared_user(user_id)
        if not users or not self.user_can_authenticate(users[0]):
            return None
        return users[0]
