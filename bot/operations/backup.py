"""Consistent copies of the SQLite file, put back safely, and the lock that marks a running service.

`backup` copies with SQLite's online backup API (one step: a snapshot; in WAL mode the service's
writers go on meanwhile), turns the copy into a plain rollback-journal file, runs `PRAGMA
integrity_check` on it and only then renames it into place. `restore` refuses while `run` holds
`DATABASE.lock` (an `fcntl.flock` taken for the service's lifetime; the kernel drops it when the
process dies, so a crash never leaves a stale lock), checks the copy (integrity, and a
`schema_version` table: a Loa Phường database), keeps the current file beside it as
`….before-restore`, removes the stale -wal/-shm and renames the copy in. Everything here blocks:
the async wrappers run it in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path


class BackupError(Exception):
    """One sentence for the operator."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    seconds: float


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


class ServiceLock:
    """An exclusive, non-blocking `flock` on `DATABASE.lock`; the file itself stays (deleting it races)."""

    def __init__(self, database: Path) -> None:
        self.path = lock_path(database)
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)).rstrip(".")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _integrity(conn: sqlite3.Connection) -> str:
    """"ok", or the first problem integrity_check names."""
    rows = conn.execute("PRAGMA integrity_check").fetchall()
    return "ok" if [tuple(r) for r in rows] == [("ok",)] else str(rows[0][0] if rows else "không có kết quả")


def backup_file(source: Path, target: Path) -> BackupResult:
    """Copy `source` into `target` (replaced atomically if it exists), integrity-checked."""
    started = time.monotonic()
    if not source.is_file():
        raise BackupError(f"Không có cơ sở dữ liệu {source} (DATABASE_URL) để sao lưu.")
    if target.exists() and target.resolve() in {source.resolve(), *(Path(f"{source.resolve()}{s}")
                                                                    for s in ("-wal", "-shm", ".lock"))}:
        raise BackupError(f"Tệp bản sao {target} chính là cơ sở dữ liệu đang dùng: chọn một tệp khác.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"Không tạo được thư mục {target.parent} cho bản sao ({_reason(exc)}).") from None
    temp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        problem = _copy(source, temp, target)
        if problem != "ok":
            raise BackupError(f"Bản sao không qua kiểm tra toàn vẹn ({problem}): cơ sở dữ liệu {source} có thể "
                              "đã hỏng, chưa ghi bản sao.")
        _fsync(temp)
        os.replace(temp, target)
        with contextlib.suppress(OSError):
            _fsync(target.parent)
    except OSError as exc:
        raise BackupError(f"Không ghi được bản sao vào {target} ({_reason(exc)}).") from None
    finally:
        for leftover in (temp, Path(f"{temp}-journal")):
            with contextlib.suppress(OSError):
                leftover.unlink()
    return BackupResult(target, target.stat().st_size, time.monotonic() - started)


def _copy(source: Path, temp: Path, target: Path) -> str:
    """The online backup into `temp`; the copy's integrity_check result."""
    try:
        src = sqlite3.connect(source, timeout=30)
    except sqlite3.Error as exc:
        raise BackupError(f"Không mở được cơ sở dữ liệu {source} ({_reason(exc)}).") from None
    try:
        try:
            dst = sqlite3.connect(temp)
        except sqlite3.Error as exc:
            raise BackupError(f"Không ghi được bản sao vào {target} ({_reason(exc)}).") from None
        try:
            src.backup(dst)  # pages=-1: one step, one consistent snapshot
            dst.execute("PRAGMA journal_mode = DELETE")  # a single self-contained file
            return _integrity(dst)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"Không sao lưu được {source} vào {target} ({_reason(exc)}).") from None
        finally:
            dst.close()
    finally:
        src.close()


def check_copy(path: Path) -> None:
    """A copy fit to restore: a readable SQLite file that passes integrity_check and has our schema."""
    if not path.is_file():
        raise BackupError(f"Không có tệp bản sao {path}.")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            problem = _integrity(conn)
            ours = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
                                ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"Tệp {path} không phải cơ sở dữ liệu SQLite đọc được ({_reason(exc)}).") from None
    if problem != "ok":
        raise BackupError(f"Bản sao {path} không qua kiểm tra toàn vẹn ({problem}): chọn một bản sao khác.")
    if not ours:
        raise BackupError(f"Tệp {path} không phải cơ sở dữ liệu của Loa Phường (không có bảng schema_version).")


def restore_file(copy: Path, database: Path) -> Path | None:
    """Put `copy` in place of `database` while no service runs; return where the old file was kept."""
    check_copy(copy)
    lock = ServiceLock(database)
    if not lock.acquire():
        raise BackupError(f"Dịch vụ đang chạy (đang giữ {lock.path}): dừng dịch vụ rồi chạy lại lệnh khôi phục.")
    temp = database.with_name(f".{database.name}.restore-{os.getpid()}")
    try:
        shutil.copyfile(copy, temp)
        check_copy(temp)  # what was copied, not only what was read before
        _fsync(temp)
        kept: Path | None = None
        if database.exists():
            kept = database.with_name(database.name + ".before-restore")
            try:
                backup_file(database, kept)  # with what its -wal still held
            except BackupError:
                shutil.copyfile(database, kept)  # a damaged file: keep it as it is
        for stale in ("-wal", "-shm", "-journal"):
            Path(f"{database}{stale}").unlink(missing_ok=True)
        os.replace(temp, database)
        with contextlib.suppress(OSError):
            _fsync(database.parent)
        return kept
    except OSError as exc:
        raise BackupError(f"Không khôi phục được vào {database} ({_reason(exc)}).") from None
    finally:
        temp.unlink(missing_ok=True)
        lock.release()


async def backup(source: Path, target: Path) -> BackupResult:
    return await asyncio.to_thread(backup_file, source, target)


async def restore(copy: Path, database: Path) -> Path | None:
    return await asyncio.to_thread(restore_file, copy, database)
