"""Channel feeds for tests and the channel benchmark: a real HTTP server on 127.0.0.1, feed
bodies in each channel's own format, and builders for connections and mappings.

`FeedServer` is `http.server.ThreadingHTTPServer` in a daemon thread. Each path is a `Route`:
a feed (with ETag / Last-Modified and real 304s for conditional requests), an error status
(optionally with Retry-After), a redirect, a slow response, or an oversized body. Every
request is recorded (path and headers) so a test can assert what was asked and how often.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy.orm import Session

from tests.support.factories import insert

# -- the server ------------------------------------------------------------------------------


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    location: str | None = None
    retry_after: str | None = None
    delay: float = 0.0  # seconds before the response starts
    oversized: int | None = None  # stream this many filler bytes instead of body
    declare_length: bool = True  # send Content-Length (False: close-delimited body)
    content_type: str = "text/calendar; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    at: float


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout, a size cap) is what several tests are about.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FeedServer:
    """A threaded HTTP server on 127.0.0.1 (an ephemeral port) serving Routes by path."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        # Requests being answered right now, and the most there ever were at once.
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are two writes: without TCP_NODELAY a kept-alive connection
            # waits out the client's delayed ACK (40 ms) on every response, as real servers
            # do not.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the tests assert on server.requests instead

            def do_GET(self) -> None:
                with server._lock:
                    server.active += 1
                    server.peak = max(server.peak, server.active)
                try:
                    self._get()
                finally:
                    with server._lock:
                        server.active -= 1

            def _get(self) -> None:
                path = self.path.split("?", 1)[0]
                with server._lock:
                    server.requests.append(
                        Request(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            time.monotonic(),
                        )
                    )
                    route = server.routes.get(path)
                if route is None:
                    self._send(404, b"not found", {"Content-Type": "text/plain"})
                    return
                if route.delay:
                    time.sleep(route.delay)
                if route.location is not None:
                    self._send(route.status, b"", {"Location": route.location})
                    return
                if route.status != 200:
                    headers = {"Content-Type": "text/plain", **route.headers}
                    if route.retry_after is not None:
                        headers["Retry-After"] = route.retry_after
                    self._send(route.status, b"error", headers)
                    return
                validators = {}
                if route.etag:
                    validators["ETag"] = route.etag
                if route.last_modified:
                    validators["Last-Modified"] = route.last_modified
                inm = self.headers.get("If-None-Match")
                ims = self.headers.get("If-Modified-Since")
                if (route.etag and inm == route.etag) or (
                    not inm and route.last_modified and ims == route.last_modified
                ):
                    self._send(304, b"", validators, body_allowed=False)
                    return
                headers = {"Content-Type": route.content_type, **validators, **route.headers}
                if route.oversized is not None:
                    self._send_filler(route, headers)
                    return
                self._send(200, route.body, headers)

            def _send(
                self,
                status: int,
                body: bytes,
                headers: dict[str, str],
                body_allowed: bool = True,
            ) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if body_allowed:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body_allowed and body:
                    self.wfile.write(body)

            def _send_filler(self, route: Route, headers: dict[str, str]) -> None:
                assert route.oversized is not None
                self.send_response(200)
                for key, value in headers.items():
                    self.send_header(key, value)
                if route.declare_length:
                    self.send_header("Content-Length", str(route.oversized))
                else:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                chunk = b"X" * 65536
                sent = 0
                try:
                    while sent < route.oversized:
                        piece = chunk[: min(len(chunk), route.oversized - sent)]
                        self.wfile.write(piece)
                        sent += len(piece)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading at its cap, as it should

        self.httpd = _QuietServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> FeedServer:
        self.thread.start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    # -- routes --------------------------------------------------------------------------

    def set_feed(
        self,
        path: str,
        body: bytes,
        *,
        etag: bool | str = True,
        last_modified: bool | str = False,
        **extra: Any,
    ) -> Route:
        """Serve a feed; by default with a strong ETag of its body (so a re-fetch is a 304)."""
        tag = f'"{hashlib.sha256(body).hexdigest()[:16]}"' if etag is True else (etag or None)
        modified = (
            email.utils.format_datetime(dt.datetime.now(dt.UTC), usegmt=True)
            if last_modified is True
            else (last_modified or None)
        )
        route = Route(body=body, etag=tag, last_modified=modified, **extra)
        self.routes[path] = route
        return route

    def set_error(self, path: str, status: int, *, retry_after: str | None = None) -> Route:
        route = Route(status=status, retry_after=retry_after)
        self.routes[path] = route
        return route

    def set_redirect(self, path: str, location: str, *, status: int = 302) -> Route:
        route = Route(status=status, location=location)
        self.routes[path] = route
        return route

    def set_slow(self, path: str, delay: float, body: bytes = b"") -> Route:
        route = Route(body=body, delay=delay)
        self.routes[path] = route
        return route

    def set_oversized(self, path: str, size: int, *, declare_length: bool = True) -> Route:
        route = Route(oversized=size, declare_length=declare_length)
        self.routes[path] = route
        return route

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?", 1)[0] == path]


