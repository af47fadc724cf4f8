"""Fetching channel iCal feeds over HTTP(S): many in flight per process, behind an SSRF guard
(SPEC 6.4, 7.1).

**Concurrency.** Fetching is I/O-bound: a feed spends ~300 ms waiting on the channel for a
millisecond of our CPU. Each worker process runs one `FeedFetcher`: an asyncio event loop in a
daemon thread with one httpx AsyncClient pool, to which the task's own thread submits fetches
and from which it takes the results as they complete (`concurrent.futures`), so the task's
thread applies one feed to the database while the loop keeps the next ones in flight. At most
`CMW_CHANNEL_FETCH_CONCURRENCY` fetches are in flight in the process (default 50) and at most
`CMW_CHANNEL_PER_HOST_CONCURRENCY` to one host (default 8): a fetch takes its host's slot
first and a process slot second, so feeds waiting for a busy host never hold a slot another
host could use. A process slot is held until the task has taken the result (`Fetched.done()`),
which bounds the bodies waiting in memory to the concurrency. Why a loop in a thread rather
than threads, a gevent pool or one task per feed is in docs/DECISIONS.md (measured).

**The guard.** A feed URL is typed in by whoever sets up a channel mapping, so it is untrusted:
without a guard, `http://169.254.169.254/latest/meta-data/` or `http://10.0.0.5:5432/` would
make this worker a proxy into our own network. The guard:

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

**Limits.** 5 s to connect and 30 s in all (each request's reads wait at most the budget left
when it starts, and the budget is checked again between chunks of the body). The body is read
raw and decoded here, layer by layer for stacked `Content-Encoding`s, each step producing at
most 64 KiB, and the size cap (10 MiB) counts the *decoded* bytes as they come: a gzip bomb,
stacked or not, stops at the cap having held little more than the cap; a body that cannot be
decoded is a FetchError like any other. Conditional GET with the mapping's last validators; a
304 is a cheap `not_modified` run.

**Secrets.** Feed URLs carry private tokens (Airbnb, Vrbo). Nothing here puts a URL's path,
query or user-info in an exception message: errors name `scheme://host` at most.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import email.utils
import functools
import ipaddress
import os
import socket
import ssl
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpcore
import httpx

from db.settings import get_settings

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_TOTAL_TIMEOUT = 30.0
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 3
USER_AGENT = "CentralMemoryWorkers/1.0 (channel calendar sync)"
# What we can decode with a bound on every step; a server sending anything else is an error.
ACCEPT_ENCODING = "gzip, deflate"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SCHEMES = {"http": "http", "https": "https", "webcal": "https", "webcals": "https"}
# NAT64 prefixes (RFC 6052 well-known, RFC 8215 local use): the IPv4 address in the last 32
# bits is what a NAT64 gateway would connect to.
NAT64_NETWORKS = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)
# Each decoding step yields at most this much: the unit in which the cap is checked.
DECODE_STEP = 64 * 1024
# Kept-alive connections per process: a worker syncing hundreds of feeds of one channel (all on
# www.airbnb.com) reuses them instead of paying a TCP and TLS handshake per feed. Safe: a pooled
# connection was vetted when it was opened and stays with that address whatever DNS says later.
KEEPALIVE_SECONDS = 60.0

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


@dataclass(frozen=True)
class FeedRequest:
    """One fetch: the URL (a secret), its validators and limits."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    total_timeout: float = DEFAULT_TOTAL_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES


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

    async def addresses_async(self, host: str, port: int) -> list[str]:
        """`addresses` without blocking the event loop: a literal is vetted at once, a name is
        resolved in a thread (getaddrinfo blocks)."""
        if _literal(normalise_host(host)) is not None:
            return self.addresses(host, port)
        return await anyio.to_thread.run_sync(self.addresses, host, port)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's AnyIO backend, but a TCP connection goes only to an address the guard vetted a
    moment before, and its peer is checked once connected."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last_error: Exception | None = None
        # Raises before any socket exists.
        for address in await self._guard.addresses_async(host, port):
            try:
                stream = await self._inner.connect_tcp(
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
                await stream.aclose()
                raise FetchRefused(f"refused: connected to {peer!r}, not the vetted {address}")
            return stream
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise FetchRefused("refused: unix sockets are never used for feeds")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs milliseconds; one context per process serves every fetch.
    return httpx.create_ssl_context()


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool built on the guarded backend.

    httpx does not take a network backend as an argument, so the pool it builds is replaced by
    an identical one that has ours (httpcore's documented extension point).
    """

    def __init__(self, guard: AddressGuard, max_connections: int) -> None:
        super().__init__(verify=_ssl_context(), trust_env=False, retries=0)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=KEEPALIVE_SECONDS,
            http1=True,
            http2=False,
            retries=0,
            network_backend=GuardedBackend(guard),
        )


# -- bounded decoding ------------------------------------------------------------------------


class _Layer:
    """One Content-Encoding, decoded in steps of at most DECODE_STEP bytes."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._obj = self._new()
        self._started = False

    def _new(self, raw_deflate: bool = False) -> Any:
        if self.encoding in ("gzip", "x-gzip"):
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # "deflate" is meant to be zlib-wrapped (RFC 9110 8.4.1.2); some servers send it raw.
        return zlib.decompressobj(-zlib.MAX_WBITS if raw_deflate else zlib.MAX_WBITS)

    def decode(self, data: bytes) -> Iterable[bytes]:
        try:
            yield from self._decode(data)
        except zlib.error as exc:
            raise FetchError(f"cannot decode the {self.encoding} body: {exc}") from None

    def _decode(self, data: bytes) -> Iterable[bytes]:
        if not self._started and data and self.encoding == "deflate":
            self._started = True
            if not _looks_like_zlib(data):
                self._obj = self._new(raw_deflate=True)
        while data:
            if self._obj.eof:
                if self.encoding in ("gzip", "x-gzip"):
                    # Concatenated gzip members are one valid stream (RFC 1952 2.2).
                    self._obj = self._new()
                else:
                    raise FetchError(f"cannot decode the {self.encoding} body: trailing data")
            out = self._obj.decompress(data, DECODE_STEP)
            if out:
                yield out
            data = self._obj.unconsumed_tail or (self._obj.unused_data if self._obj.eof else b"")
            # A full step may leave output inside zlib with no input left: drain it.
            while not data and len(out) == DECODE_STEP and not self._obj.eof:
                out = self._obj.decompress(b"", DECODE_STEP)
                if out:
                    yield out
                data = self._obj.unconsumed_tail

    def finish(self) -> None:
        if self._started is False and self.encoding == "deflate":
            return  # an empty body
        if not self._obj.eof:
            raise FetchError(f"cannot decode the {self.encoding} body: it is truncated")


def _looks_like_zlib(data: bytes) -> bool:
    return len(data) >= 2 and (data[0] & 0x0F) == 8 and (data[0] << 8 | data[1]) % 31 == 0


def content_layers(header: str | None) -> list[_Layer]:
    """The decoders for a Content-Encoding header, the last-applied encoding first."""
    names = [n.strip().lower() for n in (header or "").split(",") if n.strip()]
    layers = []
    for name in reversed(names):
        if name == "identity":
            continue
        if name not in ("gzip", "x-gzip", "deflate"):
            raise FetchError(f"unsupported Content-Encoding {name[:40]!r}")
        layers.append(_Layer(name))
    return layers


async def read_bounded(
    raw: AsyncIterator[bytes], encoding: str | None, max_bytes: int, deadline: float, host: str
) -> bytes:
    """The decoded body, never more than `max_bytes` of it (raises FetchError past the cap)."""
    layers = content_layers(encoding)
    body = bytearray()
    received = 0

    def take(pieces: Iterable[bytes]) -> None:
        for layer in layers:
            pieces = _through(layer, pieces)
        for piece in pieces:
            body.extend(piece)
            if len(body) > max_bytes:
                raise FetchError(f"feed from {host} is too big: over the cap of {max_bytes} bytes")

    async for chunk in raw:
        received += len(chunk)
        # The encoded body is never much bigger than the decoded one it carries.
        if received > max_bytes + DECODE_STEP:
            raise FetchError(f"feed from {host} is too big: over the cap of {max_bytes} bytes")
        take([chunk])
        if time.monotonic() > deadline:
            raise FetchError(f"timed out reading {host}: total time budget spent")
    for layer in layers:
        layer.finish()
    return bytes(body)


def _through(layer: _Layer, pieces: Iterable[bytes]) -> Iterable[bytes]:
    for piece in pieces:
        yield from layer.decode(piece)


# -- one fetch -------------------------------------------------------------------------------


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


def url_origin(url: str) -> str:
    """`scheme://host` of a feed URL: all of it that may be shown (no user-info, port, path or
    query: those can carry the feed's secret)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "(invalid URL)"
    return f"{parsed.scheme}://{parsed.host}" if parsed.host else "(no host)"


def host_key(url: str) -> str:
    """The host a fetch counts against for the per-host limit (the URL's host as written)."""
    try:
        return normalise_host(httpx.URL(url).host or "")
    except (httpx.InvalidURL, TypeError, ValueError):
        return ""


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


async def fetch_once(
    transport: GuardedTransport, guard: AddressGuard, request: FeedRequest
) -> FetchResult:
    """GET one feed (conditional, guarded, capped). Raises FetchError for every failure."""
    headers = {
        "User-Agent": USER_AGENT,
        "Accept": "text/calendar, */*;q=0.5",
        "Accept-Encoding": ACCEPT_ENCODING,
    }
    if request.etag:
        headers["If-None-Match"] = request.etag
    if request.last_modified:
        headers["If-Modified-Since"] = request.last_modified
    url = normalise_url(request.url)
    deadline = time.monotonic() + request.total_timeout
    # A client per fetch (its own cookie jar: nothing of one listing's responses is sent with
    # another's requests) over the shared transport. Not closed: that would close the pool.
    client = httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False)
    try:
        # A safety net over the per-read timeouts (a DNS lookup in its thread has none).
        async with asyncio.timeout(request.total_timeout + 5):
            return await _get(client, guard, url, headers, request, deadline)
    except TimeoutError as exc:
        raise FetchError(f"timed out reading {url.host}: total time budget spent") from exc
    except MemoryError as exc:
        raise FetchError(f"feed from {url.host} could not be held in memory") from exc


async def _get(
    client: httpx.AsyncClient,
    guard: AddressGuard,
    current: httpx.URL,
    headers: dict[str, str],
    request: FeedRequest,
    deadline: float,
) -> FetchResult:
    """The request and its redirects (each hop vetted before its request)."""
    for hop in range(MAX_REDIRECTS + 1):
        # Vetted here, before the request, and again by the backend at connect time.
        await guard.addresses_async(current.host, _port(current))
        try:
            async with client.stream(
                "GET",
                current,
                headers=headers,
                timeout=_timeout(deadline, request.connect_timeout),
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
                return await _read(response, current, hop, deadline, request.max_bytes)
        except httpx.TimeoutException as exc:
            raise FetchError(f"timed out reading {current.host}: {type(exc).__name__}") from exc
        except httpx.TransportError as exc:
            # The class only: httpx's messages can quote the request URL.
            raise FetchError(f"cannot reach {current.host}: {type(exc).__name__}") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _timeout(deadline: float, connect_timeout: float) -> httpx.Timeout:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError("timed out: the total time budget is spent")
    return httpx.Timeout(left, connect=min(connect_timeout, left), pool=left)


async def _read(
    response: httpx.Response, url: httpx.URL, redirects: int, deadline: float, max_bytes: int
) -> FetchResult:
    status = response.status_code
    etag = response.headers.get("etag")
    last_modified = response.headers.get("last-modified")
    if status == 304:
        await response.aread()  # no body; reading to its end returns the connection to the pool
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
    try:
        body = await read_bounded(
            response.aiter_raw(),
            response.headers.get("content-encoding"),
            max_bytes,
            deadline,
            url.host,
        )
    except FetchError as exc:
        exc.http_status = exc.http_status or status
        raise
    return FetchResult("ok", status, body, etag, last_modified, redirects)


# -- many fetches: the process's fetcher -----------------------------------------------------


class Fetched:
    """A fetch's outcome as the task's thread takes it: a result or a FetchError, and the
    process slot it holds until `done()` is called (which bounds the bodies in memory)."""

    def __init__(self, key: Any, outcome: FetchResult | FetchError, release: Callable) -> None:
        self.key = key
        self.result = outcome if isinstance(outcome, FetchResult) else None
        self.error = outcome if isinstance(outcome, FetchError) else None
        self._release: Callable | None = release

    def done(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None


class FeedFetcher:
    """An event loop in a daemon thread that runs this process's fetches (module docstring).

    `start(key, request)` returns a concurrent.futures.Future of a `Fetched`; the fetch waits for
    its host's slot, then a process slot, then runs. Bugs in the fetch code come back as the
    future's exception; every expected failure is a `Fetched` with `error` set.
    """

    def __init__(
        self,
        allowed_hosts: Iterable[str],
        *,
        concurrency: int,
        per_host: int,
        resolver: Resolver | None = None,
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.per_host = max(1, min(per_host, self.concurrency))
        self.guard = AddressGuard(allowed_hosts, resolver)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="cmw-feed-fetcher", daemon=True
        )
        self._thread.start()
        self._slots: asyncio.Semaphore | None = None
        # Per host: its slots, and a connection pool of its own. One pool for every host would
        # work too, but httpcore scans all of a pool's connections for each request, which at
        # 50 connections cost more CPU than the rest of a fetch (docs/PERFORMANCE.md).
        self._hosts: dict[str, tuple[asyncio.Semaphore, GuardedTransport]] = {}
        asyncio.run_coroutine_threadsafe(self._setup(), self._loop).result()

    async def _setup(self) -> None:
        # Created on the loop's own thread, as asyncio objects want.
        self._slots = asyncio.Semaphore(self.concurrency)

    def start(self, key: Any, request: FeedRequest) -> concurrent.futures.Future[Fetched]:
        return asyncio.run_coroutine_threadsafe(self._fetch(key, request), self._loop)

    async def _fetch(self, key: Any, request: FeedRequest) -> Fetched:
        assert self._slots is not None
        host = host_key(request.url)
        if host not in self._hosts:
            # A redirect to another host still runs over this host's pool: the pool keys its
            # connections by origin, and the guard vets every address it connects to.
            self._hosts[host] = (
                asyncio.Semaphore(self.per_host),
                GuardedTransport(self.guard, self.per_host),
            )
        host_slots, transport = self._hosts[host]
        async with host_slots:
            await self._slots.acquire()
            try:
                outcome: FetchResult | FetchError = await fetch_once(transport, self.guard, request)
            except FetchError as exc:
                outcome = exc
            except BaseException:
                self._slots.release()
                raise
        release = functools.partial(self._loop.call_soon_threadsafe, self._slots.release)
        return Fetched(key, outcome, release)

    def in_flight(self) -> int:
        """Process slots taken (fetching, or fetched and not yet taken by the task)."""
        assert self._slots is not None
        return self.concurrency - self._slots._value  # a gauge, read only

    def close(self) -> None:
        async def _close() -> None:
            for _, transport in self._hosts.values():
                await transport.aclose()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(_close(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)


# One fetcher per process and configuration. Keyed by pid: a forked worker process never uses
# its parent's loop thread (which does not exist in the child) or sockets.
_fetchers: dict[tuple[int, frozenset[str], int, int], FeedFetcher] = {}
_fetchers_lock = threading.Lock()


def shared_fetcher(
    allowed_hosts: Iterable[str] | None = None,
    *,
    concurrency: int | None = None,
    per_host: int | None = None,
) -> FeedFetcher:
    settings = get_settings()
    allowed = frozenset(
        normalise_host(h)
        for h in (settings.channel_allowed_hosts if allowed_hosts is None else allowed_hosts)
        if h.strip()
    )
    key = (
        os.getpid(),
        allowed,
        concurrency or settings.cmw_channel_fetch_concurrency,
        per_host or settings.cmw_channel_per_host_concurrency,
    )
    with _fetchers_lock:
        fetcher = _fetchers.get(key)
        if fetcher is None:
            for old in [k for k in _fetchers if k[0] != key[0]]:
                del _fetchers[old]  # a parent's, inherited by fork: never used here
            fetcher = _fetchers[key] = FeedFetcher(allowed, concurrency=key[2], per_host=key[3])
        return fetcher


def close_shared_fetchers() -> None:
    """Close this process's fetchers and their kept-alive connections (tests start from none)."""
    with _fetchers_lock:
        for key in [k for k in _fetchers if k[0] == os.getpid()]:
            _fetchers.pop(key).close()


# The name the tests and older callers know.
close_shared_transports = close_shared_fetchers


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
    """One feed, waited for: the same fetch the importer runs many of at once. Raises
    FetchError for every failure."""
    request = FeedRequest(url, etag, last_modified, connect_timeout, total_timeout, max_bytes)
    if resolver is None:
        fetcher = shared_fetcher(allowed_hosts)
    else:  # a custom resolver (tests) gets a fetcher of its own
        fetcher = FeedFetcher(
            get_settings().channel_allowed_hosts if allowed_hosts is None else allowed_hosts,
            concurrency=1,
            per_host=1,
            resolver=resolver,
        )
    try:
        fetched = fetcher.start(None, request).result()
        fetched.done()
    finally:
        if resolver is not None:
            fetcher.close()
    if fetched.error is not None:
        raise fetched.error
    assert fetched.result is not None
    return fetched.result
