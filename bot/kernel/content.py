"""Read and validate `content/`: what staff edit, in git.

Every problem is reported with its file and line, so `content check` and the service's
refusal to start say exactly where to look.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from bot.kernel import messages as messages_module
from bot.kernel.vietnamese import fold, normalize, syllables

try:  # libyaml is ~10x faster, which matters for thousands of imported entries
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader

_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
# An answer longer than this is an error in `content check` (and stops start-up): about three Zalo
# messages (2,000 characters each) or two Telegram ones; the bot shows long answers in pages anyway.
MAX_ANSWER_CHARS = 6000


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


# Warnings (see `Content.warnings`): the service runs, `content check` reports them, and
# `content check --strict` fails on them too.
BODY_BUDGET = 6000  # characters of an answer body: longer ones are hard to read in a chat
STALE_DAYS = 730  # an `updated` date older than this is worth a look


class ContentError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class Entry:
    id: str
    title: str
    body: str
    questions: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    source: str = ""
    updated: str = ""
    path: Path | None = None
    draft: bool = False  # `draft: true` in the front matter: staff have not reviewed it yet


@dataclass(frozen=True)
class Topic:
    id: str
    title: str


@dataclass
class Content:
    root: Path
    entries: list[Entry] = field(default_factory=list)
    drafts: list[Entry] = field(default_factory=list)  # valid `draft: true` entries: checked, not served
    expansions: dict[str, str] = field(default_factory=dict)
    regional: dict[str, str] = field(default_factory=dict)  # words matched only as written, marks and all
    organization: dict[str, Any] = field(default_factory=dict)
    topics: list[Topic] = field(default_factory=list)
    messages: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)  # errors: the service refuses to start
    warnings: list[Problem] = field(default_factory=list)  # reported, logged once; the service runs

    def entry(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)

    def entries_for_topic(self, topic_id: str) -> list[Entry]:
        return [e for e in self.entries if topic_id in e.tags]

    def __post_init__(self) -> None:
        self._by_id: dict[str, Entry] = {}

    def index_entries(self) -> None:
        self._by_id = {e.id: e for e in self.entries}


def load_content(root: Path, *, strict: bool = True) -> Content:
    """Load everything under `root`. With strict, any problem raises ContentError."""
    content = Content(root=root)
    if not root.is_dir():
        content.problems.append(Problem(root, 0, "không tìm thấy thư mục nội dung (CONTENT_DIR)"))
    else:
        _load_knowledge(content)
        _load_synonyms(content)
        _load_organization(content)
        _load_topics(content)
        _load_messages(content)
    content.index_entries()
    if strict and content.problems:
        raise ContentError(content.problems)
    return content


# ---------------------------------------------------------------- YAML with line numbers


def _read_yaml(path: Path, text: str, content: Content, first_line: int = 1) -> tuple[Any, dict[str, int]]:
    """Parse YAML; on error record a Problem at the right line. Also return each top key's line."""
    try:
        data = yaml.load(text, Loader=_Loader)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        context = getattr(exc, "context_mark", None)
        line = first_line + (mark.line if mark else 0)
        reason = (getattr(exc, "problem", None) or str(exc).splitlines()[0]).strip()
        if context is not None and first_line + context.line != line:
            reason += f" (phần bắt đầu ở dòng {first_line + context.line})"
        content.problems.append(Problem(path, line, f"YAML không hợp lệ: {reason}"))
        return None, {}
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, _value in node.value:
            lines[str(key.value)] = first_line + key.start_mark.line
    return data, lines


def _read_text(path: Path, content: Content) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        content.problems.append(Problem(path, line, "tệp không phải văn bản UTF-8"))
    except OSError as exc:
        content.problems.append(Problem(path, 0, f"không đọc được tệp: {exc.strerror}"))
    return None


# ---------------------------------------------------------------- knowledge/*.md


def load_entries(folder: Path) -> Content:
    """Only the knowledge entries of a folder of *.md (an imported FAQ), with their problems."""
    content = Content(root=folder)
    _load_knowledge(content, folder)
    content.index_entries()
    return content


def _load_knowledge(content: Content, folder: Path | None = None) -> None:
    folder = folder or content.root / "knowledge"
    files = sorted(folder.glob("*.md")) if folder.is_dir() else []
    if not files:
        content.problems.append(Problem(folder, 0, "không có mục kiến thức nào (knowledge/*.md)"))
    seen_ids: dict[str, Path] = {}
    seen_questions: dict[str, tuple[Path, str]] = {}
    for path in files:
        entry = _read_entry(path, content)
        if entry is None or entry.draft:  # a draft (bot/gaps.py) is validated but not served
            if entry is not None:
                content.drafts.append(entry)
            continue
        if entry.id in seen_ids:
            content.problems.append(
                Problem(path, 2, f"id '{entry.id}' trùng với {seen_ids[entry.id].name}")
            )
            continue
        seen_ids[entry.id] = path
        _check_budget(entry, path, content)
        for question in entry.questions:
            key = fold(question).strip(" ?.!")
            if key in seen_questions and seen_questions[key][0] != path:
                other = seen_questions[key][0].name
                content.warnings.append(
                    Problem(path, line_of(path, question), f"câu hỏi mẫu '{question}' trùng với {other}")
                )
            seen_questions.setdefault(key, (path, question))
        content.entries.append(entry)


