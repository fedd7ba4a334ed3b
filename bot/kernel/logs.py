"""Logging set-up: one format, and secrets (bot tokens) scrubbed from every line.

httpx logs each request URL at INFO, and both Telegram and Zalo put the token in the URL, so
redaction happens where records are made, whatever logger the line comes from.
"""

from __future__ import annotations

import logging
import re

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


def setup(level: str = "INFO") -> None:
    """Configure the root logger once: stderr, one line a record, secrets redacted."""
    root = logging.getLogger()
    if not any(getattr(h, "_loaphuong", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._loaphuong = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
    # httpx's per-request INFO lines are noise at scale; keep them at WARNING unless debugging.
    if level != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)
