"""Petition topics in content, the petition flow below the channels (typed locality, text-only
channel), and the operator's `tickets list` / `tickets export --csv`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from bot.app.wiring import build_core
from bot.channels.base import Inbound
from bot.handoff.petitions import check, load_topics
from bot.kernel.config import Settings
from tests.conftest import CONTENT, run_cli


def test_shipped_topics_load_and_a_broken_file_is_reported(tmp_path: Path):
    topics, problems = load_topics(CONTENT)
    assert problems == [] and len(topics) >= 3 and len(topics) == len({t.id for t in topics})
    (tmp_path / "petition_topics.yaml").write_text("- id: a\n  title: A\n- title: thiếu id\n", encoding="utf-8")
    [problem] = check(tmp_path)
    assert problem.line == 3 and "id và title" in problem.message


async def test_petition_by_typing_on_a_text_only_channel_then_listed_and_exported(tmp_path: Path):
    settings = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT)
    core = await build_core(settings)

    async def say(text: str = "", option: str | None = None) -> str:
        inbound = Inbound("zalo", "z9", "z9", kind="option" if option else "text", text=text, option=option,
                          display_name="Chú Năm")
        return "\n".join(r.text for r in await core.dialogue.handle(inbound))

    try:
        assert "việc gì" in await say("/gopy")
        assert "xã, phường nào" in await say(option="pet:t:ha-tang")
        assert "Không tìm thấy" in await say("Phường Không Có")
        assert "Phan Rang" in await say("phuong phan rang")  # without diacritics, found
        assert "Xem lại ý kiến" in await say("Đèn đường hẻm 5 hỏng đã một tháng")
        assert "#1" in await say(option="pet:ok:")
        assert "Phiên gửi ý kiến này đã hết" in await say(option="pet:ok:")  # a second tap sends nothing more
        assert "đang chờ trả lời" in await say("/theodoi 1")
        assert "đang chờ trả lời" in await say("/theodoi")
    finally:
        await core.close()

    env = {"DATABASE_URL": f"sqlite:///{settings.database_path}", "CONTENT_DIR": str(CONTENT)}
    listed = run_cli("tickets", "list", "--status", "open", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["kind"], row["topic"], row["locality"], row["display_name"]) == (
        1, "petition", "ha-tang", "phan-rang", "Chú Năm")
    assert "user_id" not in row and "chat" not in row  # staff see what the ticket needs, not the ids
    assert json.loads(run_cli("tickets", "list", "--status", "answered", "--json", env=env).stdout) == []
    assert "#1" in run_cli("tickets", "list", env=env).stdout

    exported = run_cli("tickets", "export", "--csv", env=env)
    assert exported.returncode == 0, exported.stderr
    [record] = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert record["text"] == "Đèn đường hẻm 5 hỏng đã một tháng" and record["status"] == "open"
    out = tmp_path / "tickets.csv"
    assert run_cli("tickets", "export", "--csv", "-o", str(out), env=env).returncode == 0
    assert out.read_text(encoding="utf-8-sig").startswith("id,kind,status")


COMPLAINT = "Đường vào xóm tôi bị ngập mỗi khi mưa to, xe máy không đi được"


async def test_free_text_where_a_choice_is_expected_is_kept_as_the_petition(tmp_path: Path):
    """Typed at the topic step or at the locality step, a long text is the petition: kept, never read
    as a locality name or answered as a question; the flow asks only for what is missing."""
    core = await build_core(Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT))

    async def say(chat: str, text: str = "", option: str | None = None) -> str:
        inbound = Inbound("zalo", chat, chat, kind="option" if option else "text", text=text, option=option)
        return "\n".join(r.text for r in await core.dialogue.handle(inbound))

    try:
        await say("a", "/gopy")
        kept = await say("a", COMPLAINT)  # instead of a topic
        assert "Đã ghi lại nội dung" in kept and "Không tìm thấy" not in kept and "câu trả lời" not in kept
        assert "xã, phường nào" in await say("a", option="pet:t:ha-tang")
        consent = await say("a", "Phan Rang")
        assert "Xem lại ý kiến" in consent and COMPLAINT in consent
        assert "#1" in await say("a", option="pet:ok:")

        await say("b", "/gopy")
        assert "không có gì" in await say("b", "cảm ơn")  # short: handled as usual, the draft waits
        assert "xã, phường nào" in await say("b", "3")  # a topic by its number
        kept = await say("b", COMPLAINT)  # instead of a locality
        assert "Đã ghi lại nội dung" in kept and "Không tìm thấy" not in kept
        assert COMPLAINT in await say("b", "phuong phan rang")
        assert "#2" in await say("b", option="pet:ok:")
        rows = await core.db.fetchall("SELECT text, topic, locality FROM tickets ORDER BY id")
        assert [tuple(r) for r in rows] == [(COMPLAINT, "ha-tang", "phan-rang")] * 2
        assert await core.db.fetchval("SELECT COUNT(*) FROM question_log") == 0  # nothing went to kb gaps
    finally:
        await core.close()


NOISE = "Quán nhậu đầu hẻm mở nhạc karaoke tới khuya, cả xóm không ngủ được"
OFFER = "pet:q:gui-y-kien-kien-nghi"  # the entry naming /gopy in its keywords (content/knowledge/)


async def test_a_complaint_is_offered_as_a_petition_with_its_text_kept(tmp_path: Path):
    """The answer to a complaint (noise, a road, rubbish, an official) offers to send it as a petition;
    choosing it keeps the message: the resident picks topic and place and confirms. Telegram shows the
    option as a button, Zalo as a numbered choice: the same option below the channels."""
    core = await build_core(Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT))

    async def say(channel: str, text: str = "", option: str | None = None, chat_kind: str = "private"):
        inbound = Inbound(channel, f"{channel}-1", f"{channel}-1", kind="option" if option else "text", text=text,
                          option=option, chat_kind=chat_kind)  # type: ignore[arg-type]
        return await core.dialogue.handle(inbound)

    def shown(replies) -> tuple[str, list[str]]:
        return "\n".join(r.text for r in replies), [o.data for r in replies for o in r.options]

    try:
        for number, channel in enumerate(("telegram", "zalo"), start=1):
            text, options = shown(await say(channel, NOISE))
            assert options[0] == OFFER, options  # first under the answer
            text, options = shown(await say(channel, option=OFFER))
            assert "Đã ghi lại nội dung" in text and "pet:t:moi-truong" in options
            assert "xã, phường nào" in shown(await say(channel, option="pet:t:moi-truong"))[0]
            consent = shown(await say(channel, "Phan Rang"))[0]
            assert "Xem lại ý kiến" in consent and NOISE in consent
            assert f"#{number}" in shown(await say(channel, option="pet:ok:"))[0]
        rows = await core.db.fetchall("SELECT channel, text, topic, locality FROM tickets ORDER BY id")
        assert [tuple(r) for r in rows] == [(c, NOISE, "moi-truong", "phan-rang") for c in ("telegram", "zalo")]

        # Asked something else since: the old button starts /gopy without a text to keep.
        await say("telegram", NOISE)
        await say("telegram", "quỹ vì người nghèo là gì")
        text, options = shown(await say("telegram", option=OFFER))
        assert "việc gì" in text and "Đã ghi lại" not in text
        # Not offered in a group (a petition is sent in a private chat), nor under other answers.
        assert OFFER not in shown(await say("telegram", NOISE, chat_kind="group"))[1]
        assert not any(o.startswith("pet:q") for o in shown(await say("zalo", "nhà đại đoàn kết là gì"))[1])
    finally:
        await core.close()
