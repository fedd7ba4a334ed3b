"""Backups while the service works, restores only while it is stopped: the real app and a real `run`
subprocess against the fake Bot API server; the CLI as a real subprocess; real SQLite files."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path

from bot.app.service import build_app
from bot.audiences.registration import GroupRecord, register_groups
from bot.broadcasts.store import Target
from bot.kernel.config import Settings
from tests.conftest import CONTENT, ROOT, run_cli
from tests.e2e.test_telegram_e2e import BOT, TOKEN
from tests.fakes.telegram import FakeTelegram
from tests.polling import until

log = logging.getLogger(__name__)


def integrity(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def chat_ids(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT chat_id FROM chats")}
    finally:
        conn.close()


async def test_backup_while_a_2000_group_broadcast_is_delivering(tmp_path: Path):
    async with FakeTelegram(token=TOKEN, username=BOT, limits=(300, 20, 1)) as fake:
        app = await build_app(Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT,
                                       telegram_bot_token=TOKEN, telegram_api_url=fake.url,
                                       telegram_chat_rate_per_second=50,  # per-chat pacing: test_replies_e2e.py
                                       telegram_rate_per_second=300))
        await app.start()
        try:
            await deliver_and_back_up(app, fake, tmp_path)
        finally:
            await app.stop()


async def deliver_and_back_up(app, fake: FakeTelegram, tmp_path: Path) -> None:
    groups = [str(-1_000_000 - i) for i in range(2000)]
    await register_groups(app.core.db, [GroupRecord("telegram", g, "phan-rang", f"Tổ {g}") for g in groups])
    marker = "Thông báo sao lưu"
    broadcast = await app.core.broadcasts.create(marker, Target("groups"))
    app.worker.notify()
    await until(lambda: sum(marker in m.text for m in fake.sent) >= 200, timeout=30, what="delivery under way")
    copy = tmp_path / "backups" / "copy.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/bot.sqlite3"}
    started, sent_before = time.monotonic(), sum(marker in m.text for m in fake.sent)
    result = await asyncio.to_thread(run_cli, "backup", str(copy), env=env)
    sent_after = sum(marker in m.text for m in fake.sent)
    log.info("backup in %.2f s while %d → %d messages were sent", time.monotonic() - started, sent_before,
             sent_after)
    assert result.returncode == 0, result.stderr
    assert sent_after < 2000, "the broadcast finished before the backup: nothing was tested"
    assert integrity(copy) == "ok"
    shown = await asyncio.to_thread(run_cli, "broadcast", "show", str(broadcast), "--json",
                                    env={"DATABASE_URL": f"sqlite:///{copy}"})
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["id"] == broadcast and report["total"] == 2000
    assert report["sent"] + report["pending"] == 2000 and report["pending"] > 0
    # the service went on undisturbed: every group still gets its one copy
    await until(lambda: sum(marker in m.text for m in fake.sent) >= 2000, timeout=60, what="delivery done")
    assert len({m.chat_id for m in fake.sent if marker in m.text}) == 2000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def start_run(tmp_path: Path, fake: FakeTelegram) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_", "BACKUP_"))}
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL=f"sqlite:///{tmp_path}/bot.sqlite3",
               CONTENT_DIR=str(ROOT / "content"), TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=fake.url,
               HTTP_PORT=str(free_port()))
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_restore_is_refused_while_run_runs_and_works_once_stopped(tmp_path: Path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/bot.sqlite3"}
    add = await asyncio.to_thread(run_cli, "groups", "add", "--channel", "telegram", "--chat-id", "-101",
                                  "--locality", "phan-rang", env=env)
    assert add.returncode == 0, add.stderr
    async with FakeTelegram(token=TOKEN) as fake:
        proc = await start_run(tmp_path, fake)
        try:
            await fake.wait_for_call("getUpdates", timeout=30)  # polling: the service is up
            copy = tmp_path / "copy.sqlite3"
            backed = await asyncio.to_thread(run_cli, "backup", str(copy), env=env)
            assert backed.returncode == 0, backed.stderr
            later = await asyncio.to_thread(run_cli, "groups", "add", "--channel", "telegram", "--chat-id", "-102",
                                            "--locality", "dong-hai", env=env)
            assert later.returncode == 0, later.stderr
            refused = await asyncio.to_thread(run_cli, "restore", str(copy), env=env)
            assert refused.returncode == 1
            assert "Dịch vụ đang chạy" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
            second = await start_run(tmp_path, fake)  # one service a database
            _, err = await asyncio.wait_for(second.communicate(), timeout=60)
            assert second.returncode == 2 and "chỉ một dịch vụ" in err.decode() and "Traceback" not in err.decode()
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        assert proc.returncode == 0, err.decode()
    restored = await asyncio.to_thread(run_cli, "restore", str(copy), env=env)
    assert restored.returncode == 0, restored.stderr
    assert not await asyncio.to_thread(Path(f"{tmp_path}/bot.sqlite3-wal").exists)
    listed = json.loads((await asyncio.to_thread(run_cli, "groups", "list", "--json", env=env)).stdout)
    assert [g["chat_id"] for g in listed] == ["-101"]  # as it was at the backup
    kept = tmp_path / "bot.sqlite3.before-restore"
    assert integrity(kept) == "ok"  # and what was there before is kept beside, -102 included
    assert chat_ids(kept) == {"-101", "-102"}
