"""Issue 11, storage faults: an unusable database file is one sentence naming the file and the cause,
and an exit at once (no traceback, no hang in threading._shutdown), for `run`, `groups list` and
`broadcast send`; /healthz answers 503 when the database can be read but not written.

Each case is a real file: random bytes, a real database with pages overwritten, a read-only file,
a read-only folder. Root writes through 0444, so as root "read-only" is `chattr +i` (immutable),
which stops root too; where that is refused the read-only cases are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiosqlite
import httpx
import pytest

from bot.app.web import WebServer
from bot.store.db import Database, open_database
from tests.conftest import CONTENT, run_cli

COMMANDS = {
    "run": ["run"],
    "groups list": ["groups", "list"],
    "broadcast send": ["broadcast", "send", "--to", "groups", "--text", "Họp tổ", "--yes"],
}
PAGE = 4096


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` (a file or a folder) cannot be written, by this user, until the block ends."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root (which writes through 0444) and chattr +i is refused on this filesystem")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


async def real_database(path: Path) -> None:
    """A migrated database with a registered group, checkpointed into the one file."""
    db = await open_database(path)
    await db.write("INSERT INTO chats (channel, chat_id, kind, display_name, locality, consent, first_seen, last_seen)"
                   " VALUES ('telegram', '-1001', 'group', 'Tổ 1', 'phan-rang', 1, 0, 0)")
    await db.checkpoint()
    await db.close()


def env_for(path: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{path}", "CONTENT_DIR": str(CONTENT), "TELEGRAM_BOT_TOKEN": "123:ABCDEFGHIJ",
            "TELEGRAM_API_URL": "http://127.0.0.1:9", "HTTP_PORT": str(free_port())}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def assert_one_sentence(path: Path, cause: str) -> None:
    for name, args in COMMANDS.items():
        started = time.monotonic()
        done = run_cli(*args, env=env_for(path), timeout=30)  # a hang would raise TimeoutExpired
        took = time.monotonic() - started
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1, (name, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr and len(lines) == 1, (name, done.stderr)
        assert str(path) in lines[0] and cause in lines[0], (name, lines[0])
        assert took < 20, (name, took)


async def test_random_bytes(tmp_path: Path):
    path = tmp_path / "bot.sqlite3"
    path.write_bytes(random.Random(11).randbytes(64 * 1024))
    assert_one_sentence(path, "không phải cơ sở dữ liệu SQLite")


async def test_corrupted_pages(tmp_path: Path):
    path = tmp_path / "bot.sqlite3"
    await real_database(path)
    data = bytearray(path.read_bytes())
    noise = random.Random(12)
    for page in range(1, len(data) // PAGE):  # every page but the header page
        start = page * PAGE + 200
        data[start:start + 600] = noise.randbytes(600)
    path.write_bytes(bytes(data))
    assert_one_sentence(path, "hỏng")


async def test_read_only_file(tmp_path: Path):
    path = tmp_path / "bot.sqlite3"
    await real_database(path)
    with read_only(path):
        assert_one_sentence(path, "không ghi được vào tệp")


async def test_read_only_folder(tmp_path: Path):
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "bot.sqlite3"
    await real_database(path)
    for extra in folder.iterdir():  # only the database file: the -wal/-shm files must be made anew
        if extra != path:
            extra.unlink()
    with read_only(folder):
        assert_one_sentence(path, "thư mục")


async def test_healthz_is_503_when_the_database_reads_but_cannot_be_written(tmp_path: Path):
    path = tmp_path / "bot.sqlite3"
    await real_database(path)
    # the service's connection, on a file that reads fine but takes no write (what a file turned
    # read-only under a running service, or a remount, gives)
    conn = await aiosqlite.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    broken = Database(conn, path)
    healthy = await open_database(tmp_path / "other.sqlite3")
    try:
        for db, status, database in ((healthy, 200, True), (broken, 503, False)):
            web = WebServer({}, db, "127.0.0.1", 0)
            await web.start()
            try:
                async with httpx.AsyncClient() as client:
                    answer = await client.get(f"{web.url}/healthz")
            finally:
                await web.stop()
            assert answer.status_code == status and answer.json()["database"] is database
            assert answer.json()["outbox_pending"] == 0  # it still reads
    finally:
        await conn.close()
        await healthy.close()
    with sqlite3.connect(path) as check:  # and the probe wrote nothing
        assert check.execute("SELECT COUNT(*) FROM chats").fetchone()[0] == 1
