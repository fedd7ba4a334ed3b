"""Sign-in links, sessions, CSRF, Origin, roles, rate limit and the audit log, over real HTTP."""

from __future__ import annotations

import time

from tests.conftest import run_cli
from tests.unit.dashboard.helpers import SENDER, STAFF, csrf_of, dashboard, link_token, origin, post, sign_in


async def test_nothing_under_admin_without_a_session(settings):
    async with dashboard(settings) as (client, _):
        for path in ("/admin/", "/admin/broadcasts", "/admin/tickets", "/admin/audit", "/admin/broadcasts/1"):
            response = await client.get(path, allow_redirects=False)
            assert response.status == 302
            assert response.headers["Location"].startswith("/admin/login?next=")
        response = await client.post("/admin/broadcasts", data={"text": "x"}, headers=origin(client))
        assert response.status == 401
        assert "đăng nhập lại" in await response.text()
        response = await client.get("/admin", allow_redirects=False)
        assert response.headers["Location"] == "/admin/"


async def test_a_link_signs_in_once_and_the_cookie_is_locked_down(settings):
    async with dashboard(settings) as (client, core):
        token = await link_token(core)
        page = await client.get(f"/admin/login?t={token}")  # a link preview: shows a button, uses nothing
        assert page.status == 200 and 'id="signin"' in await page.text()
        assert await core.dashboard.accounts.link_state(token) == "valid"
        response = await client.post("/admin/login", data={"t": token}, headers=origin(client), allow_redirects=False)
        assert response.status == 302 and response.headers["Location"] == "/admin/"
        cookie = response.headers["Set-Cookie"]
        assert "lp_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # PUBLIC_URL is http here
        home = await client.get("/admin/")
        assert home.status == 200 and "Tổng quan" in await home.text() and "quản trị" in await home.text()
        assert home.headers["X-Frame-Options"] == "DENY" and home.headers["Referrer-Policy"] == "same-origin"
        client.session.cookie_jar.clear()
        again = await client.post("/admin/login", data={"t": token}, headers=origin(client))
        assert again.status == 400 and "đã được dùng" in await again.text()
        assert (await client.get(f"/admin/login?t={token}")).status == 400


async def test_expired_unknown_and_non_staff_links_are_refused(settings):
    async with dashboard(settings) as (client, core):
        assert await core.dashboard.login_link("telegram", "12345", "test", "cli") is None  # not staff
        token = await link_token(core)
        core.dashboard.accounts.clock = lambda: time.time() + 16 * 60
        response = await client.post("/admin/login", data={"t": token}, headers=origin(client))
        assert response.status == 400 and "hết hạn" in await response.text()
        response = await client.post("/admin/login", data={"t": "nope"}, headers=origin(client))
        assert response.status == 400 and "không đúng" in await response.text()


async def test_secure_cookie_when_public_url_is_https(settings):
    async with dashboard(settings, public_url="https://mttq.example.vn") as (client, core):
        token = await link_token(core)
        assert (await core.dashboard.login_link("telegram", STAFF, "t", "cli")).startswith(
            "https://mttq.example.vn/admin/login?t=")
        response = await client.post("/admin/login", data={"t": token}, headers=origin(client), allow_redirects=False)
        assert "Secure" in response.headers["Set-Cookie"]


async def test_forms_need_the_session_csrf_token_and_our_origin(settings):
    async with dashboard(settings) as (client, core):
        csrf = await sign_in(client, core)
        draft = {"text": "Họp tổ dân phố tối nay", "audience": "groups"}
        assert (await post(client, "/admin/broadcasts/preview", draft, None)).status == 403
        assert (await post(client, "/admin/broadcasts/preview", draft, "forged")).status == 403
        foreign = await client.post("/admin/broadcasts/preview", data=dict(draft, csrf=csrf),
                                    headers={"Origin": "https://evil.example"})
        assert foreign.status == 403
        ok = await post(client, "/admin/broadcasts/preview", draft, csrf)
        assert ok.status == 200 and "Số người nhận" in await ok.text()


