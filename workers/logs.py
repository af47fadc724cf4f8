"""Log lines as text, or as one JSON object per line when LOG_FORMAT=json.

The job lines carry their fields as `extra=` (task, task_id, run_key, duration_ms, result), so
both formats show them; payloads are never logged, since they may name guests.

URLs are secrets too: a channel's feed URL carries a private token in its path or query, a
server URL a password in its user-info. Every line either format writes -- ours, Celery's and
every library's, tracebacks included -- has each URL cut to `scheme://host[:port]`
(`redact_urls`), and the HTTP client's own per-request INFO lines ("HTTP Request: GET <url>")
are not emitted at all (`quiet_libraries`).
"""

from __future__ import annotations

import json
import logging
import re
import time

# scheme://[user-info@]host[:port][path][?query][#fragment]
URL = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)"
    r"(?:[^\s/?#@'\"<>]*@)?"
    r"(?P<host>\[[^\]\s]*\]|[^\s/?#:'\"<>@]*)"
    r"(?P<port>:\d+)?"
    r"(?P<rest>[/?#][^\s'\"<>]*)?"
)
# Libraries that log every request's URL at INFO or DEBUG.
NOISY_LIBRARIES = ("httpx", "httpcore", "hpack", "urllib3")


def redact_urls(text: str) -> str:
    """Every URL in `text` cut to scheme://host[:port] (`/…` marks a path or query cut off)."""
    if "://" not in text:
        return text

    def cut(match: re.Match[str]) -> str:
        kept = match["scheme"] + match["host"] + (match["port"] or "")
        return kept + ("/…" if match["rest"] else "")

    return URL.sub(cut, text)


def quiet_libraries() -> None:
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(logging.WARNING)


# Attributes every LogRecord has; anything else on a record came from `extra=`. Celery's task
# failure lines also carry `data`, their own context: the task's arguments (a payload, which may
# name guests) and the traceback a second time, so it is never printed.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "data",
}


def _extras(record: logging.LogRecord) -> dict:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact_urls(self._format(record))

    def _format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in extras.items())
        return redact_urls(line)


def make_formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = time.gmtime
        return formatter
    return TextFormatter("[%(asctime)s: %(levelname)s/%(processName)s] %(name)s: %(message)s")


def apply_format(logger: logging.Logger, log_format: str) -> None:
    """Our formatter (with URL redaction) on every handler of `logger`; noisy libraries quiet."""
    for handler in logger.handlers:
        handler.setFormatter(make_formatter(log_format))
    quiet_libraries()
