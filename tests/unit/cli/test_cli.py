"""The operator interface as an outside tool drives it: `python -m bot …` in a subprocess."""

import json
import re
import shutil
from pathlib import Path

from tests.conftest import CONTENT, run_cli


def db_env(tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path}/data/bot.sqlite3"}


def test_chat_reads_until_end_of_input_and_answers(tmp_path: Path):
    result = run_cli("chat", stdin="quy vi nguoi ngheo\n", env=db_env(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Vì người nghèo" in result.stdout
    assert (tmp_path / "data" / "bot.sqlite3").exists()


def test_chat_numbers_pick_options(tmp_path: Path):
    result = run_cli("chat", stdin="/start\n1\n", env=db_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "1. Chương trình hỗ trợ" in result.stdout
    assert "Quỹ" in result.stdout.split("Các chương trình")[1]


def test_ask_json_one_question():
    result = run_cli("ask", "nhà đại đoàn kết là gì", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["id"] == "nha-dai-doan-ket"
    assert set(record) >= {"question", "id", "title", "score", "answer"}


def test_ask_batch_from_stdin_declines_with_null_id():
    result = run_cli("ask", "--json", stdin="quy vi nguoi ngheo la gi\nrạp phim tối nay chiếu phim gì\n")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["question"] for r in lines] == ["quy vi nguoi ngheo la gi", "rạp phim tối nay chiếu phim gì"]
    assert lines[0]["id"] == "quy-vi-nguoi-ngheo"
    assert lines[1]["id"] is None and lines[1]["answer"] is None


def test_content_check_passes_on_shipped_content():
    result = run_cli("content", "check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_content_check_names_file_and_line_of_each_problem(tmp_path: Path):
    broken = tmp_path / "content"
    shutil.copytree(CONTENT, broken)
    entry = broken / "knowledge" / "nha-dai-doan-ket.md"
    text = entry.read_text(encoding="utf-8").replace("title:", "titel:", 1)
    entry.write_text(text, encoding="utf-8")
    bad_yaml = broken / "knowledge" / "quy-vi-nguoi-ngheo.md"
    lines = bad_yaml.read_text(encoding="utf-8").splitlines()
    lines[3] = "questions: [unclosed"
    bad_yaml.write_text("\n".join(lines), encoding="utf-8")
    (broken / "knowledge" / "empty.md").write_text("---\nid: empty\ntitle: Trống\n---\n", encoding="utf-8")
    dup = broken / "knowledge" / "dup.md"
    source_question = (broken / "knowledge" / "bhyt-ho-can-ngheo.md").read_text(encoding="utf-8").split("\n  - ")[1]
    source_question = source_question.splitlines()[0]
    dup_text = f"---\nid: dup\ntitle: Bản sao\nquestions:\n  - {source_question}\n---\nNội dung.\n"
    dup.write_text(dup_text, encoding="utf-8")
    (broken / "synonyms.yaml").write_text("abbreviations:\n  bhyt: bảo hiểm y tế\nweird: 3\n", encoding="utf-8")

    result = run_cli("content", "check", env={"CONTENT_DIR": str(broken)})
    assert result.returncode == 1
    out = result.stdout
    assert f"{entry}:2: thiếu title" in out
    assert re.search(rf"{re.escape(str(bad_yaml))}:\d+: YAML không hợp lệ: .*dòng 4", out)
    assert f"{broken / 'knowledge' / 'empty.md'}:4: câu trả lời" in out
    # issue 12: a repeated example question is a warning (the service runs), still with file:line
    assert f"{dup}:5: cảnh báo: câu hỏi mẫu '{source_question}' trùng với bhyt-ho-can-ngheo.md" in out
    assert f"{broken / 'synonyms.yaml'}:3: mục 'weird'" in out

    refused = run_cli("chat", env={"CONTENT_DIR": str(broken)}, stdin="xin chào\n")
    assert refused.returncode == 1
    assert "thiếu title" in refused.stderr and "Traceback" not in refused.stderr


def test_wrong_setting_is_one_sentence_not_a_traceback():
    result = run_cli("chat", env={"TIMEZONE": "Mars/Olympus"}, stdin="")
    assert result.returncode == 2
    assert "TIMEZONE" in result.stderr and "Traceback" not in result.stderr


def test_run_without_token_points_at_chat(tmp_path: Path):
    result = run_cli("run", env=db_env(tmp_path))
    assert result.returncode == 2
    assert "python -m bot chat" in result.stderr


def test_staff_add_is_idempotent(tmp_path: Path):
    first = run_cli("staff", "add", "--channel", "telegram", "--user-id", "777", env=db_env(tmp_path))
    again = run_cli("staff", "add", "--channel", "telegram", "--user-id", "777", env=db_env(tmp_path))
    assert first.returncode == again.returncode == 0
    assert first.stdout != again.stdout
    bad = run_cli("staff", "add", "--channel", "telegram", "--user-id", "abc", env=db_env(tmp_path))
    assert bad.returncode == 2


def test_out_of_scope_topics_are_checked_and_refused_when_broken(tmp_path: Path):
    broken = tmp_path / "content"
    shutil.copytree(CONTENT, broken)
    path = broken / "out_of_scope.yaml"
    kb_question = (broken / "knowledge" / "bhyt-thu-tuc.md").read_text(encoding="utf-8").split("\n  - ")[1]
    kb_question = kb_question.splitlines()[0]
    path.write_text(
        "- id: nha-o-xa-hoi\n  title: Nhà ở xã hội\n  questions:\n    - Mua nhà ở xã hội cần gì?\n"
        "- id: thieu-cau-hoi\n  title: Không có câu hỏi\n"
        f"- id: trung\n  title: Trùng câu hỏi mẫu\n  questions:\n    - {kb_question}\n",
        encoding="utf-8",
    )
    result = run_cli("content", "check", env={"CONTENT_DIR": str(broken)})
    assert result.returncode == 1
    assert f"{path}:5: 'thieu-cau-hoi': questions phải là danh sách" in result.stdout
    assert f"{path}:10: câu hỏi '{kb_question}' cũng là câu hỏi mẫu của mục bhyt-thu-tuc" in result.stdout
    refused = run_cli("chat", env={"CONTENT_DIR": str(broken)}, stdin="xin chào\n")
    assert refused.returncode == 1 and "thieu-cau-hoi" in refused.stderr and "Traceback" not in refused.stderr


def test_known_out_of_scope_question_is_declined_with_where_to_ask(tmp_path: Path):
    result = run_cli("chat", stdin="mua nhà ở xã hội cần điều kiện gì\n", env=db_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "«Nhà ở xã hội» không thuộc phạm vi" in result.stdout and "Sở Xây dựng" in result.stdout
    assert "Ai được hỗ trợ xây" not in result.stdout  # not the nhà Đại đoàn kết answer
