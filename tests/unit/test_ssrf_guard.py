"""The feed fetcher and its SSRF guard, against a real HTTP server on 127.0.0.1.

No test here touches the network beyond loopback: a Python audit hook watches every
`socket.connect` while a test runs, records it, and aborts any connection to an address that
is not 127.0.0.1 / ::1 -- so "refused without a connection" is observed, not assumed, and a
bug in the guard could never reach a private range or the internet from this suite.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
import threading
import time

import pytest

from tasks.channel.fetch import (
    AddressGuard,
    FetchError,
    FetchRefused,
    close_shared_transports,
    fetch_feed,
    is_public_address,
    normalise_url,
    parse_retry_after,
)
from tests.support.feeds import FeedServer, airbnb_feed

LOOPBACK = {"127.0.0.1", "::1"}


class ConnectWatch:
    """Records socket.connect / getaddrinfo while active; forbids non-loopback connects."""

    def __init__(self) -> None:
        self.active = False
        self.connects: list[tuple] = []
        self.lookups: list[str] = []
        self.thread_id: int | None = None

    def __call__(self, event: str, args: tuple) -> None:
        if not self.active:
            return
        if event == "socket.connect":
            address = args[1]
            if isinstance(address, tuple):
                self.connects.append(address)
                if str(address[0]) not in LOOPBACK:
                    raise RuntimeError(f"test forbids connecting to {address!r}")
        elif event == "socket.getaddrinfo":
            # From any thread: the fetcher resolves names off its event loop.
            self.lookups.append(str(args[0]))


WATCH = ConnectWatch()
sys.addaudithook(WATCH)


@pytest.fixture
def watch():
    close_shared_transports()  # no kept-alive connection from an earlier test
    WATCH.connects.clear()
    WATCH.lookups.clear()
    WATCH.thread_id = threading.get_ident()
    WATCH.active = True
    try:
        yield WATCH
    finally:
        WATCH.active = False


@pytest.fixture(scope="module")
def server():
    with FeedServer() as srv:
        yield srv


BODY = airbnb_feed([])
NONE: frozenset[str] = frozenset()
LOCAL = frozenset({"127.0.0.1"})


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "fe80::1",
        "fc00::1",
        "2002:a00:1::",  # 6to4 of 10.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    ],
)
def test_non_public_addresses(address):
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses(address):
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:{port}/feed.ics", NONE),  # loopback, not allowed
        ("http://10.0.0.1/feed.ics", LOCAL),
        ("http://169.254.169.254/latest/meta-data/", LOCAL),
        ("http://100.64.0.1/feed.ics", LOCAL),
        ("http://[::ffff:127.0.0.1]:{port}/feed.ics", LOCAL),  # the v4 listing is not this host
        ("http://[::1]:{port}/feed.ics", LOCAL),
        ("http://0.0.0.0:{port}/feed.ics", LOCAL),
        ("webcal://10.0.0.1/feed.ics", LOCAL),
        ("http://2130706433:{port}/feed.ics", NONE),  # 127.0.0.1 as one integer
        ("file:///etc/passwd", LOCAL),
        ("gopher://127.0.0.1:{port}/_GET", LOCAL),
        ("ftp://127.0.0.1:{port}/feed.ics", LOCAL),
        ("http:///feed.ics", LOCAL),
    ],
)
def test_refused_before_any_connection(server, watch, url, allowed):
    url = url.format(port=server.port)
    before = len(server.requests)
    with pytest.raises(FetchRefused):
        fetch_feed(url, allowed_hosts=allowed)
    assert watch.connects == []
    assert len(server.requests) == before


def test_a_name_resolving_to_loopback_is_refused_without_a_connection(server, watch):
    with pytest.raises(FetchRefused, match="non-public"):
        fetch_feed(f"http://localhost:{server.port}/feed.ics", allowed_hosts=LOCAL)
    assert watch.connects == []


def test_a_literal_private_address_needs_no_dns(watch):
    with pytest.raises(FetchRefused):
        fetch_feed("http://10.0.0.1/feed.ics", allowed_hosts=NONE)
    assert watch.lookups == [] and watch.connects == []


def fake_resolver(answers: dict[str, list[list[str]]]):
    """getaddrinfo stand-in: each call for a name pops its next answer (the last one sticks)."""
    calls: list[str] = []

    def resolve(host, port, type=0, **kw):
        calls.append(host)
        queue = answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    resolve.calls = calls  # type: ignore[attr-defined]
    return resolve


def test_dns_rebinding_is_caught_at_connect_time(watch):
    # Public when first asked, private when the connection is made: refused at connect time,
    # and nothing is connected to (a public address here would be aborted by the watch too).
    resolver = fake_resolver({"feeds.example": [["93.184.216.34"], ["10.0.0.1"]]})
    with pytest.raises(FetchRefused, match="10.0.0.1"):
        fetch_feed("http://feeds.example/feed.ics", allowed_hosts=NONE, resolver=resolver)
    assert resolver.calls == ["feeds.example", "feeds.example"]
    assert watch.connects == []


def test_every_resolved_address_must_be_public():
    resolver = fake_resolver({"mixed.example": [["93.184.216.34", "192.168.0.10"]]})
    with pytest.raises(FetchRefused, match="192.168.0.10"):
        AddressGuard(NONE, resolver).addresses("mixed.example", 443)


def test_an_allowed_name_connects_to_the_vetted_address_with_its_own_host_header(server, watch):
    server.set_feed("/named.ics", BODY)
    resolver = fake_resolver({"feeds.internal": [["127.0.0.1"]]})
    url = f"http://feeds.internal:{server.port}/named.ics"
    result = fetch_feed(url, allowed_hosts={"feeds.internal"}, resolver=resolver)
    assert result.status == "ok" and result.body == BODY
    assert server.hits("/named.ics")[-1].headers["host"] == f"feeds.internal:{server.port}"
    assert [c[0] for c in watch.connects] == ["127.0.0.1"]


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/feed.ics",
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[::ffff:127.0.0.1]:{port}/ok.ics",
        "file:///etc/passwd",
        "gopher://127.0.0.1:{port}/x",
    ],
)
def test_an_allowed_host_redirecting_to_a_private_one_is_refused_before_connecting(
    server, watch, target
):
    # 127.0.0.1 plays the public feed host (it is the allowed one); its redirect points inside.
    server.set_feed("/ok.ics", BODY)
    server.set_redirect("/bounce.ics", target.format(port=server.port))
    with pytest.raises(FetchRefused):
        fetch_feed(server.url("/bounce.ics"), allowed_hosts=LOCAL)
    assert {c[0] for c in watch.connects} == {"127.0.0.1"}
    assert len(watch.connects) == 1  # the first hop only


def test_redirects_are_followed_up_to_three(server, watch):
    server.set_feed("/final.ics", BODY)
    server.set_redirect("/r1", "/r2", status=301)
    server.set_redirect("/r2", "/r3", status=307)
    server.set_redirect("/r3", "/final.ics", status=308)
    result = fetch_feed(server.url("/r1"), allowed_hosts=LOCAL)
    assert result.status == "ok" and result.redirects == 3 and result.body == BODY
    server.set_redirect("/r0", "/r1")
    with pytest.raises(FetchError, match="more than 3 redirects"):
        fetch_feed(server.url("/r0"), allowed_hosts=LOCAL)


def test_conditional_get_with_etag_and_last_modified(server, watch):
    route = server.set_feed("/cond.ics", BODY, etag=True, last_modified=True)
    first = fetch_feed(server.url("/cond.ics"), allowed_hosts=LOCAL)
    assert first.status == "ok" and first.etag == route.etag
    again = fetch_feed(
        server.url("/cond.ics"),
        etag=first.etag,
        last_modified=first.last_modified,
        allowed_hosts=LOCAL,
    )
    assert again.status == "not_modified" and again.http_status == 304 and again.body == b""
    sent = server.hits("/cond.ics")[-1].headers
    assert sent["if-none-match"] == route.etag
    assert sent["if-modified-since"] == route.last_modified
    server.set_feed("/lm.ics", BODY, etag=False, last_modified="Tue, 01 Jul 2026 10:00:00 GMT")
    only_lm = fetch_feed(
        server.url("/lm.ics"),
        last_modified="Tue, 01 Jul 2026 10:00:00 GMT",
        allowed_hosts=LOCAL,
    )
    assert only_lm.status == "not_modified"


def test_http_errors_carry_status_and_retry_after(server, watch):
    server.set_error("/500.ics", 500)
    with pytest.raises(FetchError) as failed:
        fetch_feed(server.url("/500.ics"), allowed_hosts=LOCAL)
    assert failed.value.http_status == 500 and not isinstance(failed.value, FetchRefused)
    server.set_error("/503.ics", 503, retry_after="120")
    with pytest.raises(FetchError) as busy:
        fetch_feed(server.url("/503.ics"), allowed_hosts=LOCAL)
    assert busy.value.http_status == 503 and busy.value.retry_after == 120
    server.set_error("/404.ics", 404)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch_feed(server.url("/404.ics"), allowed_hosts=LOCAL)


def test_retry_after_as_seconds_or_http_date():
    import datetime as dt

    now = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)
    assert parse_retry_after("3600", now) == 3600
    assert parse_retry_after("Wed, 01 Jul 2026 14:00:00 GMT", now) == 7200
    assert parse_retry_after("Wed, 01 Jul 2026 11:00:00 GMT", now) == 0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None, now) is None


def test_a_slow_feed_times_out_within_the_budget(server, watch):
    server.set_slow("/slow.ics", delay=3.0, body=BODY)
    started = time.monotonic()
    with pytest.raises(FetchError, match="timed out"):
        fetch_feed(server.url("/slow.ics"), allowed_hosts=LOCAL, total_timeout=0.5)
    assert time.monotonic() - started < 2.0


def test_a_body_over_the_cap_is_refused(server, watch):
    server.set_oversized("/big.ics", 3 * 1024 * 1024)
    with pytest.raises(FetchError, match="too big"):
        fetch_feed(server.url("/big.ics"), allowed_hosts=LOCAL, max_bytes=1024 * 1024)
    # Without a Content-Length the cap is counted while reading.
    server.set_oversized("/big-stream.ics", 3 * 1024 * 1024, declare_length=False)
    with pytest.raises(FetchError, match="too big"):
        fetch_feed(server.url("/big-stream.ics"), allowed_hosts=LOCAL, max_bytes=1024 * 1024)


def test_nothing_listening_is_unreachable_not_refused(watch):
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError, match="cannot reach") as failed:
        fetch_feed(f"http://127.0.0.1:{port}/feed.ics", allowed_hosts=LOCAL)
    assert not isinstance(failed.value, FetchRefused)


def test_webcal_is_read_as_https():
    assert str(normalise_url("webcal://example.com/cal.ics")) == "https://example.com/cal.ics"
    assert normalise_url("WEBCALS://example.com/x").scheme == "https"
    assert normalise_url("http://example.com/x").scheme == "http"


def test_the_process_keeps_feed_connections_alive_between_fetches(server, watch):
    server.set_feed("/keep.ics", BODY)
    for _ in range(3):
        assert fetch_feed(server.url("/keep.ics"), allowed_hosts=LOCAL).status == "ok"
    assert len(watch.connects) == 1  # one TCP connection for three feeds


def test_webcal_to_a_plain_http_server_fails_as_tls_not_as_a_refusal(server, watch):
    server.set_feed("/tls.ics", BODY)
    with pytest.raises(FetchError) as failed:
        fetch_feed(f"webcal://127.0.0.1:{server.port}/tls.ics", allowed_hosts=LOCAL)
    assert not isinstance(failed.value, FetchRefused)  # it tried https, as webcal means
