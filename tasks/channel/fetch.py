"""Fetching one channel iCal feed over HTTP(S), behind an SSRF guard (SPEC 6.4).

A feed URL is typed in by whoever sets up a channel mapping, so it is untrusted: without a
guard, `http://169.254.169.254/latest/meta-data/` or `http://10.0.0.5:5432/` would make this
worker a proxy into our own network. The guard:

- accepts only `http` and `https` (`webcal`/`webcals` are read as `https`, which is what
  calendar clients do), never `file:`, `gopher:` or anything else;
- resolves the host itself and refuses unless *every* address it resolves to is globally
  routable (`ipaddress` `is_global`, and not multicast), looking through IPv4-mapped, 6to4 and
  NAT64 IPv6 forms at the IPv4 address inside (`::ffff:127.0.0.1` is loopback);
- does so at connect time, inside the HTTP client's network backend, and connects to exactly
  the address it has just vetted: a DNS answer that changes between a check and the connect
  (DNS rebinding) can never swap in a private address;
- follows redirects itself (at most three), vetting every hop before its request;
- lets through the hosts listed in `CMW_CHANNEL_ALLOWED_HOSTS`, matched against the URL's host
  as written (a name or an address literal), e.g. a feed server on the private network.

A refusal raises before any socket is opened. Environment proxies are ignored (`trust_env=False`):
a proxy would make the connect-time check vet the proxy instead of the feed host.

Limits: 5 s to connect and 30 s in all (each request's reads wait at most the budget left when
it starts, and the budget is checked again between chunks of the body), a size cap (10 MiB,
counted on the decoded body, so a gzip bomb stops at the cap), and a Content-Length above the
cap is refused before the body is read. Conditional GET with the mapping's last validators; a
304 is a cheap `not_modified` run.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import ipaddress
import os
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import httpcore
import httpx

from workers.settings import get_settings

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_TOTAL_TIMEOUT = 30.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 3
USER_AGENT = "CentralMemoryWorkers/1.0 (channel calendar sync)"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SCHEMES = {"http": "http", "https": "https", "webcal": "https", "webcals": "https"}
# NAT64 prefixes (RFC 6052 well-known, RFC 8215 local use): the IPv4 address in the last 32
# bits is what a NAT64 gateway would connect to.
NAT64_NETWORKS = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[tuple[Any, ...]]]


class FetchError(Exception):
    """A feed that could not be read. The sync's outcome (a sync_log error), not a task failure.

    Messages name the host, never the whole URL: feed URLs often carry a secret token.
    """

    kind = "error"

    def __init__(
        self, message: str, *, http_status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.retry_after = retry_after


class FetchRefused(FetchError):
    """The SSRF guard said no: a scheme, host or address we never connect to."""

    kind = "refused"


@dataclass(frozen=True)
class FetchResult:
    status: Literal["ok", "not_modified"]
    http_status: int
    body: bytes
    etag: str | None
    last_modified: str | None
    redirects: int


# -- the guard -------------------------------------------------------------------------------


def is_public_address(address: Address) -> bool:
    """True for a globally routable unicast address, looking inside IPv6 forms that carry an
    IPv4 address (mapped, 6to4, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address.sixtofour is not None and not is_public_address(address.sixtofour):
            return False
        if any(address in net for net in NAT64_NETWORKS):
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


def normalise_host(host: str) -> str:
    """Lower case, no brackets around an IPv6 literal, no trailing dot."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host.rstrip(".")


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class AddressGuard:
    """Decides which addresses a host may be reached at; raises FetchRefused otherwise."""

    def __init__(self, allowed_hosts: Iterable[str], resolver: Resolver | None = None) -> None:
        self.allowed = frozenset(normalise_host(h) for h in allowed_hosts if h.strip())
        self._resolve = resolver or socket.getaddrinfo

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for host:port, every one of them vetted."""
        name = normalise_host(host)
        if not name:
            raise FetchRefused("the URL has no host")
        literal = _literal(name)
        if literal is not None:
            # A literal needs no DNS: it is checked (or allowed) as it stands.
            if name in self.allowed or is_public_address(literal):
                return [str(literal)]
            raise FetchRefused(f"refused: {name} is not a public address")
        try:
            infos = self._resolve(name, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise FetchError(f"cannot resolve {name}: {exc}") from exc
        resolved: list[str] = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
            if str(address) not in resolved:
                resolved.append(str(address))
            if name not in self.allowed and not is_public_address(address):
                # Every address must be public: a name resolving to one public and one private
                # address would otherwise be a coin toss away from our network.
                raise FetchRefused(f"refused: {name} resolves to a non-public address ({address})")
        if not resolved:
            raise FetchError(f"cannot resolve {name}: no addresses")
        return resolved


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's own sync backend, but a TCP connection goes only to an address the guard
    vetted a moment before, and its peer is checked once connected."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for address in self._guard.addresses(host, port):  # raises before any socket exists
            try:
                stream = self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
                continue
            peer = stream.get_extra_info("server_addr")
            if not peer or ipaddress.ip_address(peer[0]) != ipaddress.ip_address(address):
                stream.close()
                raise FetchRefused(f"refused: connected to {peer!r}, not the vetted {address}")
            return stream
        assert last_error is not None
        raise last_error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise FetchRefused("refused: unix sockets are never used for feeds")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs milliseconds; one context per process serves every fetch.
    return httpx.create_ssl_context()


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport with its connection pool built on the guarded backend.

    httpx does not take a network backend as an argument, so the pool it builds is replaced by
    an identical one that has ours (httpcore's documented extension point).
    """

    def __init__(self, guard: AddressGuard) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False, retries=0)
        self._pool = httpcore.ConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=KEEPALIVE_CONNECTIONS,
            max_keepalive_connections=KEEPALIVE_CONNECTIONS,
            keepalive_expiry=KEEPALIVE_SECONDS,
            http1=True,
            http2=False,
            retries=0,
            network_backend=GuardedBackend(guard),
        )


# One guarded transport per process and allowed-host list: a worker syncing hundreds of feeds
# of one channel (all on www.airbnb.com) reuses its kept-alive connections instead of paying a
# TCP and TLS handshake per feed. Safe: a pooled connection was vetted when it was opened, and
# stays with that address whatever DNS says later. Keyed by pid so a forked worker process
# never shares its parent's sockets.
KEEPALIVE_CONNECTIONS = 20
KEEPALIVE_SECONDS = 60.0
_transports: dict[tuple[int, frozenset[str]], GuardedTransport] = {}


def _shared_transport(allowed: frozenset[str]) -> GuardedTransport:
    key = (os.getpid(), allowed)
    transport = _transports.get(key)
    if transport is None:
        for old in [k for k in _transports if k[0] != key[0]]:
            del _transports[old]  # a parent's, inherited by fork: drop it, never use it
        transport = _transports[key] = GuardedTransport(AddressGuard(allowed))
    return transport


def close_shared_transports() -> None:
    """Close this process's pooled connections (tests start each case from none)."""
    for key in [k for k in _transports if k[0] == os.getpid()]:
        _transports.pop(key).close()


# -- the fetch -------------------------------------------------------------------------------


def normalise_url(raw: str | httpx.URL, base: httpx.URL | None = None) -> httpx.URL:
    """The URL to request: `webcal` read as `https`; any scheme but http(s) refused."""
    try:
        url = httpx.URL(raw) if base is None else base.join(raw)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        # Not the parser's message: it may quote the URL, and feed URLs carry tokens.
        raise FetchRefused("refused: not a valid URL") from exc
    scheme = SCHEMES.get(url.scheme.lower())
    if scheme is None:
        raise FetchRefused(f"refused: scheme {url.scheme or '(none)'!r} is not http or https")
    if scheme != url.scheme:
        url = url.copy_with(scheme=scheme)
    if not url.host:
        raise FetchRefused("refused: the URL has no host")
    return url


def _port(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def fetch_feed(
    url: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
    resolver: Resolver | None = None,
) -> FetchResult:
    """GET one feed (conditional, guarded, capped). Raises FetchError for every failure."""
    allowed = frozenset(
        normalise_host(h)
        for h in (get_settings().channel_allowed_hosts if allowed_hosts is None else allowed_hosts)
        if h.strip()
    )
    guard = AddressGuard(allowed, resolver)
    # The default resolver shares the process's pool; a custom one (tests) gets its own.
    shared = resolver is None
    transport = _shared_transport(allowed) if shared else GuardedTransport(guard)
    headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    # A client per fetch (its own cookie jar: nothing of one listing's responses is sent with
    # another's requests) over the transport. Not closed: that would close the shared pool.
    client = httpx.Client(transport=transport, follow_redirects=False, trust_env=False)
    try:
        return _get(
            client,
            guard,
            normalise_url(url),
            headers,
            deadline=time.monotonic() + total_timeout,
            connect_timeout=connect_timeout,
            max_bytes=max_bytes,
        )
    finally:
        if not shared:
            transport.close()


def _get(
    client: httpx.Client,
    guard: AddressGuard,
    current: httpx.URL,
    headers: dict[str, str],
    *,
    deadline: float,
    connect_timeout: float,
    max_bytes: int,
) -> FetchResult:
    """The request and its redirects (each hop vetted before its request)."""
    for hop in range(MAX_REDIRECTS + 1):
        # Vetted here, before the request, and again by the backend at connect time.
        guard.addresses(current.host, _port(current))
        try:
            with client.stream(
                "GET", current, headers=headers, timeout=_timeout(deadline, connect_timeout)
            ) as response:
                if response.status_code in REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError(
                            f"HTTP {response.status_code} from {current.host} without a Location",
                            http_status=response.status_code,
                        )
                    if hop == MAX_REDIRECTS:
                        raise FetchError(
                            f"more than {MAX_REDIRECTS} redirects (last from {current.host})",
                            http_status=response.status_code,
                        )
                    current = normalise_url(location, base=current)
                    continue
                return _read(response, current, hop, deadline, max_bytes)
        except httpx.TimeoutException as exc:
            raise FetchError(f"timed out reading {current.host}: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            raise FetchError(
                f"cannot reach {current.host}: {type(exc).__name__} {str(exc)[:120]}".strip()
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _timeout(deadline: float, connect_timeout: float) -> httpx.Timeout:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError("timed out: the total time budget is spent")
    return httpx.Timeout(left, connect=min(connect_timeout, left), pool=left)


def _read(
    response: httpx.Response, url: httpx.URL, redirects: int, deadline: float, max_bytes: int
) -> FetchResult:
    status = response.status_code
    etag = response.headers.get("etag")
    last_modified = response.headers.get("last-modified")
    if status == 304:
        response.read()  # no body; reading to its end returns the connection to the pool
        return FetchResult("not_modified", status, b"", etag, last_modified, redirects)
    if status >= 400 or not 200 <= status < 300 or status in (204, 206):
        raise FetchError(
            f"HTTP {status} from {url.host}",
            http_status=status,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(
            f"feed from {url.host} is too big: {int(declared)} bytes > cap {max_bytes}",
            http_status=status,
        )
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(
                f"feed from {url.host} is too big: over the cap of {max_bytes} bytes",
                http_status=status,
            )
        if time.monotonic() > deadline:
            raise FetchError(f"timed out reading {url.host}: total time budget spent")
        chunks.append(chunk)
    return FetchResult("ok", status, b"".join(chunks), etag, last_modified, redirects)
