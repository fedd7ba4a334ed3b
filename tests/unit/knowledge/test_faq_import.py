"""`kb import FILE`: a staff FAQ spreadsheet (CSV, XLSX) into content/knowledge/, and `ask --explain`."""

from __future__ import annotations

import shutil
from pathlib import Path

from openpyxl import Workbook

from bot.kernel.content import load_content
from tests.conftest import CONTENT, run_cli

ROWS = [
    ["Câu hỏi", "Câu hỏi 2", "Câu trả lời", "Chủ đề", "Nguồn"],
    ["Đổi giờ tiếp dân sang thứ mấy?", "lich tiep dan", "Tiếp dân vào sáng thứ Năm hằng tuần.", "lien-he",
     "Thông báo 12"],
    ["Tiếp công dân hôm nào?", "", "Tiếp dân vào sáng thứ Năm hằng tuần.", "", ""],
    ["Câu hỏi không có trả lời", "", "", "", ""],
    ["Nộp hồ sơ khen thưởng ở đâu?", "", "Nộp tại văn phòng Ủy ban MTTQ xã.", "", ""],
]


def _content(tmp_path: Path) -> Path:
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    return root


def test_csv_import_joins_rows_with_one_answer_and_never_overwrites(tmp_path: Path):
    root = _content(tmp_path)
    sheet = tmp_path / "faq.csv"
    sheet.write_text("\n".join(";".join(f'"{c}"' for c in row) for row in ROWS) + "\n", encoding="utf-8-sig")
    env = {"CONTENT_DIR": str(root)}
    result = run_cli("kb", "import", str(sheet), env=env)
    assert result.returncode == 0, result.stderr
    assert "Đã ghi 2 mục, bỏ qua 1" in result.stdout
    assert f"bỏ qua {sheet}:4: không có câu trả lời" in result.stdout
    content = load_content(root)  # what was written is valid content
    entry = content.entry("doi-gio-tiep-dan-sang-thu-may")
    assert entry is not None and entry.tags == ("lien-he",) and entry.source == "Thông báo 12"
    assert set(entry.questions) == {"lich tiep dan", "Tiếp công dân hôm nào?"}
    assert run_cli("ask", "tiep cong dan hom nao", "--json", env=env).stdout.count(entry.id) == 1

    path = root / "knowledge" / f"{entry.id}.md"
    path.write_text(path.read_text(encoding="utf-8").replace("thứ Năm", "thứ Sáu"), encoding="utf-8")
    again = run_cli("kb", "import", str(sheet), env=env)
    assert "Đã ghi 0 mục, bỏ qua 3" in again.stdout and "--replace" in again.stdout
    assert "thứ Sáu" in path.read_text(encoding="utf-8")
    replaced = run_cli("kb", "import", str(sheet), "--replace", env=env)
    assert "Đã ghi 2 mục" in replaced.stdout and "thứ Năm" in path.read_text(encoding="utf-8")


def test_xlsx_import_and_bad_files_are_one_sentence(tmp_path: Path):
    root = _content(tmp_path)
    book = Workbook()
    for row in ROWS:
        book.active.append(row)
    sheet = tmp_path / "faq.xlsx"
    book.save(sheet)
    env = {"CONTENT_DIR": str(root)}
    result = run_cli("kb", "import", str(sheet), env=env)
    assert result.returncode == 0, result.stderr
    assert (root / "knowledge" / "nop-ho-so-khen-thuong-o-dau.md").is_file()

    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    no_answer = tmp_path / "no-answer.csv"
    no_answer.write_text("question,title\nA?,B\n", encoding="utf-8")
    for bad in (broken, no_answer, tmp_path / "faq.ods"):
        failed = run_cli("kb", "import", str(bad), env=env)
        assert failed.returncode == 1 and str(bad) in failed.stderr and "Traceback" not in failed.stderr


def test_ask_explain_names_candidates_signals_and_the_reason():
    answered = run_cli("ask", "trận gió tối qua thổi bay hết mái tôn nhà tôi", "--explain")
    assert answered.returncode == 0, answered.stderr
    assert "Quyết định: TRẢ LỜI" in answered.stdout and "[cuu-tro-thien-tai]" in answered.stdout
    assert "ngưỡng trả lời" in answered.stdout and "phủ " in answered.stdout
    declined = run_cli("ask", "khu tôi mất điện từ sáng tới giờ", "--explain")
    assert "Quyết định: TỪ CHỐI" in declined.stdout and "ngoài phạm vi" in declined.stdout