def _check_budget(entry: Entry, path: Path, content: Content) -> None:
    """Warnings about an entry that works but deserves a look: too long, or not reviewed for long."""
    if len(entry.body) > BODY_BUDGET:
        content.warnings.append(Problem(path, 1, f"câu trả lời dài {len(entry.body)} ký tự (nên dưới {BODY_BUDGET})"))
    if entry.updated:
        try:
            updated = date.fromisoformat(entry.updated[:10])
        except ValueError:
            content.warnings.append(Problem(path, line_of(path, "updated:"),
                                            f"updated '{entry.updated}' không phải ngày yyyy-mm-dd"))
            return
        if (date.today() - updated).days > STALE_DAYS:
            content.warnings.append(Problem(path, line_of(path, "updated:"),
                                            f"nội dung cập nhật lần cuối {entry.updated}: nên xem lại"))


def line_of(path: Path, needle: str) -> int:
    """The first line of `path` containing `needle` (1 when none does), for problem reports."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            return number
    return 1


def item_line(path: Path, number: int) -> int:
    """The line of the number-th top-level "- " item of a YAML list file, for problem reports."""
    count = 0
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.startswith("-"):
            count += 1
            if count == number:
                return line_no
    return 1


def _line_past(lines: list[str], first: int, limit: int) -> int:
    """The 1-based line of `lines` (the body starting at index `first`) where the body passes `limit`."""
    total = 0
    for index in range(first, len(lines)):
        total += len(lines[index]) + 1
        if total > limit:
            return index + 1
    return len(lines)


def check_entry(path: Path, text: str) -> tuple[Entry | None, list[Problem]]:
    """One knowledge file's text, checked as `content check` checks each file (before it is written)."""
    content = Content(root=path.parent)
    entry = _read_entry(path, content, text)
    return entry, content.problems


def _read_entry(path: Path, content: Content, text: str | None = None) -> Entry | None:
    text = _read_text(path, content) if text is None else text
    if text is None:
        return None
    text = text.lstrip("\ufeff")
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        content.problems.append(Problem(path, 1, "thiếu phần đầu YAML (dòng đầu phải là ---)"))
        return None
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    except StopIteration:
        content.problems.append(Problem(path, 1, "phần đầu YAML không có dòng --- đóng lại"))
        return None
    meta, key_lines = _read_yaml(path, "\n".join(lines[1:end]), content, first_line=2)
    if meta is None and key_lines == {} and any(p.path == path for p in content.problems):
        return None
    if not isinstance(meta, dict):
        content.problems.append(Problem(path, 2, "phần đầu YAML phải là các cặp khóa: giá trị"))
        return None
    body = "\n".join(lines[end + 1 :]).strip()
    problems_before = len(content.problems)

    def at(key: str) -> int:
        return key_lines.get(key, 2)

    entry_id = meta.get("id", path.stem)
    if not isinstance(entry_id, str) or not _ID.match(entry_id):
        content.problems.append(
            Problem(path, at("id"), f"id {entry_id!r} không hợp lệ (chữ thường không dấu, số, - hoặc _)")
        )
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        content.problems.append(Problem(path, at("title"), "thiếu title (tiêu đề)"))
    if not body:
        content.problems.append(Problem(path, end + 1, "câu trả lời (phần sau ---) đang trống"))
    elif len(body) > MAX_ANSWER_CHARS:
        size, limit = (f"{n:,}".replace(",", ".") for n in (len(body), MAX_ANSWER_CHARS))
        content.problems.append(Problem(path, _line_past(lines, end + 1, MAX_ANSWER_CHARS), (
            f"câu trả lời dài {size} ký tự, quá giới hạn {limit} ký tự (khoảng ba tin nhắn Zalo); dòng này"
            " vượt giới hạn: tách thành nhiều mục kiến thức")))
    lists = {}
    for key in ("questions", "keywords", "tags"):
        value = meta.get(key, [])
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            content.problems.append(Problem(path, at(key), f"{key} phải là một danh sách các câu/chuỗi"))
            value = []
        cleaned = [normalize_text(str(v)) for v in value]
        if any(not v for v in cleaned):
            content.problems.append(Problem(path, at(key), f"{key} có một mục trống"))
        lists[key] = tuple(v for v in cleaned if v)
    if len(content.problems) > problems_before:
        return None
    return Entry(
        id=entry_id,
        title=normalize_text(title),
        body=body,
        questions=lists["questions"],
        keywords=lists["keywords"],
        tags=lists["tags"],
        source=str(meta.get("source") or ""),
        updated=str(meta.get("updated") or ""),
        path=path,
        draft=meta.get("draft") is True,
    )


