"""Which download URLs the client may fetch, checked before every request and redirect hop.

Why: a download URL comes from the API's answer, not from us. Fetched blindly, it can make this
process request an internal service (the cloud metadata endpoint, a database admin page) and
copy the answer into an error that ends up in the Dagster UI. The rules:

* ``https`` only, except when the API itself is a loopback emulator: then ``http`` to a
  loopback host is fine (the emulator serves its files over plain http on 127.0.0.1).
* Against the real API, a host that resolves to a private, loopback, link-local, multicast,
  reserved, unspecified or otherwise non-global address is refused (every address is checked),
  and so is a host that does not resolve: a check that cannot be made fails closed.
* An optional allow-list (``CRUST_DOWNLOAD_HOSTS``: names or ``*.suffix`` patterns) refuses
  every other host.

What it does not stop: a DNS answer that changes between this check and httpx's own lookup
(rebinding). The pre-check keeps honest misconfiguration and plain SSRF out; a host-level egress
policy is the defence against a resolver that lies on purpose.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass

import httpx

__all__ = ["UrlGuard", "address_refusal", "host_allowed", "is_loopback_host", "resolve_host"]

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
# Most specific first: 169.254.0.0/16 and 127.0.0.0/8 are "private" too.
_FLAGS = (
    "is_loopback",
    "is_link_local",
    "is_multicast",
    "is_unspecified",
    "is_reserved",
    "is_private",
)

Resolver = Callable[[str, int], list[str]]


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``socket.getaddrinfo``); [] if it does not resolve.

    [] is refused by :class:`UrlGuard`: an address that cannot be checked is not allowed.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def is_loopback_host(host: str | None) -> bool:
    """``localhost``, ``*.localhost``, ``127.x.x.x`` or ``::1`` (no DNS lookup)."""
    if not host:
        return False
    name = host.strip("[]").lower().rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def address_refusal(address: str) -> str | None:
    """Why a download may not go to ``address`` (e.g. ``"private"``), or None if it is public."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for flag in _FLAGS:
        if getattr(ip, flag):
            return flag[3:].replace("_", "-")
    return None if ip.is_global else "non-global"


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """True if ``host`` equals a pattern, or ends with ``.suffix`` of a ``*.suffix`` pattern."""
    name = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if name.endswith(pattern[1:]) and len(name) > len(pattern) - 1:
                return True
        elif name == pattern:
            return True
    return False


@dataclass(frozen=True)
class UrlGuard:
    """The download URL rules for one client (see the module docstring).

    ``loopback_api``: the API base URL is a loopback emulator. ``resolve`` is injectable so the
    rules can be unit-tested without DNS.
    """

    loopback_api: bool
    allowed_hosts: tuple[str, ...] = ()
    resolve: Resolver = resolve_host

    @classmethod
    def for_base_url(cls, base_url: str, allowed_hosts: tuple[str, ...] = ()) -> UrlGuard:
        return cls(is_loopback_host(httpx.URL(base_url).host), allowed_hosts)

    def refusal(self, url: httpx.URL) -> str | None:
        """Why ``url`` may not be fetched, or None. The reason never contains the query."""
        scheme = url.scheme
        host = url.raw_host.decode("ascii", "replace").lower()
        if scheme not in ("http", "https"):
            return f"scheme {scheme!r} is not allowed (https only)"
        if not host:
            return "the URL has no host"
        if self.allowed_hosts and not host_allowed(host, self.allowed_hosts):
            return f"host {host} is not in CRUST_DOWNLOAD_HOSTS"
        if self.loopback_api:
            if scheme == "http" and not is_loopback_host(host):
                return f"plain http to {host}: only https, or http to the loopback emulator"
            return None
        if scheme != "https":
            return f"plain http to {host}: download URLs must be https"
        addresses = self.resolve(host.strip("[]"), url.port or 443)
        if not addresses:
            return f"cannot resolve host {host} (its address cannot be checked)"
        for address in addresses:
            why = address_refusal(address)
            if why is not None:
                return f"host {host} resolves to a {why} address ({address})"
        return None
