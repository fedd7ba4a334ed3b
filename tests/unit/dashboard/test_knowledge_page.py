"""The Knowledge page and editor: entries found by title, "try a question" as the running index
answers it (as a resident sees it, and why), the gaps residents left; editing entries in a copy of
content/ with `content check`'s validation, the live index swapped without a restart, drafts, roles."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

from markupsafe import escape

from bot.channels.base import Inbound
from tests.conftest import CONTENT
from tests.unit.dashboard.helpers import SENDER, csrf_of, dashboard, post, sign_in

GAP = "mẹ tôi già yếu ai giúp"  # declined by the shipped content; its nearest entry is quy-vnn-xin-ho-tro
ENTRY = "quy-vnn-xin-ho-tro"


def _copy(tmp_path: Path) -> Path:
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    return content


async def test_try_a_question_gaps_and_entries(settings):
    async with dashboard(settings) as (client, core):
        asked = ("telegram", "xin giấy phép nuôi chó", "xin giay phep nuoi cho", "declined", time.time())
        await core.db.write("INSERT INTO question_log (channel, text, folded, outcome, asked_at)"
                            " VALUES (?, ?, ?, ?, ?)", asked)
        await sign_in(client, core)
        expected = core.knowledge.index.search("quy vi nguoi ngheo")
        assert expected.decision == "answer"
        page = await (await client.get("/admin/knowledge", params={"q": "quy vi nguoi ngheo"})).text()
        title = str(escape(expected.best.entry.title))  # as Jinja2 escapes it
        assert 'data-decision="answer"' in page and title in page.split('id="decision"')[1].split("</p>")[0]
        previews = page.split('class="previews"')[1]
        assert f"<b>{expected.best.entry.title}</b>" in previews.split('class="phone zalo"')[0]  # Telegram
        assert "Quyết định: TRẢ LỜI" in page.split('id="why"')[1]  # `ask --explain`'s lines
        assert "xin giấy phép nuôi chó" in page.split('id="gaps"')[1]
        assert f"<h2>Các mục ({len(core.knowledge.content.entries)})</h2>" in page
        found = await (await client.get("/admin/knowledge", params={"find": "nguoi ngheo"})).text()
        assert title in found.split('id="entries"')[1]
        unknown = await (await client.get("/admin/knowledge", params={"q": "giá vé máy bay đi Pháp"})).text()
        assert 'data-decision="decline"' in unknown or 'data-decision="choices"' in unknown


async def test_a_gap_wording_added_to_an_entry_is_answered_at_once(settings, tmp_path):
    content = _copy(tmp_path)
    async with dashboard(dataclasses.replace(settings, content_dir=content)) as (client, core):
        assert core.knowledge.index.search(GAP).decision == "decline"
        before = (content / "knowledge" / f"{ENTRY}.md").read_text(encoding="utf-8")
        csrf = await sign_in(client, core)
        page = await (await client.get("/admin/knowledge", params={"q": GAP})).text()
        assert f'data-entry="{ENTRY}"' in page  # a one-click button on the candidate
        response = await post(client, "/admin/knowledge/questions", {"entry": ENTRY, "wording": GAP}, csrf)
        assert response.status == 302 and response.headers["Location"].startswith("/admin/knowledge?q=")
        answer = core.knowledge.index.search(GAP)
        assert (answer.decision, answer.best.entry.id) == ("answer", ENTRY)
        replies = await core.dialogue.handle(Inbound("telegram", "42", "42", text=GAP))
        assert replies[0].title == core.knowledge.content.entry(ENTRY).title  # the dialogue answers from the new index
        after = (content / "knowledge" / f"{ENTRY}.md").read_text(encoding="utf-8")
        removed = [line for line in before.splitlines() if line not in after.splitlines()]
        added = [line for line in after.splitlines() if line not in before.splitlines()]
        assert [line for line in added if "updated:" not in line] == [f"  - {GAP}"]
        assert all(line.startswith("updated:") for line in removed)
        [row] = await core.dashboard.audit.recent(action="knowledge")
        assert (row["action"], row["target"], row["via"]) == ("knowledge.question", f"knowledge:{ENTRY}", "web")
        shown = await (await client.get("/admin/knowledge", params={"q": GAP})).text()
        assert 'data-decision="answer"' in shown


async def test_an_invalid_edit_is_refused_by_field_and_nothing_changes(settings, tmp_path):
    content = _copy(tmp_path)
    async with dashboard(dataclasses.replace(settings, content_dir=content)) as (client, core):
        path = content / "knowledge" / f"{ENTRY}.md"
        before, index = path.read_text(encoding="utf-8"), core.knowledge.index
        csrf = await sign_in(client, core)
        form = await (await client.get(f"/admin/knowledge/e/{ENTRY}")).text()
        assert 'name="questions"' in form and 'class="previews"' in form
        fields = {"title": "  ", "body": "Nội dung", "questions": "a?", "keywords": "", "tags": "", "source": ""}
        response = await post(client, f"/admin/knowledge/e/{ENTRY}", dict(fields, action="save"), csrf)
        assert response.status == 400
        page = await response.text()
        assert "thiếu title" in page.split('data-field="title"')[1].split("</ul>")[0]
        long = dict(fields, title="Xin hỗ trợ", body="x" * 7000)
        page = await (await post(client, f"/admin/knowledge/e/{ENTRY}", dict(long, action="save"), csrf)).text()
        assert "quá giới hạn" in page.split('data-field="body"')[1].split("</ul>")[0]
        assert path.read_text(encoding="utf-8") == before and core.knowledge.index is index
        # a problem elsewhere in the folder (as `content check` finds it): refused, the file put back
        (content / "localities.yaml").write_text("- code: [\n", encoding="utf-8")
        good = dict(fields, title="Xin hỗ trợ từ Quỹ", questions="xin hỗ trợ quỹ", action="save")
        page = await (await post(client, f"/admin/knowledge/e/{ENTRY}", good, csrf)).text()
        assert 'id="refused"' in page and "localities.yaml" in page
        assert path.read_text(encoding="utf-8") == before and core.knowledge.index is index
        assert not [p for p in (content / "knowledge").iterdir() if p.suffix != ".md"]  # no temporary left
        assert await core.dashboard.audit.recent(action="knowledge") == []


async def test_a_new_entry_is_a_draft_until_published(settings, tmp_path):
    content = _copy(tmp_path)
    async with dashboard(dataclasses.replace(settings, content_dir=content)) as (client, core):
        csrf = await sign_in(client, core)
        form = await (await client.get("/admin/knowledge/new", params={"from": "xin giấy phép nuôi chó"})).text()
        assert 'value="xin-giay-phep-nuoi-cho"' in form
        fields = {"id": "nuoi-cho", "title": "Nuôi chó trong khu dân cư", "questions": "xin giấy phép nuôi chó",
                  "body": "Nuôi chó phải **đăng ký** với công an xã và tiêm phòng dại hằng năm.", "keywords": "",
                  "tags": "", "source": ""}
        assert (await post(client, "/admin/knowledge/new", dict(fields, id="Nuôi chó"), csrf)).status == 400
        response = await post(client, "/admin/knowledge/new", fields, csrf)
        assert response.status == 302, await response.text()
        text = (content / "knowledge" / "nuoi-cho.md").read_text(encoding="utf-8")
        assert "draft: true" in text
        assert core.knowledge.index.search("xin giấy phép nuôi chó").decision == "decline"  # a draft is not served
        assert "nuoi-cho" in (await (await client.get("/admin/knowledge")).text()).split('id="drafts"')[1]
        assert (await post(client, "/admin/knowledge/new", fields, csrf)).status == 400  # the id is taken
        edit = dict(fields, action="preview")
        preview = await (await post(client, "/admin/knowledge/e/nuoi-cho", edit, csrf)).text()
        assert "<b>đăng ký</b>" in preview.split('class="previews"')[1]  # unsaved, as a resident sees it
        assert "draft: true" in (content / "knowledge" / "nuoi-cho.md").read_text(encoding="utf-8")
        response = await post(client, "/admin/knowledge/e/nuoi-cho", dict(fields, action="publish"), csrf)
        assert response.status == 302
        assert "draft" not in (content / "knowledge" / "nuoi-cho.md").read_text(encoding="utf-8")
        answer = core.knowledge.index.search("xin giấy phép nuôi chó")
        assert (answer.decision, answer.best.entry.id) == ("answer", "nuoi-cho")
        actions = [r["action"] for r in await core.dashboard.audit.recent(action="knowledge")]
        assert actions == ["knowledge.publish", "knowledge.create"]


async def test_editing_needs_the_editor_role_and_a_csrf_token(settings, tmp_path):
    content = _copy(tmp_path)
    async with dashboard(dataclasses.replace(settings, content_dir=content)) as (client, core):
        csrf = await sign_in(client, core, SENDER)  # a sender: may read the page, not edit
        page = await (await client.get("/admin/knowledge", params={"q": GAP})).text()
        assert "add-question" not in page
        assert (await client.get(f"/admin/knowledge/e/{ENTRY}")).status == 403
        assert (await client.get("/admin/knowledge/new")).status == 403
        data = {"entry": ENTRY, "wording": GAP}
        assert (await post(client, "/admin/knowledge/questions", data, csrf)).status == 403
        await core.dashboard.accounts.set_role("telegram", SENDER, "editor", "test")
        csrf = await csrf_of(client)
        assert (await post(client, "/admin/knowledge/questions", data, None)).status == 403  # no CSRF token
        assert (await client.get("/admin/knowledge/e/no-such-entry")).status == 404
        assert core.knowledge.index.search(GAP).decision == "decline"
        assert (await post(client, "/admin/knowledge/questions", data, csrf)).status == 302
        assert core.knowledge.index.search(GAP).decision == "answer"
