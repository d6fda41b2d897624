"""Fetch only what BuildPixel serves: checks on an artifact URL and on every redirect hop.

An artifact URL comes from outside (a signed webhook, or BuildPixel's download API). Before any byte
is requested, and again for every ``Location`` a server answers with, the URL must be:

* ``https`` on the default port, without ``user:password@``;
* on a host of the allow-list (``ARTIFACT_ALLOWED_HOSTS``, comma-separated; ``*.example.com`` matches
  sub-domains; default BuildPixel's own domain);
* resolving only to public addresses: private, loopback, link-local (instance metadata, the Lambda
  runtime API), shared, multicast, reserved and unspecified addresses are refused, also when they
  hide in an IPv4-mapped, 6to4 or Teredo IPv6 address.

After the connection is made, the address actually connected to is checked again (best effort: when
``urllib3`` exposes the socket), so a DNS answer that changes between the check and the connection
(DNS rebinding) is caught too.

The local stack's BuildPixel simulator serves on ``http://127.0.0.1``: ``ARTIFACT_ALLOW_LOOPBACK_HTTP=true``
(local stack and tests only; never set it in a deployed stack) additionally allows ``http`` or ``https``
to a host that resolves only to loopback addresses, on any port.

Refusals name the host, never the URL (signed URLs are capabilities) nor the resolved address (a
timeline must not tell a caller what an internal name resolves to).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

ALLOWED_HOSTS_ENV = "ARTIFACT_ALLOWED_HOSTS"
ALLOW_LOOPBACK_ENV = "ARTIFACT_ALLOW_LOOPBACK_HTTP"
DEFAULT_ALLOWED_HOSTS = "buildpixel.io,*.buildpixel.io"
MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# (host, port) -> the addresses a connection to it may reach
Resolver = Callable[[str, int], Iterable[str]]


class UrlRefused(Exception):
    """The URL (or a redirect) points somewhere PixelBridge does not fetch from; the text names the host."""


@dataclass(frozen=True)
class UrlPolicy:
    allowed_hosts: frozenset[str]
    allow_loopback_http: bool = False

    @classmethod
    def of(cls, hosts: str, *, allow_loopback_http: bool = False) -> UrlPolicy:
        """From a comma-separated host list (``*.example.com`` matches subdomains)."""
        allowed = frozenset(host.strip().rstrip(".").lower() for host in hosts.split(",") if host.strip())
        return cls(allowed_hosts=allowed, allow_loopback_http=allow_loopback_http)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> UrlPolicy:
        return cls.of(
            environ.get(ALLOWED_HOSTS_ENV, DEFAULT_ALLOWED_HOSTS),
            allow_loopback_http=environ.get(ALLOW_LOOPBACK_ENV, "").strip().lower() in ("1", "true", "yes"),
        )

    def host_allowed(self, host: str) -> bool:
        for allowed in self.allowed_hosts:
            if allowed.startswith("*."):
                if host.endswith(allowed[1:]) and len(host) > len(allowed) - 1:
                    return True
            elif host == allowed:
                return True
        return False


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``OSError`` when it does not resolve)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone index
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None:
            return embedded
    return address


def is_public_address(text: str) -> bool:
    """True for a globally routable unicast address (what an artifact host on the internet has)."""
    try:
        address = _address(text)
    except ValueError:
        return False
    return address.is_global and not address.is_multicast


def is_loopback_address(text: str) -> bool:
    try:
        return _address(text).is_loopback
    except ValueError:
        return False


def check_url(url: str, policy: UrlPolicy, resolve: Resolver = system_resolver) -> None:
    """Raise ``UrlRefused`` unless ``url`` may be fetched under ``policy`` (see the module docstring)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise UrlRefused("the artifact URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused(f"the artifact URL for {host} carries credentials")
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise UrlRefused(f"the artifact URL for {host} has an invalid port") from None
    if policy.allow_loopback_http and scheme in ("http", "https"):
        addresses = list(resolve(host, port or (443 if scheme == "https" else 80)))
        if addresses and all(is_loopback_address(address) for address in addresses):
            return
    if scheme != "https":
        raise UrlRefused(f"the artifact URL for {host} is not https")
    if port not in (None, 443):
        raise UrlRefused(f"the artifact URL for {host} uses port {port}; only 443 is allowed")
    if not policy.host_allowed(host):
        raise UrlRefused(f"{host} is not an allowed artifact host (see {ALLOWED_HOSTS_ENV})")
    addresses = list(resolve(host, 443))
    if not addresses:
        raise UrlRefused(f"{host} does not resolve")
    if not all(is_public_address(address) for address in addresses):
        raise UrlRefused(f"{host} resolves to a private, loopback, link-local, multicast or reserved address")


def peer_address(response: requests.Response) -> str | None:
    """The address the response came from, when urllib3 still holds the connection (stream=True)."""
    raw: Any = getattr(response, "raw", None)
    connection = getattr(raw, "_connection", None) or getattr(raw, "connection", None)
    sock = getattr(connection, "sock", None)
    try:
        return str(sock.getpeername()[0]) if sock is not None else None
    except (OSError, AttributeError, IndexError, TypeError):
        return None


def check_peer(response: requests.Response, url: str, policy: UrlPolicy) -> None:
    """Refuse a response whose connection reached an address the checked name should not lead to."""
    address = peer_address(response)
    if address is None:
        return
    if is_public_address(address) or (policy.allow_loopback_http and is_loopback_address(address)):
        return
    host = urlsplit(url).hostname or "?"
    raise UrlRefused(f"the connection to {host} reached a non-public address")


def guarded_get(
    session: requests.Session,
    url: str,
    policy: UrlPolicy,
    *,
    resolve: Resolver = system_resolver,
    max_redirects: int = MAX_REDIRECTS,
    **kwargs: Any,
) -> requests.Response:
    """``session.get`` that checks the URL and follows at most ``max_redirects`` redirects itself,
    checking every hop. A name that does not resolve raises ``requests.ConnectionError`` (retryable)."""
    for _ in range(max_redirects + 1):
        try:
            check_url(url, policy, resolve)
        except OSError:
            raise requests.ConnectionError("the artifact host does not resolve") from None
        response = session.get(url, allow_redirects=False, **kwargs)
        try:
            check_peer(response, url, policy)
        except UrlRefused:
            response.close()
            raise
        location = response.headers.get("Location")
        if response.status_code not in _REDIRECT_STATUSES or not location:
            return response
        response.close()
        url = urljoin(url, location)
    raise UrlRefused(f"more than {max_redirects} redirects")
