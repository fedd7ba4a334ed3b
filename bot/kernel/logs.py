"""Logging set-up: one line a record (LOG_FORMAT text or json), and secrets (bot tokens) scrubbed.

httpx logs each request URL at INFO, and both Telegram and Zalo put the token in the URL, so
redaction happens where records are made, whatever logger the line comes from. The JSON form
reads the same scrubbed message and traceback, and redacts its whole line once more.

    text: 2026-05-01 10:00:00,123 INFO bot.delivery.worker: …        (unchanged, for people)
    json: {"time": "2026-05-01T10:00:00.123+07:00", "level": "INFO", "logger": "…", "message": "…",
           "channel": "zalo", "chat": "…", "exception": "Traceback …"}   (channel/chat when given
           with `extra=`; exception when the record has one)
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime

_secrets: set[str] = set()


_base_factory = logging.getLogRecordFactory()


def _redacting_factory(*args, **kwargs) -> logging.LogRecord:
    """Build the record, then scrub its message and traceback before any handler sees it.

    A record factory (not a handler filter) so that every handler — pytest's too — gets the
    clean text, whichever logger the record was made on.
    """
    record = _base_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a bad format string is logging's problem to report, not ours
        return record
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    return record


logging.setLogRecordFactory(_redacting_factory)


def redact(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, "***")
    return _TOKEN_PATH.sub(r"/bot***/", text)


# Any "/bot<digits>:<key>/" path, even for a token we were not told about.
_TOKEN_PATH = re.compile(r"/bot[0-9]+:[A-Za-z0-9_-]+/")


def add_secret(secret: str | None) -> None:
    if secret and len(secret) >= 6:
        _secrets.add(secret)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
EXTRA_FIELDS = ("channel", "chat")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (ISO-8601, local offset), level, logger, message, the
    `channel`/`chat` a record carries, its exception as one string field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info and record.exc_info[1] is not None:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


def formatter(form: str = "text") -> logging.Formatter:
    return JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT)


def setup(level: str = "INFO", form: str = "text") -> None:
    """Configure the root logger once: stderr, one line a record (text or json), secrets redacted."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_loaphuong", False)]
    if ours:
        ours[0].setFormatter(formatter(form))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter(form))
        handler._loaphuong = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # httpx's per-request INFO lines are noise at scale; keep them at WARNING unless debugging.
    if level != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)
