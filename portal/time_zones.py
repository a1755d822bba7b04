"""Each user's own time zone: the zones one may choose, and the middleware that shows and reads
every time of a request in the user's (the portal's, settings.TIME_ZONE, for anyone else)."""

import zoneinfo
from collections.abc import Callable
from itertools import groupby

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from portal.models import UserPreferences

# The zones of the IANA database's regions (not its legacy aliases such as "US/Eastern").
REGIONS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)
ZONES = [
    *sorted(name for name in zoneinfo.available_timezones() if name.split("/", 1)[0] in REGIONS),
    "UTC",
]
_KNOWN = frozenset(ZONES)


def zone_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The zones by region, each named by its place ("America/Argentina/Salta" in America
    as "Argentina/Salta"), as a select's groups."""
    regions = groupby(ZONES, key=lambda name: name.split("/", 1)[0])
    return [
        (region, [(name, name.split("/", 1)[-1].replace("_", " ")) for name in names])
        for region, names in regions
    ]


def zone_of(user: AbstractBaseUser | AnonymousUser) -> zoneinfo.ZoneInfo | None:
    """The zone the user chose, or None for the portal's."""
    if not user.is_authenticated:
        return None
    chosen = UserPreferences.objects.filter(user_id=user.pk).values_list("time_zone", flat=True)
    name = chosen.first()
    return zoneinfo.ZoneInfo(name) if name in _KNOWN else None


def user_time_zone(
    get_response: Callable[[HttpRequest], HttpResponse],
) -> Callable[[HttpRequest], HttpResponse]:
    """Activate the user's zone for the request, or the portal's. Activated, not overridden
    for the view's duration alone: a streamed export writes its times after the view returns
    (in the same thread, whose zone the next request sets again)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        zone = zone_of(request.user)
        if zone is None:
            timezone.deactivate()
        else:
            timezone.activate(zone)
        return get_response(request)

    return middleware