async def test_sessions_expire_end_at_logout_and_with_staff_rights(settings):
    async with dashboard(settings) as (client, core):
        csrf = await sign_in(client, core)
        response = await post(client, "/admin/logout", {}, csrf)
        assert response.status == 302
        assert (await client.get("/admin/", allow_redirects=False)).status == 302
        await sign_in(client, core)
        core.dashboard.accounts.clock = lambda: time.time() + 13 * 3600  # WEB_SESSION_HOURS 12
        assert (await client.get("/admin/", allow_redirects=False)).status == 302
        core.dashboard.accounts.clock = time.time
        client.session.cookie_jar.clear()
        await sign_in(client, core, SENDER)
        await core.db.write("DELETE FROM staff WHERE user_id = ?", (SENDER,))  # rights withdrawn
        assert (await client.get("/admin/", allow_redirects=False)).status == 302


async def test_a_session_left_idle_ends_before_its_expiry(settings):
    async with dashboard(settings, web_idle_minutes=30) as (client, core):
        await sign_in(client, core)
        start = time.time()
        for minutes in (20, 45, 70):  # each view within 30 minutes of the one before keeps it alive
            core.dashboard.accounts.clock = lambda m=minutes: start + m * 60
            assert (await client.get("/admin/", allow_redirects=False)).status == 200, minutes
        core.dashboard.accounts.clock = lambda: start + 101 * 60  # 31 minutes without a page
        assert (await client.get("/admin/", allow_redirects=False)).status == 302
        core.dashboard.accounts.clock = lambda: start + 71 * 60  # it was ended, not just refused once
        assert (await client.get("/admin/", allow_redirects=False)).status == 302


async def test_each_session_is_its_own_staff_member(settings):
    async with dashboard(settings) as (client, core):
        await sign_in(client, core, SENDER)
        page = await (await client.get("/admin/")).text()
        assert f"telegram:{SENDER}" in page and "gửi tin" in page


async def test_roles_viewer_cannot_send(settings):
    async with dashboard(settings) as (client, core):
        await core.dashboard.accounts.set_role("telegram", SENDER, "viewer", "test")
        csrf = await sign_in(client, core, SENDER)
        listing = await (await client.get("/admin/broadcasts")).text()
        assert "Soạn thông báo" not in listing
        response = await post(client, "/admin/broadcasts", {"text": "x", "audience": "groups"}, csrf)
        assert response.status == 403 and "Vai trò" in await response.text()
        assert await core.broadcasts.recent() == []


async def test_sign_in_attempts_are_rate_limited(settings):
    async with dashboard(settings) as (client, core):
        for _ in range(core.dashboard.attempts.limit):
            await client.post("/admin/login", data={"t": "guess"}, headers=origin(client))
        token = await link_token(core)
        response = await client.post("/admin/login", data={"t": token}, headers=origin(client))
        assert response.status == 429 and "quá nhiều" in await response.text()
        assert await core.dashboard.accounts.link_state(token) == "valid"  # not used up by the refusal


async def test_the_audit_log_shows_sign_in_and_out(settings):
    async with dashboard(settings) as (client, core):
        csrf = await sign_in(client, core)
        await post(client, "/admin/logout", {}, csrf)
        await sign_in(client, core)
        page = await (await client.get("/admin/audit")).text()
        for action in ("login_link", "login", "logout"):
            assert f"<td>{action}</td>" in page
        assert await csrf_of(client)


def test_cli_login_link_prints_the_link_last_and_refuses_non_staff(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}", "TELEGRAM_STAFF_IDS": STAFF,
           "PUBLIC_URL": "https://mttq.example.vn"}
    done = run_cli("web", "login-link", "--channel", "telegram", "--user-id", STAFF, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("https://mttq.example.vn/admin/login?t=")
    refused = run_cli("web", "login-link", "--channel", "telegram", "--user-id", "777", env=env)
    assert refused.returncode == 1 and "không phải cán bộ" in refused.stderr
