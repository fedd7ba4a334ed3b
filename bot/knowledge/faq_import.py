"""`kb import FILE`: an FAQ spreadsheet staff already keep (CSV or XLSX) into content/knowledge/.

Columns are found by their header, with or without marks: a question column ("question",
"câu hỏi"; several are allowed, "câu hỏi 2"…), an answer column ("answer", "câu trả lời",
"trả lời"), and optional "title"/"tiêu đề", "tags"/"chủ đề", "source"/"nguồn". Rows with the
same answer become one entry with several example questions. An existing entry is never
overwritten without `replace`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import yaml

from bot.kernel.vietnamese import fold
from bot.knowledge.gaps import slug

_COLUMNS = {
    "question": ("question", "questions", "cau hoi", "hoi"),
    "answer": ("answer", "cau tra loi", "tra loi", "noi dung"),
    "title": ("title", "tieu de"),
    "tags": ("tags", "tag", "chu de"),
    "source": ("source", "nguon", "can cu"),
}


class FaqError(Exception):
    """The file cannot be read as an FAQ table (one sentence for the operator)."""


@dataclass
class Draft:
    id: str
    title: str
    answer: str
    questions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    source: str = ""
    rows: list[int] = field(default_factory=list)


@dataclass
class Report:
    written: list[tuple[Path, Draft]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (where, why)


def read_table(path: Path) -> list[list[str]]:
    """The sheet's rows as text cells: CSV (UTF-8, with or without BOM; , or ;) or the first XLSX sheet."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".xlsx":
            return _read_xlsx(path)
        if suffix in (".csv", ".txt"):
            text = path.read_text(encoding="utf-8-sig")
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
            return [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text), dialect)]
    except UnicodeDecodeError as exc:
        raise FaqError(f"{path}: không phải văn bản UTF-8 (lưu lại CSV dạng UTF-8)") from exc
    except csv.Error as exc:
        raise FaqError(f"{path}: không đọc được CSV ({exc})") from exc
    except OSError as exc:
        raise FaqError(f"{path}: không mở được tệp ({exc.strerror or exc})") from exc
    raise FaqError(f"{path}: chỉ nhận tệp .csv hoặc .xlsx")


def _read_xlsx(path: Path) -> list[list[str]]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise FaqError(f"{path}: không phải tệp Excel .xlsx hợp lệ") from exc
    try:
        sheet = book.worksheets[0]
        return [["" if v is None else str(v).strip() for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()


def _column_kind(header: str) -> str | None:
    name = " ".join(fold(header).replace("_", " ").split()).rstrip("0123456789 ")
    for kind, names in _COLUMNS.items():
        if name in names:
            return kind
    return None


def plan(rows: list[list[str]], where: str) -> tuple[list[Draft], list[tuple[str, str]]]:
    """Entries to write (rows with the same answer joined) and skipped rows, with the reason."""
    if not rows:
        raise FaqError(f"{where}: tệp trống")
    kinds = [_column_kind(h) for h in rows[0]]
    if "question" not in kinds or "answer" not in kinds:
        raise FaqError(f"{where}: dòng đầu cần cột câu hỏi (question / câu hỏi) và câu trả lời (answer / câu trả lời)")
    drafts: dict[str, Draft] = {}
    skipped: list[tuple[str, str]] = []
    for number, row in enumerate(rows[1:], start=2):
        cells: dict[str, list[str]] = {}
        for kind, value in zip(kinds, row, strict=False):
            if kind and value:
                cells.setdefault(kind, []).append(value)
        if not any(row):
            continue
        questions, answer = cells.get("question", []), "\n\n".join(cells.get("answer", []))
        if not answer:
            skipped.append((f"{where}:{number}", "không có câu trả lời"))
            continue
        title = (cells.get("title") or questions or [""])[0]
        if not title:
            skipped.append((f"{where}:{number}", "không có câu hỏi hay tiêu đề"))
            continue
        key = " ".join(answer.split())
        draft = drafts.get(key)
        if draft is None:
            draft = drafts[key] = Draft(id="", title=" ".join(title.split()), answer=answer.strip())
        for question in questions:
            question = " ".join(question.split())
            if question not in draft.questions:
                draft.questions.append(question)
        for tags in cells.get("tags", []):
            for tag in (t.strip() for t in tags.replace(";", ",").split(",")):
                if tag and tag not in draft.tags:
                    draft.tags.append(tag)
        draft.source = draft.source or (cells.get("source") or [""])[0]
        draft.rows.append(number)
    used: set[str] = set()
    for draft in drafts.values():
        base = slug(draft.title) or f"muc-{draft.rows[0]}"
        draft.id, n = base, 2
        while draft.id in used:
            draft.id, n = f"{base}-{n}", n + 1
        used.add(draft.id)
    return list(drafts.values()), skipped


def entry_text(draft: Draft, today: date) -> str:
    meta: dict[str, object] = {"id": draft.id, "title": draft.title}
    questions = [q for q in draft.questions if q != draft.title] or draft.questions
    if questions:
        meta["questions"] = questions
    if draft.tags:
        meta["tags"] = draft.tags
    if draft.source:
        meta["source"] = draft.source
    meta["updated"] = today.isoformat()
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=1000).strip()
    return f"---\n{front}\n---\n{draft.answer}\n"


def import_file(path: Path, folder: Path, *, replace: bool = False, today: date | None = None) -> Report:
    """Read `path`, write one content/knowledge/ID.md per entry; blocking (run it in a thread)."""
    drafts, skipped = plan(read_table(path), str(path))
    report = Report(skipped=skipped)
    folder.mkdir(parents=True, exist_ok=True)
    for draft in drafts:
        target = folder / f"{draft.id}.md"
        if target.exists() and not replace:
            report.skipped.append((f"{path}:{draft.rows[0]}", f"{target.name} đã có (dùng --replace để ghi đè)"))
            continue
        target.write_text(entry_text(draft, today or date.today()), encoding="utf-8")
        report.written.append((target, draft))
    return report
