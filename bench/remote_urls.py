"""The portal's URLs plus a bare view for bench/remote_pages.py to time the page against."""

from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import include, path

from isometric.client import Client
from portal.accounts import accounts_of

_clients: dict[int, Client] = {}
_template = engines["django"].from_string(
    "<!doctype html><title>Bare</title><p>{{ page.nodes|length }} batches</p>"
)


def bare_page(request: HttpRequest) -> HttpResponse:
    """The least a view can do for the page: the user's account, the same API call, a minimal
    template, behind the same middleware, session and login."""
    account = accounts_of(request.user).get()
    client = _clients.get(account.pk) or _clients.setdefault(account.pk, account.client())
    size = int(request.GET["size"])
    page = client.list_production_batches(first=size, after=request.GET.get("after") or None)
    return HttpResponse(_template.render({"page": page}, request))


urlpatterns = [path("bare/", bare_page), path("", include("portal.urls"))]
