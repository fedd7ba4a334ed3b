"""`kb gaps` and `kb draft`: the questions the bot could not answer, grouped on folded text, and a
staff answer saved as a draft knowledge entry that `content check` accepts and the bot does not serve."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from bot.app.wiring import build_core
from bot.channels.base import Inbound
from bot.kernel.config import Settings
from bot.kernel.content import load_content
from bot.knowledge.gaps import Asked, group
from tests.conftest import CONTENT, run_cli

# Out of scope for the knowledge base (declined), each written with and without diacritics.
BUS = ["xe buýt ra sân bay mấy giờ chạy", "xe buyt ra san bay may gio chay", "Xe buýt ra sân bay mấy giờ chạy vậy ạ?",
       "XE BUYT RA SAN BAY MAY GIO CHAY"]
GOLD = ["rạp phim tối nay chiếu phim gì", "rap phim toi nay chieu phim gi"]  # weather and prices are known topics now


def test_grouping_joins_accented_and_unaccented_and_close_wordings():
    asked = [Asked(t, float(i), "declined") for i, t in enumerate(BUS + GOLD + ["hôm nay trời mưa không"])]
    groups = group(asked)
    assert [g.count for g in groups] == [4, 2, 1]
    assert groups[0].representative() in (BUS[0], BUS[2])  # an accented wording is shown
    assert {i.text for i in groups[1].items} == set(GOLD)


async def test_kb_gaps_cli_groups_declined_and_handed_off_questions(tmp_path: Path):
    settings = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=CONTENT)
    core = await build_core(settings)
    try:
        for n, text in enumerate(BUS + GOLD):
            await core.dialogue.handle(Inbound("telegram", str(700 + n), str(700 + n), text=text))
        await core.dialogue.handle(Inbound("telegram", "800", "800", text="/canbo xe buýt ra sân bay mấy giờ chạy?"))
        # A known out-of-scope topic (content/out_of_scope.yaml): declined with its advice, not a gap.
        await core.dialogue.handle(Inbound("telegram", "900", "900", text="mua nhà ở xã hội cần điều kiện gì"))
        await core.dialogue.handle(Inbound("telegram", "700", "700", kind="option", option="hof:q"))  # forwarded
    finally:
        await core.close()
    with sqlite3.connect(settings.database_path) as db:
        outcomes = {r[0] for r in db.execute("SELECT outcome FROM question_log")}
        assert outcomes == {"declined"}, "the test needs questions the bot declines"
        [known] = db.execute("SELECT entry_id FROM question_log WHERE text LIKE 'mua nhà ở xã hội%'").fetchall()
        assert known[0] == "ngoai-pham-vi:nha-o-xa-hoi"

    env = {"DATABASE_URL": f"sqlite:///{settings.database_path}", "CONTENT_DIR": str(CONTENT)}
    result = run_cli("kb", "gaps", "--json", env=env)
    assert result.returncode == 0, result.stderr
    groups = json.loads(result.stdout)
    # 4 declined wordings + the /canbo ticket; the forwarded decline (chat 700) is not counted twice
    assert (groups[0]["count"], groups[0]["handed_off"]) == (5, 2)
    assert set(groups[0]["variants"]) | {groups[0]["question"]} >= {BUS[0], BUS[1]}
    assert groups[1]["count"] == 2
    assert len(groups) == 2 and not any("nhà ở xã hội" in g["question"] for g in groups)

    text = run_cli("kb", "gaps", "--since", "01/01/2020", env=env)
    assert text.returncode == 0 and "5 lần" in text.stdout and "~ xe buyt ra san bay may gio chay" in text.stdout
    assert run_cli("kb", "gaps", "--since", "hôm qua", env=env).returncode == 2
    assert "Chưa có" in run_cli("kb", "gaps", "--since", "2099-01-01", env=env).stdout


async def test_kb_draft_saves_a_staff_answer_as_an_unserved_draft_entry(tmp_path: Path):
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    settings = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=content,
                        telegram_staff_ids=frozenset({"77"}))
    core = await build_core(settings)
    try:
        await core.dialogue.handle(Inbound("telegram", "501", "501", text="/canbo Xe buýt ra sân bay mấy giờ chạy?"))
        staff = Inbound("telegram", "77", "77", text="/traloi 1 Tuyến số 5 chạy từ 5:30 đến 19:00 hằng ngày.")
        await core.dialogue.handle(staff)  # no channel runs here: not delivered, so not recorded
        await core.handoff.tickets.answer(1, "Tuyến số 5 chạy từ 5:30 đến 19:00 hằng ngày.", "telegram:77")  # type: ignore[union-attr]
    finally:
        await core.close()
    env = {"DATABASE_URL": f"sqlite:///{settings.database_path}", "CONTENT_DIR": str(content)}
    result = run_cli("kb", "draft", "--ticket", "1", env=env)
    assert result.returncode == 0, result.stderr
    [path] = (content / "knowledge").glob("nhap-1-*.md")
    text = path.read_text(encoding="utf-8")
    assert "draft: true" in text and "Tuyến số 5" in text and "77" not in text
    assert run_cli("kb", "draft", "--ticket", "1", env=env).returncode == 1  # exists: not overwritten
    assert run_cli("kb", "draft", "--ticket", "9", env=env).returncode == 1

    check = run_cli("content", "check", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    loaded = load_content(content)
    assert not any(e.id.startswith("nhap-1") for e in loaded.entries)  # validated, not served


def _group_every_pair(asked: list[Asked], threshold: float = 0.6) -> list[list[str]]:
    """The grouping as first written (each wording against every group): the reference."""
    from bot.knowledge.gaps import Group, similarity, tokens

    by_exact: dict[frozenset[str], Group] = {}
    for item in sorted(asked, key=lambda i: i.at):
        if tokens(item.text):
            by_exact.setdefault(tokens(item.text), Group(tokens(item.text))).items.append(item)
    groups: list[Group] = []
    for candidate in sorted(by_exact.values(), key=lambda g: -g.count):
        best, score = None, 0.0
        for g in groups:
            s = similarity(candidate.tokens, g.tokens)
            if s > score:
                best, score = g, s
        if best is not None and score >= threshold:
            best.items.extend(candidate.items)
        else:
            groups.append(candidate)
    return [[i.text for i in g.items] for g in sorted(groups, key=lambda g: (-g.count, -g.last))]


def test_indexed_grouping_gives_the_groups_of_comparing_every_pair():
    import random

    rng = random.Random(5)
    words = ["xin", "giấy", "phép", "hộ", "nghèo", "quỹ", "vì", "người", "ở", "đâu", "bao", "giờ", "làm", "thẻ",
             "bhyt", "cho", "con", "mấy", "tuổi", "đăng", "ký", "tạm", "trú", "a", "ạ", "1", "2", "3"]
    asked = [Asked(" ".join(rng.choice(words) for _ in range(rng.randint(1, 7))), float(n), "declined")
             for n in range(1500)]
    asked += [Asked(t, 2000.0 + n, "declined") for n, t in enumerate(BUS + GOLD)]
    for threshold in (0.6, 0.4, 0.8, 1.0):
        assert [[i.text for i in g.items] for g in group(asked, threshold)] == _group_every_pair(asked, threshold)
