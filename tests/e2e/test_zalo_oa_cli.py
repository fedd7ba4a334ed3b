"""`python -m bot zalo-oa auth-url` and `zalo-oa sync` as an operator runs them, against the fake OA:
the consent link (PKCE) answered through the running service's callback page; the follower list
pulled page by page into the chats table."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx

from bot.app.service import build_app
from bot.app.web import WebServer
from tests.conftest import CONTENT, ROOT
from tests.e2e.test_zalo_oa_e2e import PUBLIC, oa_settings
from tests.fakes.zalo_oa import FakeZaloOA


async def cli(tmp_path: Path, fake: FakeZaloOA | None, *args: str, seed: str | None = None) -> tuple[int, str, str]:
    """The CLI in a subprocess without blocking this loop (the fake answers it from here)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "ZALO_", "DATABASE_URL",
                                                                     "CONTENT_DIR", "WEBHOOK_", "HTTP_"))}
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL=f"sqlite:///{tmp_path / 'data' / 'bot.sqlite3'}",
               CONTENT_DIR=str(CONTENT), WEBHOOK_BASE_URL=PUBLIC)
    if fake is not None:
        env.update(ZALO_OA_APP_ID=fake.app_id, ZALO_OA_SECRET_KEY=fake.secret_key,
                   ZALO_OA_WEBHOOK_SECRET=fake.oa_secret, ZALO_OA_API_URL=fake.url, ZALO_OA_OAUTH_URL=fake.url)
    if seed is not None:
        env["ZALO_OA_REFRESH_TOKEN"] = seed
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, cwd=tmp_path, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_auth_url_needs_the_settings_and_says_which(tmp_path: Path):
    code, _out, err = await cli(tmp_path, None, "zalo-oa", "auth-url")
    assert code == 2 and "ZALO_OA_APP_ID" in err and "Traceback" not in err


async def test_the_consent_link_connects_the_running_service(tmp_path: Path):
    async with FakeZaloOA() as fake:
        code, out, err = await cli(tmp_path, fake, "zalo-oa", "auth-url")
        assert code == 0, err
        link = out.strip().splitlines()[-1]
        assert f"{PUBLIC}/zalo-oa/oauth" in out
        query = parse_qs(urlparse(link).query)
        assert urlparse(link).path == "/v4/oa/permission" and query["app_id"] == [fake.app_id]
        assert query["redirect_uri"] == [f"{PUBLIC}/zalo-oa/oauth"] and len(query["code_challenge"][0]) == 43
        app = await build_app(oa_settings(tmp_path, fake, None))  # no refresh token yet: waiting for consent
        app.services.remove(app.core.supervision)
        app.web = WebServer(app.channels, app.core.db, "127.0.0.1", 0)
        await app.start()
        try:
            assert not app.channels["zalo_oa"].running
            code_ = fake.consent(query["code_challenge"][0])  # the admin pressed "Cho phép"
            async with httpx.AsyncClient() as client:
                page = await client.get(f"{app.web.url}/zalo-oa/oauth", params={"code": code_,
                                                                                   "state": query["state"][0]})
                assert page.status_code == 200 and "Đã kết nối" in page.text
                again = await client.get(f"{app.web.url}/zalo-oa/oauth", params={"code": code_,
                                                                                    "state": query["state"][0]})
                assert again.status_code == 400
            assert app.channels["zalo_oa"].running
            fake.add_follower("c1")
            fake.webhook_url = f"{app.web.url}/zalo-oa/webhook"
            assert await fake.deliver(fake.text_event("c1", "xin chào")) == 200
            await app.channels["zalo_oa"].drain()
            assert len(fake.sent_to("c1")) == 1
        finally:
            await app.stop()


async def test_sync_pulls_every_follower_page_by_page(tmp_path: Path):
    async with FakeZaloOA() as fake:
        for i in range(120):
            fake.add_follower(f"{7000000000 + i}")
        seed = fake.issue_refresh_token()
        code, out, err = await cli(tmp_path, fake, "zalo-oa", "sync", "--json", seed=seed)
        assert code == 0, err
        assert json.loads(out) == {"followers": 120, "total": 120}
        pages = [p for _, p, _ in fake.requests if p.startswith("/v3.0/oa/user/getlist")]
        assert len(pages) == 3  # 50 + 50 + 20
        with sqlite3.connect(tmp_path / "data" / "bot.sqlite3") as con:
            rows = con.execute("SELECT kind, locality, consent, active, COUNT(*) FROM chats WHERE channel = 'zalo_oa'"
                               " GROUP BY 1, 2, 3, 4").fetchall()
        assert rows == [("private", "khanh-hoa", 1, 1, 120)]  # the whole province until /diaban
        code, out, err = await cli(tmp_path, fake, "zalo-oa", "sync", seed=seed)  # again: the seed stays unused
        assert code == 0 and "120" in out
        assert fake.refreshes == 1 and fake.spent_presented == 0
