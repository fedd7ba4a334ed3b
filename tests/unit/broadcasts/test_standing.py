"""content/schedules.yaml: checked by `content check` with file:line, loaded as standing series."""

import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.broadcasts.standing import load_standing
from tests.conftest import CONTENT, run_cli

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def test_the_shipped_schedules_are_valid():
    standing, problems = load_standing(CONTENT, TZ)
    assert problems == []
    assert {s.kind for s in standing} == {"summary", "broadcast", "digest"}


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
