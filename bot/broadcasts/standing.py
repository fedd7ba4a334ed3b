"""content/schedules.yaml: the committee's standing series, checked by `content check` (file:line)
and loaded at start (`SeriesStore.sync_standing` keeps their history across edits).

Each item: `id` (kept: it ties the file to the series' firings), `repeat` (see `recurrence`),
`kind` (`broadcast`, the default; `summary`: the quarterly summary to each locality's groups and the
staff chat; `digest`: knowledge gaps and open tickets to the staff chat), and for a broadcast its
`text` (placeholders allowed, see `templates`) or `file` (a piece in content/announcements/), and
optionally `title`, `audience` (groups, residents, all), `locality`, `channel`, `enabled` (true by
default; `false`: checked like the others but not run, and a series it ran before ends — the shipped
file has every item off, so a fresh deployment sends nothing by itself).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bot.audiences.chats import CHANNELS
from bot.audiences.localities import load_localities
from bot.broadcasts import templates
from bot.broadcasts.recurrence import RepeatError, parse_repeat
from bot.broadcasts.series import KINDS, Standing
from bot.broadcasts.store import BroadcastError, parse_audience, read_announcement
from bot.kernel.content import Problem

FILE_NAME = "schedules.yaml"
_KEYS = {"id", "kind", "repeat", "text", "file", "title", "audience", "locality", "channel", "enabled"}


def load_standing(root: Path, tz: ZoneInfo) -> tuple[list[Standing], list[Problem]]:
    """The standing series of `root/schedules.yaml` (none when the file is absent), and every problem."""
    path = root / FILE_NAME
    if not path.is_file():
        return [], []
    try:
        raw = path.read_text(encoding="utf-8").lstrip("\ufeff")
        node = yaml.compose(raw)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", 0) + 1
        return [], [Problem(path, line, f"không đọc được tệp lịch: {exc}")]
    if node is None:
        return [], []
    if not isinstance(node, yaml.SequenceNode):
        return [], [Problem(path, node.start_mark.line + 1, "tệp lịch phải là một danh sách các mục \"- id: …\"")]
    tree, _ = load_localities(root)
    found: list[Standing] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for item in node.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.MappingNode):
            problems.append(Problem(path, line, "mỗi mục phải có dạng id: …, repeat: …"))
            continue
        fields: dict[str, tuple[Any, yaml.Node]] = {}
        for key, value in item.value:
            fields[str(key.value)] = (yaml.safe_load(yaml.serialize(value)), value)
        mine = _check(path, line, fields, tz, tree, root, problems, seen)
        if mine is not None:
            found.append(mine)
    return found, problems


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _check(path: Path, line: int, fields: dict[str, tuple[Any, yaml.Node]], tz: ZoneInfo, tree: Any, root: Path,
           problems: list[Problem], seen: dict[str, int]) -> Standing | None:
    before = len(problems)

    def value(key: str) -> str | None:
        got = fields.get(key)
        return None if got is None or got[0] in (None, "") else str(got[0]).strip()

    def at(key: str) -> int:
        return _line(fields[key][1]) if key in fields else line

    for key in sorted(set(fields) - _KEYS):
        problems.append(Problem(path, at(key), f"khóa '{key}' không có (dùng: {', '.join(sorted(_KEYS))})"))
    key, kind, repeat = value("id"), value("kind") or "broadcast", value("repeat")
    if key is None:
        problems.append(Problem(path, line, "thiếu id"))
    elif key in seen:
        problems.append(Problem(path, at("id"), f"id '{key}' trùng với mục ở dòng {seen[key]}"))
    else:
        seen[key] = at("id")
    if kind not in KINDS:
        problems.append(Problem(path, at("kind"), f"kind '{kind}' không có (chọn: {', '.join(KINDS)})"))
    if repeat is None:
        problems.append(Problem(path, line, "thiếu repeat (lịch lặp, ví dụ \"0 8 * * 1\" hoặc @quarterly)"))
    else:
        try:
            parse_repeat(repeat, tz)
        except RepeatError as exc:
            problems.append(Problem(path, at("repeat"), str(exc)))
    text = ""
    if kind == "broadcast":
        text = _text(path, fields, value, at, root, problems) or ""
    audience = value("audience") or "groups"
    try:
        audience = parse_audience(audience)
    except BroadcastError as exc:
        problems.append(Problem(path, at("audience"), str(exc)))
    locality, channel = value("locality"), value("channel")
    if locality is not None and len(tree) and tree.get(locality) is None:
        problems.append(Problem(path, at("locality"), f"không có địa bàn '{locality}'"))
    if channel is not None and channel not in CHANNELS:
        problems.append(Problem(path, at("channel"), f"kênh '{channel}' không có (chọn: {', '.join(CHANNELS)})"))
    enabled = fields["enabled"][0] if "enabled" in fields else True
    if not isinstance(enabled, bool):
        problems.append(Problem(path, at("enabled"), f"enabled phải là true hoặc false (đang là '{enabled}')"))
    if len(problems) > before or key is None or repeat is None:
        return None
    return Standing(key, kind, repeat, text, value("title"), audience, locality, channel, enabled=enabled)


def _text(path: Path, fields: dict[str, tuple[Any, yaml.Node]], value: Any, at: Any, root: Path,
          problems: list[Problem]) -> str | None:
    """The text of a broadcast item (its own, or its `file`'s), its placeholders checked with their line."""
    text, file = value("text"), value("file")
    if (text is None) == (file is None):
        problems.append(Problem(path, at("text") if text else at("id"), "cần đúng một trong hai: text hoặc file"))
        return None
    if file is not None:
        piece_path = root / file
        try:
            text = read_announcement(piece_path).text
        except BroadcastError as exc:
            problems.append(Problem(path, at("file"), str(exc)))
            return None
        for number, name in templates.unknown(text or ""):
            problems.append(Problem(piece_path, _body_line(piece_path, number), _unknown(name)))
        return text
    raw, node = fields["text"]
    first = _line(node) + (1 if getattr(node, "style", None) in ("|", ">") else 0)
    for number, name in templates.unknown(str(raw)):
        problems.append(Problem(path, first + number - 1, _unknown(name)))
    return text


def _unknown(name: str) -> str:
    return (f"chỗ điền {{{name}}} không có (dùng: " + ", ".join(f"{{{n}}}" for n in templates.PLACEHOLDERS) + ")")


def _body_line(path: Path, number: int) -> int:
    """The file line of the body's `number`-th line (after the front matter, if any)."""
    lines = path.read_text(encoding="utf-8").lstrip("\ufeff").splitlines()
    start = 0
    if lines and lines[0].strip() == "---":
        start = next((i + 1 for i in range(1, len(lines)) if lines[i].strip() == "---"), 0)
    body = "\n".join(lines[start:])
    skipped = len(body) - len(body.lstrip("\n"))  # read_announcement strips blank lines before the text
    return start + skipped + number


def check(root: Path) -> list[Problem]:
    """`content check` for content/schedules.yaml (the zone does not change what is valid)."""
    return load_standing(root, ZoneInfo("Asia/Ho_Chi_Minh"))[1]
