"""content/schedules.yaml: checked by `content check` with file:line, loaded as standing series."""

import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.broadcasts.standing import load_standing
from tests.conftest import CONTENT, run_cli

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def test_the_shipped_schedules_are_valid_and_all_off():
    standing, problems = load_standing(CONTENT, TZ)
    assert problems == []
    assert {s.kind for s in standing} == {"summary", "broadcast", "digest"}
    # a fresh deployment sends nothing by itself: every shipped item is `enabled: false`
    assert standing and not any(s.enabled for s in standing)


async def test_a_disabled_item_is_not_run_and_ends_its_series(db, tmp_path: Path):
    from bot.audiences.localities import load_localities
    from bot.broadcasts.series import SeriesStore
    from bot.broadcasts.store import Broadcasts

    tree, _ = load_localities(CONTENT)
    store = SeriesStore(db, Broadcasts(db, tree), tree, TZ)
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    on = root / "schedules.yaml"
    on.write_text("- id: tin-tuan\n  repeat: \"@weekly\"\n  text: Tin {nam}\n"
                  "- id: tat\n  enabled: false\n  repeat: \"@monthly\"\n  text: Tắt\n", encoding="utf-8")
    standing, problems = load_standing(root, TZ)
    assert problems == [] and [s.enabled for s in standing] == [True, False]
    assert await store.sync_standing(standing) == (1, 0, 0)
    assert [s.key for s in await store.active()] == ["tin-tuan"]
    on.write_text("- id: tin-tuan\n  enabled: false\n  repeat: \"@weekly\"\n  text: Tin {nam}\n",
                  encoding="utf-8")
    assert await store.sync_standing(load_standing(root, TZ)[0]) == (0, 0, 1)
    assert await store.active() == []
    on.write_text("- id: x\n  enabled: maybe\n  repeat: \"@weekly\"\n  text: T\n", encoding="utf-8")
    assert [(p.line, p.message[:23]) for p in load_standing(root, TZ)[1]] == [(2, "enabled phải là true ho")]


def test_content_check_names_file_and_line_of_each_problem(tmp_path: Path):
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    (root / "announcements" / "nhac-quy.md").write_text(
        "---\nid: nhac-quy\ntitle: Nhắc\n---\n\nKính gửi {dia_ban}:\nhạn {han_chot}.\n", encoding="utf-8")
    (root / "schedules.yaml").write_text(
        "- id: a\n"                       # 1
        "  repeat: \"0 8 * * 1\"\n"       # 2
        "  text: |-\n"                    # 3
        "    Chào {dia_ban},\n"           # 4
        "    {quý} có {so_luong} việc.\n"  # 5
        "- id: b\n"                       # 6
        "  repeat: \"@hourly\"\n"          # 7
        "  text: Tin {nam}\n"             # 8
        "- id: a\n"                       # 9
        "  kind: report\n"                # 10
        "  repeat: \"@weekly\"\n"          # 11
        "- id: c\n"                       # 12
        "  repeat: \"@monthly\"\n"         # 13
        "  file: announcements/nhac-quy.md\n"  # 14
        "  locality: khong-co\n",         # 15
        encoding="utf-8")
    result = run_cli("content", "check", env={"CONTENT_DIR": str(root)})
    assert result.returncode == 1
    err = result.stdout + result.stderr
    schedules = root / "schedules.yaml"
    assert f"{schedules}:5: chỗ điền {{so_luong}} không có" in err
    assert f"{schedules}:4:" not in err  # {dia_ban} and {quý} are known
    assert f"{schedules}:7: lịch lặp '@hourly' không có" in err
    assert f"{schedules}:9: id 'a' trùng với mục ở dòng 1" in err
    assert f"{schedules}:10: kind 'report' không có" in err
    assert f"{schedules}:15: không có địa bàn 'khong-co'" in err
    assert f"{root / 'announcements' / 'nhac-quy.md'}:7: chỗ điền {{han_chot}} không có" in err