# -- feed bodies, each in its channel's format -----------------------------------------------


@dataclass(frozen=True)
class Event:
    uid: str
    start: dt.date
    end: dt.date
    summary: str
    description: str | None = None
    status: str | None = None
    dtstamp: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _date(value: dt.date) -> str:
    # Not strftime: it does not pad years before 1000 to four digits.
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Fold at 75 octets, as the channels do (not splitting UTF-8 sequences)."""
    out, current, size, limit = [], "", 0, 75
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            out.append(current)
            current, size, limit = "", 0, 74
        current += char
        size += width
    out.append(current)
    return "\r\n ".join(out)


def render(prodid_line: str, events: Iterable[Event], *, header: Sequence[str] = ()) -> bytes:
    lines = ["BEGIN:VCALENDAR", prodid_line, "CALSCALE:GREGORIAN", "VERSION:2.0", *header]
    for e in events:
        lines += [
            "BEGIN:VEVENT",
            f"DTEND;VALUE=DATE:{_date(e.end)}",
            f"DTSTART;VALUE=DATE:{_date(e.start)}",
            f"DTSTAMP:{e.dtstamp:%Y%m%dT%H%M%SZ}",
            f"UID:{_escape(e.uid)}",
        ]
        if e.description is not None:
            lines.append(f"DESCRIPTION:{_escape(e.description)}")
        lines.append(f"SUMMARY:{_escape(e.summary)}")
        if e.status:
            lines.append(f"STATUS:{e.status}")
        lines.append("END:VEVENT")
    lines.append("END:VCALENDAR")
    return ("\r\n".join(_fold(line) for line in lines) + "\r\n").encode()


AIRBNB_PRODID = "PRODID;X-RICAL-TZSOURCE=TZINFO:-//Airbnb Inc//Hosting Calendar 0.8.8//EN"
VRBO_PRODID = "PRODID:-//HomeAway.com, Inc.//EN"
BOOKING_PRODID = "PRODID:-//Booking.com//Booking.com Calendar//EN"


def airbnb_stay(uid: str, start: dt.date, end: dt.date, code: str, phone: str = "4321") -> Event:
    return Event(
        f"{uid}@airbnb.com",
        start,
        end,
        "Reserved",
        "Reservation URL: https://www.airbnb.com/hosting/reservations/details/"
        f"{code}\nPhone Number (Last 4 Digits): {phone}",
    )


def airbnb_block(uid: str, start: dt.date, end: dt.date) -> Event:
    return Event(f"{uid}@airbnb.com", start, end, "Airbnb (Not available)")


def airbnb_feed(events: Iterable[Event]) -> bytes:
    return render(AIRBNB_PRODID, events)


def vrbo_stay(uid: str, start: dt.date, end: dt.date, name: str = "Jordan") -> Event:
    return Event(uid, start, end, f"Reserved - {name}")


def vrbo_block(uid: str, start: dt.date, end: dt.date) -> Event:
    return Event(uid, start, end, "Blocked")


def vrbo_feed(events: Iterable[Event]) -> bytes:
    return render(VRBO_PRODID, events)


def booking_closed(uid: str, start: dt.date, end: dt.date) -> Event:
    return Event(f"{uid}@booking.com", start, end, "CLOSED - Not available")


def booking_feed(events: Iterable[Event]) -> bytes:
    return render(BOOKING_PRODID, events, header=("METHOD:PUBLISH",))


def generic_feed(events: Iterable[Event], prodid: str = "-//Acme PMS//Calendar 2.1//EN") -> bytes:
    return render(f"PRODID:{prodid}", events)


# -- channel rows ----------------------------------------------------------------------------


def connection(
    session: Session,
    *,
    channel: str = "airbnb",
    name: str | None = None,
    status: str = "active",
    sync_interval_minutes: int = 15,
    settings: dict | None = None,
    next_sync_at: dt.datetime | None = None,
) -> uuid.UUID:
    return insert(
        session,
        "channel.channel_connections",
        channel=channel,
        name=name or f"{channel} {uuid.uuid4().hex[:6]}",
        status=status,
        sync_interval_minutes=sync_interval_minutes,
        settings=settings or {},
        next_sync_at=next_sync_at,
    ).id


def mapping(
    session: Session,
    connection_id: uuid.UUID,
    property_id: uuid.UUID,
    import_url: str | None,
    *,
    is_active: bool = True,
    **extra: Any,
) -> uuid.UUID:
    return insert(
        session,
        "channel.channel_mappings",
        connection_id=connection_id,
        property_id=property_id,
        external_listing_id=uuid.uuid4().hex[:10],
        import_url=import_url,
        is_active=is_active,
        **extra,
    ).id