def normalize_text(text: str) -> str:
    """NFC and trimmed, case kept (for display)."""
    import unicodedata

    return unicodedata.normalize("NFC", text).strip()


# ---------------------------------------------------------------- other files


def _load_mapping_file(content: Content, name: str, required: bool = True) -> tuple[Any, dict[str, int], Path]:
    path = content.root / name
    if not path.is_file():
        if required:
            content.problems.append(Problem(path, 0, "thiếu tệp"))
        return None, {}, path
    text = _read_text(path, content)
    if text is None:
        return None, {}, path
    data, lines = _read_yaml(path, text, content)
    return data, lines, path


def _load_synonyms(content: Content) -> None:
    data, lines, path = _load_mapping_file(content, "synonyms.yaml")
    if data is None:
        return
    if not isinstance(data, dict):
        content.problems.append(Problem(path, 1, "synonyms.yaml phải có các mục abbreviations:, teencode:, regional:"))
        return
    seen_keys: dict[str, tuple[int, str]] = {}  # folded key -> its line and value
    for section, table in data.items():
        line = lines.get(str(section), 1)
        if section not in ("abbreviations", "teencode", "regional"):
            content.problems.append(
                Problem(path, line, f"mục '{section}' không được hỗ trợ (chỉ abbreviations, teencode, regional)")
            )
            continue
        if not isinstance(table, dict):
            content.problems.append(Problem(path, line, f"'{section}' phải là các cặp viết_tắt: cụm đầy đủ"))
            continue
        for key, value in table.items():
            if not isinstance(value, str) or not value.strip() or not str(key).strip():
                content.problems.append(
                    Problem(path, line_of(path, f"{key}:"), f"'{key}': cần một cụm từ đầy đủ, không để trống")
                )
                continue
            if section == "regional":  # "răng" means "sao" only typed so: "rang" is another word
                if len(syllables(str(key))) != 1 or fold(str(key)) == normalize(str(key)).replace("đ", "d"):
                    content.problems.append(Problem(path, line_of(path, f"{key}:"),
                                                    f"'{key}': regional là một chữ viết có dấu (ví dụ răng: sao)"))
                    continue
                content.regional[normalize(str(key))] = normalize(value)
                continue
            # "đđk" and "ddk" are one key once folded: two different meanings, the later one wins
            folded = " ".join(fold(w) for w in syllables(str(key)))
            earlier = seen_keys.get(folded)
            if earlier is not None and normalize(earlier[1]) != normalize(value):
                content.warnings.append(Problem(path, line_of(path, f"{key}:"), f"'{key}' đã có ở dòng {earlier[0]} "
                                                f"với nghĩa khác ('{earlier[1]}'): trợ lý dùng dòng sau"))
            seen_keys[folded] = (line_of(path, f"{key}:"), value)
            content.expansions[normalize(str(key))] = normalize(value)


def _load_organization(content: Content) -> None:
    data, lines, path = _load_mapping_file(content, "organization.yaml")
    if data is None:
        return
    if not isinstance(data, dict):
        content.problems.append(Problem(path, 1, "organization.yaml phải là các cặp khóa: giá trị"))
        return
    for key in ("name", "address", "phone"):
        if not str(data.get(key) or "").strip():
            content.problems.append(Problem(path, lines.get(key, 1), f"thiếu '{key}'"))
    content.organization = {str(k): v for k, v in data.items()}


def _load_topics(content: Content) -> None:
    data, _lines, path = _load_mapping_file(content, "topics.yaml")
    if data is None:
        return
    if not isinstance(data, list):
        content.problems.append(Problem(path, 1, "topics.yaml phải là danh sách các mục - id:, title:"))
        return
    for item in data:
        if not isinstance(item, dict) or not item.get("id") or not item.get("title"):
            content.problems.append(Problem(path, line_of(path, str(item)[:20]), "mỗi chủ đề cần id và title"))
            continue
        content.topics.append(Topic(str(item["id"]), normalize_text(str(item["title"]))))
    for topic in content.topics:
        if not any(topic.id in e.tags for e in content.entries):
            content.warnings.append(
                Problem(path, line_of(path, topic.id), f"chủ đề '{topic.id}' chưa có mục kiến thức nào")
            )


def _load_messages(content: Content) -> None:
    data, lines, path = _load_mapping_file(content, "messages.yaml")
    if data is None:
        return
    if not isinstance(data, dict):
        content.problems.append(Problem(path, 1, "messages.yaml phải là các cặp khóa: câu"))
        return
    for key in messages_module.REQUIRED:
        if not isinstance(data.get(key), str) or not data[key].strip():
            content.problems.append(Problem(path, lines.get(key, 1), f"thiếu câu '{key}'"))
    for key, value in data.items():
        if isinstance(value, str):
            problem = messages_module.check_placeholders(str(key), value)
            if problem:
                content.problems.append(Problem(path, lines.get(str(key), 1), problem))
            content.messages[str(key)] = value.strip()
