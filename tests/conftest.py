"""Shared fixtures: the shipped content, loaded once; a fresh SQLite file per test."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app.wiring import build_index
from bot.kernel.config import Settings
from bot.kernel.content import Content, load_content
from bot.knowledge.index import KnowledgeIndex

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "content"


@pytest.fixture(scope="session")
def content() -> Content:
    return load_content(CONTENT)


@pytest.fixture(scope="session")
def index(content: Content) -> KnowledgeIndex:
    return build_index(content)


@pytest.fixture(scope="session")
def calendar_quiet_content(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped content with supervision's calendar nudges off (requirements.yaml
    `nudge_weeks_left: []`), for end-to-end tests on the real clock that count the messages a
    group gets: the nudges come 6 and 2 weeks before a quarter ends, so they would come on some
    days of the year and not on others."""
    root = tmp_path_factory.mktemp("content") / "content"
    shutil.copytree(CONTENT, root)
    requirements = root / "supervision" / "requirements.yaml"
    text, count = re.subn(r"^(\s*)nudge_weeks_left:.*$", r"\1nudge_weeks_left: []",
                          requirements.read_text("utf-8"), flags=re.M)
    assert count == 1, "requirements.yaml has no nudge_weeks_left line any more"
    requirements.write_text(text, "utf-8")
    return root


def log_everything(caplog: pytest.LogCaptureFixture, *loggers: str) -> None:
    """Capture every log line at DEBUG, of the root and of `loggers` (the HTTP clients log request
    URLs there: where a token would leak), aiosqlite's statement chatter left at INFO."""
    caplog.set_level(logging.DEBUG)
    for name in loggers:
        caplog.set_level(logging.DEBUG, logger=name)
    caplog.set_level(logging.INFO, logger="aiosqlite")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(database_path=tmp_path / "db" / "bot.sqlite3", content_dir=CONTENT)


@pytest.fixture
async def db(tmp_path: Path):
    """A fresh, migrated SQLite file."""
    from bot.store.db import open_database

    db = await open_database(tmp_path / "bot.sqlite3")
    yield db
    await db.close()


def run_cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None, cwd: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `python -m bot ARGS` in a clean environment (no .env), as an operator would."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_", "DATABASE_URL",
                                                                      "CONTENT_DIR", "WEBHOOK_", "HTTP_"))}
    base["PYTHONPATH"] = str(ROOT)
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin, capture_output=True, text=True, env=base, cwd=cwd or ROOT, timeout=timeout,
    )
