"""`python -m bot run` as an operator starts it: bad tokens and unreachable servers are one sentence."""

import asyncio
import os
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.fakes.telegram import FakeTelegram


async def run_bot(tmp_path: Path, **env: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_"))}
    clean.update(PYTHONPATH=str(ROOT), DATABASE_URL=f"sqlite:///{tmp_path}/bot.sqlite3",
                 CONTENT_DIR=str(ROOT / "content"), **env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=clean,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    return proc.returncode or 0, err.decode()


async def test_rejected_token_names_the_setting(tmp_path: Path):
    async with FakeTelegram(token="123:ABC") as fake:
        code, err = await run_bot(tmp_path, TELEGRAM_BOT_TOKEN="999:WRONGTOKENVALUE", TELEGRAM_API_URL=fake.url)
    assert code == 2
    assert "TELEGRAM_BOT_TOKEN" in err
    assert "Traceback" not in err and "WRONGTOKENVALUE" not in err


async def test_unreachable_api_names_the_setting(tmp_path: Path):
    code, err = await run_bot(tmp_path, TELEGRAM_BOT_TOKEN="123:ABCDEFGHIJ", TELEGRAM_API_URL="http://127.0.0.1:9")
    assert code == 2
    assert "TELEGRAM_API_URL" in err and "Traceback" not in err
