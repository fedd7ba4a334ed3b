"""What `run` holds for its lifetime: the service lock; and the nightly backup (BACKUP_DIR).

The backup is a daily job of the service's scheduler (bot/kernel/jobs.py, registered by the
composition root at BACKUP_AT, TIMEZONE): it copies the database to
`BACKUP_DIR/loaphuong-YYYYMMDD-HHMMSS.sqlite3` through `backup.backup` and keeps the BACKUP_KEEP
newest such files. A failed backup is logged as an error and tried again the next night; it never
stops the service.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.kernel.config import Settings
from bot.operations.backup import BackupError, ServiceLock, backup

log = logging.getLogger(__name__)

BACKUP_NAME = re.compile(r"^loaphuong-\d{8}-\d{6}\.sqlite3$")


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the `keep` newest nightly backups in `folder` (other files are left alone)."""
    found = sorted((p for p in folder.iterdir() if BACKUP_NAME.match(p.name) and p.is_file()), reverse=True)
    removed = found[keep:]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


class NightlyBackup:
    def __init__(self, database: Path, folder: Path, keep: int, at: str, tz: ZoneInfo,
                 now: Callable[[], datetime] | None = None) -> None:
        self.database, self.folder, self.keep, self.at, self.tz = database, folder, keep, at, tz
        self._now = now or (lambda: datetime.now(tz))

    def __str__(self) -> str:  # in the scheduler's start-up line
        return f"into {self.folder}, keeping {self.keep}"

    async def run_once(self) -> Path:
        target = self.folder / f"loaphuong-{self._now():%Y%m%d-%H%M%S}.sqlite3"
        result = await backup(self.database, target)
        removed = await asyncio.to_thread(prune, self.folder, self.keep)
        log.info("backup: %s (%.1f MB, %.1f s); %d old copies removed", target, result.size / 1_048_576,
                 result.seconds, len(removed))
        return target

    async def run(self) -> None:
        """The nightly job: one backup; a failure is one error line (tried again the next night)."""
        try:
            await self.run_once()
        except BackupError as exc:
            log.error("nightly backup failed: %s", exc)


def nightly_backup(settings: Settings) -> NightlyBackup | None:
    """The nightly backup BACKUP_DIR asks for (None when it is empty)."""
    if settings.backup_dir is None:
        return None
    return NightlyBackup(settings.database_path, settings.backup_dir, settings.backup_keep, settings.backup_at,
                         settings.tz)


@dataclass
class Operations:
    lock: ServiceLock

    async def stop(self) -> None:
        await asyncio.to_thread(self.lock.release)


async def start_operations(settings: Settings) -> Operations | None:
    """Take DATABASE.lock (None, after one sentence on stderr, if another service holds it).
    `run_service` calls this first, `stop()` last."""
    lock = ServiceLock(settings.database_path)
    if not await asyncio.to_thread(lock.acquire):
        print(f"Dịch vụ đã chạy với cơ sở dữ liệu {settings.database_path} (đang giữ {lock.path}), "
              "hoặc lệnh khôi phục đang chạy: mỗi cơ sở dữ liệu chỉ một dịch vụ.", file=sys.stderr)
        return None
    return Operations(lock)
