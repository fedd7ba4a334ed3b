"""The dashboard on the real service's HTTP application (aiohttp test client, real SQLite file)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlparse

from aiohttp.test_utils import TestClient, TestServer

from bot.app.web import WebServer
from bot.app.wiring import Core, build_core
from bot.dashboard.http.app import DashboardWeb
from bot.kernel.config import Settings

STAFF = "900"  # TELEGRAM_STAFF_IDS: admin
SENDER = "901"  # granted with `staff add`: sender
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@asynccontextmanager
async def dashboard(settings: Settings, **changes) -> AsyncIterator[tuple[TestClient, Core]]:
    settings = dataclasses.replace(settings, telegram_staff_ids=frozenset({STAFF}), **changes)
    core = await build_core(settings)
    await core.staff.add("telegram", SENDER)
    server = WebServer(core.channels, core.db, mounts=[DashboardWeb(core.dashboard)])
    client = TestClient(TestServer(server.application()))
    await client.start_server()
    try:
        yield client, core
    finally:
        await client.close()
        await core.close()


def origin(client: TestClient) -> dict[str, str]:
    return {"Origin": str(client.make_url("")).rstrip("/")}


async def link_token(core: Core, user: str = STAFF) -> str:
    url = await core.dashboard.login_link("telegram", user, "test", "cli")
    assert url is not None
    return urlparse(url).query.removeprefix("t=")


async def sign_in(client: TestClient, core: Core, user: str = STAFF) -> str:
    """Sign in with a fresh link; the session's CSRF token."""
    token = await link_token(core, user)
    response = await client.post("/admin/login", data={"t": token}, headers=origin(client), allow_redirects=False)
    assert response.status == 302, await response.text()
    return await csrf_of(client)


async def csrf_of(client: TestClient, path: str = "/admin/") -> str:
    response = await client.get(path)
    assert response.status == 200, await response.text()
    match = _CSRF.search(await response.text())
    assert match
    return match.group(1)


async def post(client: TestClient, path: str, data: dict[str, str], csrf: str | None):
    body = dict(data, csrf=csrf) if csrf is not None else data
    return await client.post(path, data=body, headers=origin(client), allow_redirects=False)
