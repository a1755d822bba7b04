"""Which requests came over HTTPS. Behind a proxy the portal sees plain HTTP, and the proxy says
how the browser connected in `X-Forwarded-Proto`. Only the proxies in `TRUSTED_PROXIES` are
believed: anyone who reaches the portal directly could send the header too. gunicorn reads the
same setting (`gunicorn.conf.py`) for its own `--forwarded-allow-ips`."""

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(entries: list[str]) -> list[Network]:
    """Addresses, or networks such as 10.0.0.0/8, as networks. Raises ValueError for an entry
    that is neither, or a network with host bits set, as gunicorn does."""
    return [ipaddress.ip_network(entry.strip()) for entry in entries]


def address_in(address: str, networks: list[Network]) -> bool:
    try:
        peer = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(peer in network for network in networks)


class TrustedProxyMiddleware:
    """Drops `X-Forwarded-Proto` from anyone but a trusted proxy, before SECURE_PROXY_SSL_HEADER
    (which believes it from anyone) is read."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.networks = networks(settings.TRUSTED_PROXIES)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not address_in(request.META.get("REMOTE_ADDR", ""), self.networks):
            request.META.pop("HTTP_X_FORWARDED_PROTO", None)
        return self.get_response(request)
