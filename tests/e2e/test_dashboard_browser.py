"""The dashboard in a real browser: Debian's chromium driven by Playwright (never `playwright install`),
against the real service (`build_app`, real PTB over HTTP to the fake Bot API, real SQLite).

A staff member gets a link with /dangnhap, signs in, composes a broadcast to groups, sees the
preview and the recipient count, sends it, watches the progress reach 100 %, reads the report, and
answers a resident's ticket from the web; and adds a question the bot declined (a knowledge gap) as
an example question of an entry in the Knowledge page, after which the running bot answers it on
Telegram. At desktop and phone (375 px) widths, with screenshots (in the test's tmp folder; also in
$DASHBOARD_SCREENSHOTS when set, which is how docs/ got its own).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import socket
from pathlib import Path

import pytest

from bot.app.service import build_app, web_server
from bot.audiences.registration import GroupRecord, register_groups
from bot.kernel.config import Settings
from tests.conftest import CONTENT
from tests.e2e.test_telegram_e2e import BOT, TOKEN
from tests.fakes.telegram import FakeTelegram

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)",
                allow_module_level=True)
playwright = pytest.importorskip("playwright.async_api", reason="pip install playwright (in the test extras)")

STAFF, RESIDENT = 900, 501
GAP = "mẹ tôi già yếu ai giúp"  # declined by the shipped content
ENTRY = "quy-vnn-xin-ho-tro"  # the entry that answers it once it is one of its example questions
GROUPS = ("-2001", "-2002")
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 812}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
async def service(tmp_path: Path):
    content = tmp_path / "content"  # a copy: the Knowledge page writes to it
    shutil.copytree(CONTENT, content)
    async with FakeTelegram(token=TOKEN, username=BOT, limits=(300, 20, 1)) as fake:
        port = free_port()
        settings = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=content, telegram_bot_token=TOKEN,
                            telegram_api_url=fake.url, telegram_staff_ids=frozenset({str(STAFF)}),
                            telegram_rate_per_second=300, http_port=port)
        app = await build_app(settings)
        app.worker.backoff = (0.2, 0.4)
        app.web = web_server(app, settings)
        await app.start()
        try:
            yield app, fake, dataclasses.replace(settings)
        finally:
            await app.stop()


@pytest.fixture
async def browser():
    async with playwright.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        await chromium.close()


def shots(tmp_path: Path, size: str):
    folders = [tmp_path]
    if os.environ.get("DASHBOARD_SCREENSHOTS"):
        folders.append(Path(os.environ["DASHBOARD_SCREENSHOTS"]))

    async def take(page, name: str) -> None:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(folder / f"dashboard-{name}-{size}.png"), full_page=True)

    return take


async def no_sideways_scroll(page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    wide = await page.evaluate("[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect()"
                               ".right > window.innerWidth + 1).slice(0, 3).map(e => e.tagName + '.' + e.className)")
    assert width <= await page.evaluate("window.innerWidth"), f"the page is {width} px wide: {wide}"


async def signed_in(fake: FakeTelegram, browser, size: str):
    fake.push_update(fake.text_update(STAFF, "/dangnhap", user_id=STAFF, first_name="Hùng"))
    [message] = await fake.wait_for(lambda m: m.chat_id == STAFF and "/admin/login?t=" in m.text, timeout=5)
    link = re.search(r"http://\S+", message.text).group(0)
    context = await browser.new_context(viewport=SIZES[size], locale="vi-VN")
    page = await context.new_page()
    await page.goto(link)
    await page.click("#signin")
    await page.wait_for_selector("h1:text-is('Tổng quan')")
    return context, page, link.split("/admin/")[0]


@pytest.mark.parametrize("size", list(SIZES))
async def test_sign_in_send_a_broadcast_watch_it_and_answer_a_ticket(service, browser, tmp_path, size):
    app, fake, _ = service
    take = shots(tmp_path, size)
    await register_groups(app.core.db, [GroupRecord("telegram", g, "phan-rang", f"Tổ {g}") for g in GROUPS])

    context, page, base = await signed_in(fake, browser, size)
    assert "/admin/" in page.url
    await no_sideways_scroll(page)
    await take(page, "overview")

    # compose, preview, count, send
    await page.goto(base + "/admin/broadcasts/new")
    await page.fill("textarea[name=text]", "**Họp tổ dân phố** tối thứ Sáu lúc 19h30.\n- Mang theo CCCD")
    await page.fill("input[name=title]", "Thông báo họp")
    await page.check("input[name=audience][value=groups]")
    await page.select_option("select[name=locality]", "phan-rang")
    await page.click("#preview")
    await page.wait_for_selector("#counts")
    assert await page.inner_text("#total") == "2"
    bubble = page.locator(".phone.telegram .bubble b").first
    assert await bubble.inner_text() == "Thông báo họp"
    assert "1. Đã nhận" in await page.inner_text(".phone.zalo")
    await no_sideways_scroll(page)
    await take(page, "compose")
    await page.click("#send")
    await page.wait_for_selector("#progress")
    await playwright.expect(page.locator("#percent")).to_have_text("100", timeout=15000)  # the script's polling
    assert await page.inner_text("#sent") == "2"
    got = {str(m.chat_id) for m in fake.sent if "Họp tổ dân phố" in m.text}
    assert got == set(GROUPS)
    await page.reload()
    assert await page.locator("#recipients tbody tr").count() == 2
    assert await page.locator("#recipients .tag.sent").count() == 2
    await no_sideways_scroll(page)
    await take(page, "report")

    # a resident's question, answered from the web
    fake.push_update(fake.text_update(RESIDENT, "/canbo Cho hỏi thủ tục xin hỗ trợ sửa nhà?", user_id=RESIDENT))
    await fake.wait_for(lambda m: m.chat_id == RESIDENT, timeout=5)
    tickets = await app.core.handoff.tickets.list()
    assert tickets, "the question became a ticket"
    await page.goto(base + "/admin/tickets")
    await page.click(f"text=#{tickets[-1].id}")
    await page.fill("#answer textarea", "Bà con mang đơn đến UBMTTQ phường, sáng thứ Hai đến thứ Sáu.")
    await page.click("#send-answer")
    await page.wait_for_selector("text=Đã gửi câu trả lời tới người dân.")
    await fake.wait_for(lambda m: m.chat_id == RESIDENT and "sáng thứ Hai đến thứ Sáu" in m.text, timeout=5)
    await no_sideways_scroll(page)
    await take(page, "ticket")
    assert (await app.core.handoff.tickets.get(tickets[-1].id)).status == "answered"

    # the other pages fit the width too
    for path, name in (("/admin/", "overview-after"), ("/admin/supervision", "supervision"),
                       ("/admin/groups", "groups"), ("/admin/audit", "audit")):
        await page.goto(base + path)
        await page.wait_for_selector("h1")
        await no_sideways_scroll(page)
        await take(page, name)
    assert await page.locator("#audit td", has_text="ticket.answer").count() == 1
    assert await page.locator("#audit td", has_text="broadcast.send").count() == 1
    await context.close()


@pytest.mark.parametrize("size", list(SIZES))
async def test_a_gaps_wording_added_to_an_entry_is_answered_by_the_running_bot(service, browser, tmp_path, size):
    app, fake, settings = service
    take = shots(tmp_path, size)
    title = app.core.knowledge.content.entry(ENTRY).title
    fake.push_update(fake.text_update(RESIDENT, GAP, user_id=RESIDENT))
    [declined, *_] = await fake.wait_for(lambda m: m.chat_id == RESIDENT, timeout=5)
    assert title not in declined.text

    context, page, base = await signed_in(fake, browser, size)
    await page.goto(base + "/admin/knowledge")
    row = page.locator("#gaps tr", has_text=GAP)
    await row.locator("a.gap-try").click()  # "Thêm vào một mục…": try the wording
    await page.wait_for_selector("#decision")
    assert await page.get_attribute("#decision", "data-decision") == "decline"
    await no_sideways_scroll(page)
    await take(page, "knowledge-try")
    await page.click(f".add-question[data-entry={ENTRY}]")  # the one click
    await page.wait_for_selector("p.flash")
    assert "Đã thêm" in await page.inner_text("p.flash")
    assert await page.get_attribute("#decision", "data-decision") == "answer"
    assert title in await page.inner_text("#decision")
    assert GAP in (settings.content_dir / "knowledge" / f"{ENTRY}.md").read_text(encoding="utf-8")

    sent = len(fake.sent)
    fake.push_update(fake.text_update(RESIDENT, GAP, user_id=RESIDENT))  # no restart: the bot knows it now
    await fake.wait_for(lambda m: m.chat_id == RESIDENT and title in m.text and m in fake.sent[sent:], timeout=5)

    await page.goto(f"{base}/admin/knowledge/e/{ENTRY}")
    assert GAP in await page.input_value("textarea[name=questions]")
    await page.wait_for_selector(".previews .phone.telegram .bubble")
    await no_sideways_scroll(page)
    await take(page, "knowledge-editor")
    await page.goto(base + "/admin/audit")
    assert await page.locator("#audit td", has_text="knowledge.question").count() == 1
    await context.close()
