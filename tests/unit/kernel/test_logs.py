"""LOG_FORMAT: json lines from a real process, tokens redacted in the message and the traceback."""

from __future__ import annotations

import json
import subprocess
import sys

from bot.kernel.config import ConfigError, load_settings
from tests.conftest import ROOT, run_cli

TOKEN = "777777:JsonLogs_secret-Token"

SCRIPT = f"""
import logging
from bot.kernel import logs
logs.setup("INFO", "json")
logs.add_secret({TOKEN!r})
log = logging.getLogger("bot.test")
log.info("calling https://api.telegram.org/bot%s/getMe", {TOKEN!r}, extra={{"channel": "telegram", "chat": -100}})
try:
    raise RuntimeError("refused {TOKEN}")
except RuntimeError:
    log.exception("send failed for %s", "Lan")
"""


def test_json_lines_carry_channel_chat_and_exception_with_the_token_redacted():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert TOKEN not in done.stderr and "JsonLogs" not in done.stderr
    first, second = (json.loads(line) for line in done.stderr.splitlines())
    assert first["level"] == "INFO" and first["logger"] == "bot.test"
    assert first["message"] == "calling https://api.telegram.org/bot***/getMe"
    assert first["channel"] == "telegram" and first["chat"] == -100
    assert "T" in first["time"] and first["time"][-6] in "+-"
    assert second["level"] == "ERROR" and second["message"] == "send failed for Lan"
    assert second["exception"].startswith("Traceback") and "RuntimeError: refused ***" in second["exception"]
    assert "channel" not in second


def test_wrong_log_format_is_one_sentence_naming_it():
    try:
        load_settings({"LOG_FORMAT": "xml"}, dotenv=None)
    except ConfigError as exc:
        assert "LOG_FORMAT" in str(exc)
    else:
        raise AssertionError("LOG_FORMAT=xml accepted")
    assert load_settings({"LOG_FORMAT": "JSON"}, dotenv=None).log_format == "json"
    assert load_settings({}, dotenv=None).log_format == "text"
    done = run_cli("content", "check", env={"LOG_FORMAT": "yaml"})
    assert done.returncode == 2 and "LOG_FORMAT" in done.stderr and "Traceback" not in done.stderr
