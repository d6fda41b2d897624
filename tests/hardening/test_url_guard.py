"""Fetch only what BuildPixel serves (issue 13 item 3): scheme, host allow-list, resolved addresses,
every redirect hop. The resolver is injected: no test depends on real DNS; servers run on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
import requests

from pixelbridge.adapters.buildpixel import ArtifactUrlRefused, BuildPixelClient
from pixelbridge.adapters.url_guard import (
    ALLOW_LOOPBACK_ENV,
    ALLOWED_HOSTS_ENV,
    UrlPolicy,
    UrlRefused,
    check_peer,
    check_url,
    guarded_get,
    is_public_address,
)

POLICY = UrlPolicy.from_environment({})  # the deployed default: BuildPixel's domain, no loopback
LOCAL = UrlPolicy(allowed_hosts=POLICY.allowed_hosts, allow_loopback_http=True)
DNS = {
    "artifacts.buildpixel.io": ["104.18.1.1"],
    "buildpixel.io": ["2606:4700::6810:101"],
    "rebind.buildpixel.io": ["104.18.1.1", "10.0.0.7"],
    "meta.buildpixel.io": ["169.254.169.254"],
    "internal.buildpixel.io": ["192.168.1.10"],
    "mapped.buildpixel.io": ["::ffff:127.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
    "127.0.0.1": ["127.0.0.1"],
}


def resolve(host: str, port: int) -> Iterable[str]:
    return DNS.get(host, [host])  # an IP literal resolves to itself


def test_the_deployed_default_allows_buildpixel_only_over_https() -> None:
    assert POLICY.allowed_hosts == {"buildpixel.io", "*.buildpixel.io"} and not POLICY.allow_loopback_http
    check_url("https://artifacts.buildpixel.io/a/b.tar.gz?sig=x", POLICY, resolve)
    check_url("https://BuildPixel.io./a.tar.gz", POLICY, resolve)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://artifacts.buildpixel.io/a.tar.gz", "not https"),
        ("ftp://artifacts.buildpixel.io/a.tar.gz", "not https"),
        ("https://artifacts.buildpixel.io:8443/a.tar.gz", "port 8443"),
        ("https://user:pw@artifacts.buildpixel.io/a", "credentials"),
        ("https://evil.example/a.tar.gz", "not an allowed artifact host"),
        ("https://buildpixel.io.evil.example/a", "not an allowed artifact host"),
        ("https://evilbuildpixel.io/a", "not an allowed artifact host"),
        ("https://169.254.169.254/latest/meta-data/", "not an allowed artifact host"),
        ("https://127.0.0.1:9001/2018-06-01/runtime/invocation/next", "only 443"),
        ("https://meta.buildpixel.io/latest/meta-data/", "link-local"),
        ("https://internal.buildpixel.io/a", "private"),
        ("https://rebind.buildpixel.io/a", "private"),  # one public, one private answer: refused
        ("https://mapped.buildpixel.io/a", "loopback"),  # IPv4-mapped loopback
        ("https:///a", "no host"),
    ],
)
def test_urls_outside_what_buildpixel_serves_are_refused(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused, match=reason):
        check_url(url, POLICY, resolve)


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.0.1",
        "127.0.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (an address to refuse, not one to bind)
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "::1",
        "fe80::1%eth0",
        "fd00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",  # 6to4 around 127.0.0.1
        "2001:db8::1",
        "not-an-address",
    ],
)
def test_non_public_addresses_are_recognised(address: str) -> None:
    assert not is_public_address(address)


def test_public_addresses_are_allowed() -> None:
    assert is_public_address("104.18.1.1") and is_public_address("2606:4700::6810:101")


def test_loopback_http_needs_the_explicit_local_setting() -> None:
    with pytest.raises(UrlRefused):
        check_url("http://127.0.0.1:4566/artifacts/x", POLICY, resolve)
    local = UrlPolicy.from_environment({ALLOW_LOOPBACK_ENV: "true", ALLOWED_HOSTS_ENV: "cdn.example.com"})
    assert local.allow_loopback_http and local.allowed_hosts == {"cdn.example.com"}
    check_url("http://127.0.0.1:4566/artifacts/x", local, resolve)
    check_url("http://localhost:4566/artifacts/x", local, resolve)
    for url in ("http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/x", "http://cdn.example.com/x"):
        with pytest.raises(UrlRefused):  # the local setting opens loopback only
            check_url(url, local, lambda host, port: [host if host[0].isdigit() else "93.184.216.34"])


def test_a_wildcard_matches_subdomains_only() -> None:
    policy = UrlPolicy(allowed_hosts=frozenset({"*.cdn.example.com"}))
    assert policy.host_allowed("eu.cdn.example.com")
    assert not policy.host_allowed("cdn.example.com") and not policy.host_allowed("xcdn.example.com")


def test_the_connected_address_is_checked_again_dns_rebinding() -> None:
    def response_from(address: str) -> Any:
        sock = SimpleNamespace(getpeername=lambda: (address, 443))
        return SimpleNamespace(raw=SimpleNamespace(_connection=SimpleNamespace(sock=sock)))

    check_peer(response_from("104.18.1.1"), "https://artifacts.buildpixel.io/a", POLICY)
    with pytest.raises(UrlRefused, match="non-public"):
        check_peer(response_from("169.254.169.254"), "https://artifacts.buildpixel.io/a", POLICY)
    check_peer(response_from("127.0.0.1"), "http://127.0.0.1/a", LOCAL)


# -- redirects, against a real server on 127.0.0.1 --------------------------------------------------------


class _Redirector(BaseHTTPRequestHandler):
    """``/to?<url>`` answers 302 to ``<url>``; ``/loop`` redirects to itself; ``/ok`` answers 200."""

    hits: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        if self.path.startswith("/to?"):
            self._answer(302, location=self.path[4:])
        elif self.path == "/loop":
            self._answer(302, location="/loop")
        else:
            self._answer(200)

    def _answer(self, status: int, location: str = "") -> None:
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Redirector.hits = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/", "not https"),
        ("https://169.254.169.254/latest/meta-data/iam/", "not an allowed artifact host"),
        ("https://meta.buildpixel.io/x", "link-local"),
        ("https://evil.example/x", "not an allowed artifact host"),
        ("https://user@artifacts.buildpixel.io/x", "credentials"),
    ],
)
def test_every_redirect_hop_is_checked(server: str, target: str, reason: str) -> None:
    with requests.Session() as session, pytest.raises(UrlRefused, match=reason):
        guarded_get(session, f"{server}/to?{target}", LOCAL, resolve=resolve, timeout=5)
    assert _Redirector.hits == [f"/to?{target}"]  # the hop was refused before any request to it


def test_redirects_are_bounded(server: str) -> None:
    with requests.Session() as session, pytest.raises(UrlRefused, match="more than 5 redirects"):
        guarded_get(session, f"{server}/loop", LOCAL, resolve=resolve, timeout=5)
    assert len(_Redirector.hits) == 6


def test_an_allowed_redirect_is_followed(server: str) -> None:
    with requests.Session() as session:
        response = guarded_get(session, f"{server}/to?/ok", LOCAL, resolve=resolve, timeout=5)
    assert response.status_code == 200 and _Redirector.hits == ["/to?/ok", "/ok"]


def test_the_buildpixel_client_refuses_without_a_request_and_without_the_url(server: str) -> None:
    client = BuildPixelClient("https://api.buildpixel.io", lambda: "token", resolve=resolve)  # default policy
    signed = f"{server}/ok?signature=secret-capability"
    with pytest.raises(ArtifactUrlRefused) as refused:
        client.open_artifact(signed)
    assert "not https" in str(refused.value) and "secret-capability" not in str(refused.value)
    assert _Redirector.hits == []
