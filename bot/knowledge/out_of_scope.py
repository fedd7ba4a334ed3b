"""Known out-of-scope topics: what residents ask that the Front does not answer, and who does.

`content/out_of_scope.yaml` lists them, each with a title, a few example questions and an
optional `advice` (where to ask instead). They are indexed beside the knowledge entries, so a
near miss ("mua nhà ở xã hội cần điều kiện gì", which shares most words with nhà Đại đoàn kết)
finds its own topic first and is declined, with the advice, instead of answered wrongly.
Staff add to it from `kb gaps`, like example questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from bot.kernel.content import Entry, Problem, item_line, line_of, load_content

FILE_NAME = "out_of_scope.yaml"
ID_PREFIX = "ngoai-pham-vi:"  # entry ids of these topics in the index; never shown to residents


def load(root: Path) -> tuple[list[Entry], list[Problem]]:
    """The topics as index entries (id prefixed, body = advice), and any problems with the file."""
    path = root / FILE_NAME
    if not path.is_file():
        return [], []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        return [], [Problem(path, mark.line + 1 if mark else 1, f"YAML không hợp lệ: {exc}")]
    if data is None:
        return [], []
    if not isinstance(data, list):
        return [], [Problem(path, 1, "cần một danh sách các mục - id:, title:, questions:")]
    topics: list[Entry] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for number, item in enumerate(data, start=1):
        line = item_line(path, number)
        if not isinstance(item, dict):
            problems.append(Problem(path, line, "mỗi mục cần id, title và questions"))
            continue
        topic_id, title = str(item.get("id") or "").strip(), str(item.get("title") or "").strip()
        questions = item.get("questions")
        advice = item.get("advice")
        if not topic_id or not title:
            problems.append(Problem(path, line, "mỗi mục cần id và title"))
            continue
        if topic_id in seen:
            problems.append(Problem(path, line, f"id '{topic_id}' bị trùng"))
            continue
        if (not isinstance(questions, list) or not questions
                or not all(isinstance(q, str) and q.strip() for q in questions)):
            problems.append(Problem(path, line, f"'{topic_id}': questions phải là danh sách câu hỏi, không để trống"))
            continue
        if advice is not None and not (isinstance(advice, str) and advice.strip()):
            problems.append(Problem(path, line, f"'{topic_id}': advice phải là một câu, hoặc bỏ trống hẳn"))
            continue
        seen.add(topic_id)
        topics.append(Entry(id=ID_PREFIX + topic_id, title=title, body=(advice or "").strip(),
                            questions=tuple(q.strip() for q in questions)))
    return topics, problems


def check(root: Path, entries: Sequence[Entry] | None = None) -> list[Problem]:
    """For `content check`: the file's problems, and example questions that an entry (of `entries`,
    read from `root` unless given) also has."""
    topics, problems = load(root)
    if not topics:
        return problems
    if entries is None:
        entries = load_content(root, strict=False).entries
    known = {q.strip().lower(): e.id for e in entries for q in e.questions}
    path = root / FILE_NAME
    for topic in topics:
        for question in topic.questions:
            if question.lower() in known:
                problems.append(Problem(path, line_of(path, question), f"câu hỏi '{question}' cũng là câu hỏi mẫu "
                                        f"của mục {known[question.lower()]}: một câu chỉ thuộc một nơi"))
    return problems


def is_outside(entry: Entry) -> bool:
    return entry.id.startswith(ID_PREFIX)
