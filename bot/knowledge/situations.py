"""The situation lexicon: what residents say happened to them, mapped to the entry that helps.

Residents rarely name a program: they write "trận gió thổi bay mái tôn nhà tôi", not "cứu trợ
thiên tai". `content/situations.yaml` lists, for an entry (or a known out-of-scope topic), the
words of the situations it covers:

    - entry: cuu-tro-thien-tai
      words: [bão, lũ lụt, ngập nhà, sạt lở, tốc mái, sập nhà]

The index adds these words to the entry as one more field (see `KnowledgeIndex`): they rank
it and count as explained in its confidence, as its keywords do, but weigh less. Staff extend
it as data; `content check` names the file and line of each problem.

`also:` names sibling entries that answer other questions about the same situations ("đăng ký
ở đâu", "được bao nhiêu"): they get the words too, at half weight, so "nhà dột nát, đăng ký xin
hỗ trợ ra sao" finds the registration entry while "nhà dột nát" alone still finds the first.

`common:` lists narrative words ("tối qua", "mấy tháng nay") that carry no topic: like
politeness words, they count little when judging how much of a question an entry explains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.kernel.content import Problem, item_line, line_of, load_content
from bot.knowledge import out_of_scope

FILE_NAME = "situations.yaml"


@dataclass(frozen=True)
class Lexicon:
    by_entry: dict[str, tuple[str, ...]] = field(default_factory=dict)  # entry id -> situation words
    common: tuple[str, ...] = ()  # narrative words that count little in coverage
    lines: dict[str, int] = field(default_factory=dict)  # entry id -> line of its group, for reports
    related: dict[str, tuple[str, ...]] = field(default_factory=dict)  # sibling id -> words of `also:` groups


def load(root: Path) -> tuple[Lexicon, list[Problem]]:
    """The lexicon (empty without the file) and the file's problems (errors)."""
    path = root / FILE_NAME
    if not path.is_file():
        return Lexicon(), []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        return Lexicon(), [Problem(path, mark.line + 1 if mark else 1, f"YAML không hợp lệ: {exc}")]
    if data is None:
        return Lexicon(), []
    if not isinstance(data, dict) or not isinstance(data.get("situations", []), list):
        return Lexicon(), [Problem(path, 1, "cần 'situations:' (danh sách - entry:, words:) và 'common:' (tùy chọn)")]
    problems: list[Problem] = []
    common = data.get("common") or []
    if not isinstance(common, list) or not all(isinstance(w, str) and w.strip() for w in common):
        problems.append(Problem(path, line_of(path, "common:"), "common: phải là danh sách từ, không để trống"))
        common = []
    by_entry: dict[str, list[str]] = {}
    lines: dict[str, int] = {}
    related: dict[str, list[str]] = {}
    for number, item in enumerate(data.get("situations") or [], start=1):
        line = _situation_line(path, number)
        if not isinstance(item, dict) or not str(item.get("entry") or "").strip():
            problems.append(Problem(path, line, "mỗi mục cần entry: (id mục kiến thức) và words:"))
            continue
        entry_id = str(item["entry"]).strip()
        words = item.get("words")
        if isinstance(words, str):
            words = [w.strip() for w in words.split(",")]
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
            problems.append(Problem(path, line, f"'{entry_id}': words phải là danh sách từ, không có mục trống"))
            continue
        also = item.get("also") or []
        if isinstance(also, str):
            also = [a.strip() for a in also.split(",")]
        if not isinstance(also, list) or not all(isinstance(a, str) and a.strip() for a in also):
            problems.append(Problem(path, line, f"'{entry_id}': also phải là danh sách id mục kiến thức"))
            also = []
        by_entry.setdefault(entry_id, []).extend(w.strip() for w in words)
        lines.setdefault(entry_id, line)
        for sibling in (a.strip() for a in also):
            related.setdefault(sibling, []).extend(w.strip() for w in words)
            lines.setdefault(sibling, line)
    lexicon = Lexicon({k: tuple(v) for k, v in by_entry.items()}, tuple(w.strip() for w in common), lines,
                      {k: tuple(v) for k, v in related.items()})
    return lexicon, problems


def _situation_line(path: Path, number: int) -> int:
    """The line of the number-th "- entry:" item (items are indented under `situations:`)."""
    count = 0
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.lstrip().startswith("- entry:") or line.lstrip() == "-":
            count += 1
            if count == number:
                return line_no
    return item_line(path, number)


def check(root: Path, known_ids: set[str] | None = None) -> list[Problem]:
    """For `content check` and start-up: the file's problems and groups naming no known entry
    (knowledge entries and out-of-scope topics, read from `root` unless given)."""
    lexicon, problems = load(root)
    if known_ids is None:
        topics, _ = out_of_scope.load(root)
        known_ids = {e.id for e in load_content(root, strict=False).entries}
        known_ids |= {t.id.removeprefix(out_of_scope.ID_PREFIX) for t in topics}
    path = root / FILE_NAME
    for entry_id, line in lexicon.lines.items():
        if entry_id not in known_ids:
            problems.append(Problem(path, line, f"không có mục kiến thức hay chủ đề ngoài phạm vi '{entry_id}'"))
    return problems
