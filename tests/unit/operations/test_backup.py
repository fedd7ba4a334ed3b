"""Backups, restores and the nightly job on real SQLite files; the CLI as a real subprocess."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.kernel.config import ConfigError, Settings, load_settings
from bot.operations.backup import BackupError, ServiceLock, backup, restore
from bot.operations.nightly import NightlyBackup, prune, start_operations
from bot.store.db import open_database
from tests.conftest import run_cli

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
async def database(tmp_path: Path) -> Path:
    db = await open_database(tmp_path / "data" / "bot.sqlite3")
    await db.write("INSERT INTO chats (channel, chat_id, kind, locality, consent, active, first_seen, last_seen)"
                   " VALUES ('telegram', '-7', 'group', 'phan-rang', 1, 1, 0, 0)")
    await db.close()
    return tmp_path / "data" / "bot.sqlite3"


def one_sentence(stderr: str) -> bool:
    return len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def test_backup_to_an_unwritable_path_exits_1_with_one_sentence(database: Path, tmp_path: Path):
    (tmp_path / "a-file").write_text("x")
    env = {"DATABASE_URL": f"sqlite:///{database}"}
    for target in (tmp_path / "a-file" / "copy.sqlite3", Path("/proc/loaphuong-copy.sqlite3")):
        result = run_cli("backup", str(target), env=env)
        assert result.returncode == 1 and one_sentence(result.stderr), result.stderr
        assert str(target.parent) in result.stderr or str(target) in result.stderr
    missing = run_cli("backup", str(tmp_path / "c.sqlite3"), env={"DATABASE_URL": f"sqlite:///{tmp_path}/none.db"})
    assert missing.returncode == 1 and "DATABASE_URL" in missing.stderr and one_sentence(missing.stderr)
    assert not (tmp_path / "none.db").exists()  # a backup never creates the database it reads


async def test_backup_of_a_corrupt_database_fails_and_writes_nothing(database: Path, tmp_path: Path):
    with database.open("r+b") as raw:  # keep the header, scribble over the pages
        raw.seek(4096)
        raw.write(b"\xff" * 8192)
    with pytest.raises(BackupError) as caught:
        await backup(database, tmp_path / "copy.sqlite3")
    assert str(database) in str(caught.value)
    assert await asyncio.to_thread(lambda: [p.name for p in tmp_path.iterdir()]) == ["data"]  # no copy, no partial


async def test_restore_checks_the_copy(database: Path, tmp_path: Path):
    plain = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(plain)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(BackupError, match="không phải cơ sở dữ liệu của Loa Phường"):
        await restore(plain, database)
    (tmp_path / "junk.sqlite3").write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match="không phải cơ sở dữ liệu SQLite"):
        await restore(tmp_path / "junk.sqlite3", database)
    with pytest.raises(BackupError, match="Không có tệp"):
        await restore(tmp_path / "missing.sqlite3", database)
    assert sqlite3.connect(database).execute("SELECT COUNT(*) FROM chats").fetchone()[0] == 1  # untouched


async def test_restore_refused_while_the_lock_is_held_and_works_when_released(database: Path, tmp_path: Path):
    copy = (await backup(database, tmp_path / "copy.sqlite3")).path
    lock = ServiceLock(database)
    assert lock.acquire()
    try:
        assert not ServiceLock(database).acquire()  # a second holder (another `run`) is refused too
        with pytest.raises(BackupError, match="Dịch vụ đang chạy"):
            await restore(copy, database)
    finally:
        lock.release()
    await asyncio.to_thread(database.unlink)
    assert await restore(copy, database) is None  # nothing was there to keep
    assert sqlite3.connect(database).execute("SELECT chat_id FROM chats").fetchall() == [("-7",)]


async def test_the_nightly_job_keeps_the_newest_n(database: Path, tmp_path: Path):
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "notes.txt").write_text("kept: not a nightly backup")
    now = [datetime(2026, 3, 1, 2, 30, tzinfo=TZ)]
    job = NightlyBackup(database, folder, 3, "02:30", TZ, now=lambda: now[0])
    made = []
    for _ in range(5):
        made.append(await job.run_once())
        now[0] += timedelta(days=1)
    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted([p.name for p in made[-3:]] + ["notes.txt"])
    assert left[0] == "loaphuong-20260303-023000.sqlite3"
    for path in made[-3:]:
        assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert prune(folder, 1) == [folder / "loaphuong-20260304-023000.sqlite3",
                                folder / "loaphuong-20260303-023000.sqlite3"]


async def test_the_nightly_job_is_on_the_service_scheduler_at_backup_at_and_the_service_holds_the_lock(
        database: Path, tmp_path: Path, caplog):
    from bot.app.wiring import build_core
    from tests.conftest import CONTENT

    folder = tmp_path / "nightly"
    settings = replace(Settings(), database_path=database, content_dir=CONTENT, backup_dir=folder,
                       backup_at="03:15", backup_keep=2)
    core = await build_core(settings)
    try:
        jobs = core.jobs
        assert jobs.next_after("nightly-backup", datetime(2026, 3, 1, 3, 14, 59, tzinfo=TZ)) == datetime(
            2026, 3, 1, 3, 15, tzinfo=TZ)
        assert jobs.next_after("nightly-backup", datetime(2026, 3, 1, 3, 15, tzinfo=TZ)) == datetime(
            2026, 3, 2, 3, 15, tzinfo=TZ)
        assert await jobs.run("nightly-backup")  # what the scheduler runs at 03:15
        [made] = list(folder.glob("loaphuong-*.sqlite3"))
        assert sqlite3.connect(made).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        await core.close()
    # a failed night is one error line, and the job stays for the next night
    blocked = replace(settings, backup_dir=tmp_path / "a-file")
    (tmp_path / "a-file").write_text("not a folder")
    core = await build_core(blocked)
    try:
        assert await core.jobs.run("nightly-backup") and "nightly backup failed: Không" in caplog.text
        assert core.jobs.job("nightly-backup") is not None
    finally:
        await core.close()
    core = await build_core(replace(settings, backup_dir=None))
    try:
        assert core.jobs.job("nightly-backup") is None  # BACKUP_DIR empty: no job
    finally:
        await core.close()

    settings = replace(Settings(), database_path=database, backup_dir=tmp_path / "nightly")
    ops = await start_operations(settings)
    assert ops is not None
    assert await start_operations(settings) is None  # one service a database
    await ops.stop()
    probe = ServiceLock(database)
    assert probe.acquire()  # released at stop
    probe.release()


def test_backup_settings_are_validated():
    defaults = load_settings({}, dotenv=None)
    assert (defaults.backup_dir, defaults.backup_keep, defaults.backup_at) == (None, 7, "02:30")
    chosen = load_settings({"BACKUP_DIR": "/srv/backups", "BACKUP_KEEP": "30", "BACKUP_AT": "3:05"}, dotenv=None)
    assert (chosen.backup_dir, chosen.backup_keep, chosen.backup_at) == (Path("/srv/backups"), 30, "03:05")
    for name, value in (("BACKUP_KEEP", "0"), ("BACKUP_KEEP", "bảy"), ("BACKUP_AT", "25:00"),
                        ("BACKUP_AT", "2h30"), ("BACKUP_AT", "02:3")):
        with pytest.raises(ConfigError, match=name):
            load_settings({name: value}, dotenv=None)
