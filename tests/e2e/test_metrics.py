"""GET /metrics from a real `python -m bot run` (LOG_FORMAT=json) against the fake Telegram server.

One question answered in a private chat, one broadcast to a group whose first send the fake answers
with a 429: the page, parsed by prometheus_client's parser, counts them, and its table-derived
numbers agree with the database. The service's stderr is JSON, one object a line.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import CONTENT, ROOT, run_cli
from tests.fakes.telegram import FakeTelegram
from tests.polling import until

TOKEN = "616161:MetricsTest_secret-Value"
GROUP = -100777
RESIDENT = 4242
MARKER = "Thông báo đo đếm."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    found: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


async def test_metrics_after_a_real_exchange_count_answers_429s_and_latency(tmp_path: Path):
    db_path = tmp_path / "bot.sqlite3"
    port = free_port()
    async with FakeTelegram(token=TOKEN) as fake:
        env = {"DATABASE_URL": f"sqlite:///{db_path}", "CONTENT_DIR": str(CONTENT), "TELEGRAM_BOT_TOKEN": TOKEN,
               "TELEGRAM_API_URL": fake.url, "HTTP_PORT": str(port), "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}
        added = await asyncio.to_thread(run_cli, "groups", "add", "--channel", "telegram", "--chat-id", str(GROUP),
                                        "--locality", "ca-na", "--title", "Tổ 1", env=env, cwd=tmp_path)
        assert added.returncode == 0, added.stderr
        base = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_", "HTTP_", "LOG_"))}
        err_path = tmp_path / "stderr.log"
        with err_path.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", cwd=tmp_path, env={**base, **env, "PYTHONPATH": str(ROOT)},
                stdin=asyncio.subprocess.DEVNULL, stdout=err, stderr=err)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                async def up() -> bool:
                    try:
                        return (await client.get("/healthz")).status_code == 200
                    except httpx.HTTPError:
                        return False
                deadline = time.monotonic() + 30
                while not await up():
                    assert proc.returncode is None, err_path.read_text()
                    assert time.monotonic() < deadline, "service did not come up"
                    await asyncio.sleep(0.2)

                fake.push_update(fake.text_update(RESIDENT, "quy vi nguoi ngheo"))
                await fake.wait_for(lambda m: m.chat_id == RESIDENT and "Vì người nghèo" in m.text, timeout=20)

                fake.fail_next(GROUP, "retry_after", retry_after=1)
                sent = await asyncio.to_thread(run_cli, "broadcast", "send", "--to", "groups", "--locality", "ca-na",
                                               "--text", MARKER, "--yes", env=env, cwd=tmp_path)
                assert sent.returncode == 0, sent.stderr
                await fake.wait_for(lambda m: m.chat_id == GROUP and MARKER in m.text, timeout=20)

                def outbox_settled() -> bool:
                    with sqlite3.connect(db_path) as con:
                        return not con.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
                await until(outbox_settled, 10, "the outbox to record the send")
                response = await client.get("/metrics")
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 20)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    with sqlite3.connect(db_path) as con:
        answered = con.execute("SELECT COUNT(*) FROM question_log WHERE outcome = 'answered'").fetchone()[0]
        group_sent = con.execute("SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND kind = 'group'").fetchone()[0]
        overdue = con.execute("SELECT COUNT(*) FROM supervision_plans WHERE status = 'planned' AND due_at < ?",
                              (time.time(),)).fetchone()[0]
    assert answered == 1 and value(found, "loaphuong_questions_total", decision="answered") == 1
    assert value(found, "loaphuong_questions_total", decision="declined") == 0
    assert value(found, "loaphuong_rate_limited_total", channel="telegram") == 1  # the one 429 injected
    assert value(found, "loaphuong_channel_paused", channel="telegram") == 0  # retry_after=1 is over
    assert value(found, "loaphuong_channel_up", channel="telegram") == 1
    assert group_sent >= 1 and value(found, "loaphuong_messages_sent_total", channel="telegram", kind="group",
                                     source="broadcast") == group_sent
    assert value(found, "loaphuong_messages_sent_total", channel="telegram", kind="private", source="reply") >= 1
    assert value(found, "loaphuong_outbox_pending", channel="telegram") == 0
    assert value(found, "loaphuong_outbox_failed", channel="telegram") == 0
    assert value(found, "loaphuong_tickets_open", kind="question") == 0
    assert value(found, "loaphuong_supervision_overdue") == overdue
    assert value(found, "loaphuong_database_up") == 1
    count = value(found, "loaphuong_reply_latency_seconds_count", channel="telegram")
    assert count >= 1
    assert value(found, "loaphuong_reply_latency_seconds_bucket", channel="telegram", le="+Inf") == count
    assert 0 < value(found, "loaphuong_reply_latency_seconds_sum", channel="telegram") < 20 * count

    lines = [line for line in err_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line of the service's stderr is one JSON object
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["logger"] == "bot.app.web" and "/metrics" in r["message"] for r in records)
    assert all(r["time"][-6] in "+-" for r in records)  # ISO-8601 with its offset
    assert TOKEN not in err_path.read_text(encoding="utf-8")
