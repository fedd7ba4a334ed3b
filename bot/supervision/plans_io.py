"""Supervision plans from text: one CLI call, an import file (YAML or CSV), content/supervision/*.yaml.

Every reader returns the good records and `(line, problem)` for each bad one, so an import keeps
the good rows and names the bad ones by line, and `content check` names file and line.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bot.audiences.localities import Localities
from bot.kernel.content import Problem
from bot.supervision.schedule import (
    REQUIREMENTS_FILE,
    ScheduleError,
    SupervisionConfig,
    check_period,
    offsets_text,
    parse_due,
    parse_offsets,
)

KINDS = {"giam_sat": "giam_sat", "giam sat": "giam_sat", "giám sát": "giam_sat", "gs": "giam_sat",
         "phan_bien": "phan_bien", "phan bien": "phan_bien", "phản biện": "phan_bien", "pb": "phan_bien"}
FIELDS = ("id", "locality", "title", "subject", "kind", "period", "due", "remind", "chats", "status", "result")
MAX_TITLE = 300


@dataclass(frozen=True)
class PlanInput:
    locality: str
    title: str
    due_at: float
    remind: str
    kind: str = "giam_sat"
    subject: str | None = None
    period: str | None = None  # None: from the due date
    chats: tuple[str, ...] | None = None  # "channel:chat_id"; None: the locality's groups
    key: str | None = None
    status: str = "planned"
    result: str | None = None
    line: int = 0

    def chats_json(self) -> str | None:
        return json.dumps(list(self.chats)) if self.chats else None


def build(raw: dict[str, Any], tree: Localities, config: SupervisionConfig, tz: ZoneInfo, *,
          now: float | None, line: int = 0) -> PlanInput:
    """One plan from loose values (strings from a CLI or a file); ScheduleError says what is wrong.

    `now`: refuse a due date before it (None: any date, for content files that keep history).
    """
    values = {k: ("" if v is None else str(v).strip()) for k, v in raw.items()}
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ScheduleError(f"cột/khóa không được hỗ trợ: {', '.join(unknown)} (dùng: {', '.join(FIELDS)})")
    locality_text = values.get("locality", "")
    if not locality_text:
        raise ScheduleError("thiếu địa bàn (locality)")
    place = tree.lookup(locality_text)
    if place is None:
        close = tree.suggest(locality_text)
        hint = f"; có phải: {', '.join(f'{i.name} ({i.code})' for i in close)}?" if close else ""
        raise ScheduleError(f"không có địa bàn '{locality_text[:40]}'{hint}")
    title = values.get("title", "")
    if not title:
        raise ScheduleError("thiếu tên kế hoạch (title)")
    if len(title) > MAX_TITLE:
        raise ScheduleError(f"tên kế hoạch dài quá {MAX_TITLE} ký tự")
    if not values.get("due"):
        raise ScheduleError("thiếu thời hạn (due)")
    due = parse_due(values["due"], tz)
    status = values.get("status") or "planned"
    if status not in ("planned", "done", "cancelled"):
        raise ScheduleError(f"trạng thái '{status}' không hợp lệ (planned, done, cancelled)")
    if now is not None and due <= now and status == "planned":
        from bot.supervision.schedule import local_text

        raise ScheduleError(f"thời hạn {local_text(due, tz)} đã qua")
    remind = offsets_text(parse_offsets(values.get("remind") or config.remind))
    kind_text = (values.get("kind") or "giam_sat").lower()
    kind = KINDS.get(kind_text)
    if kind is None:
        raise ScheduleError(f"loại '{kind_text}' không hợp lệ: giam_sat (giám sát) hoặc phan_bien (phản biện)")
    period = check_period(values["period"]) if values.get("period") else None
    chats: tuple[str, ...] | None = None
    if values.get("chats"):
        chats = tuple(c.strip() for c in values["chats"].replace(";", ",").split(",") if c.strip())
        for chat in chats:
            channel, _, chat_id = chat.partition(":")
            if channel not in ("telegram", "zalo") or not chat_id:
                raise ScheduleError(f"nhóm '{chat}' không hợp lệ: dùng kênh:mã_nhóm, ví dụ telegram:-1001234")
    key = values.get("id") or None
    return PlanInput(place.code, title, due, remind, kind, values.get("subject") or None, period, chats, key,
                     status, values.get("result") or None, line)


# ---------------------------------------------------------------------- import files


def parse_file(path: Path, tree: Localities, config: SupervisionConfig, tz: ZoneInfo,
               now: float | None) -> tuple[list[PlanInput], list[tuple[int, str]]]:
    """A YAML (list of mappings, or `plans:` list) or CSV (header row) file of plans."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [(0, f"không đọc được tệp: {exc}")]
    if path.suffix.lower() in (".yaml", ".yml"):
        return parse_yaml(text, tree, config, tz, now)
    return parse_csv(text, tree, config, tz, now)


def parse_csv(text: str, tree: Localities, config: SupervisionConfig, tz: ZoneInfo,
              now: float | None) -> tuple[list[PlanInput], list[tuple[int, str]]]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    names = [h.strip().lower() for h in header or []]
    missing = [n for n in ("locality", "title", "due") if n not in names]
    if not header or missing:
        return [], [(1, "dòng tiêu đề phải có các cột locality,title,due (thêm được: remind,kind,subject,period,"
                        "chats,id)")]
    unknown = [n for n in names if n not in FIELDS]
    if unknown:
        return [], [(1, f"cột không được hỗ trợ: {', '.join(unknown)}")]
    records: list[PlanInput] = []
    problems: list[tuple[int, str]] = []
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(names):
            problems.append((line, f"thừa cột: dòng tiêu đề có {len(names)} cột"))
            continue
        raw = dict(zip(names, row, strict=False))
        try:
            records.append(build(raw, tree, config, tz, now=now, line=line))
        except ScheduleError as exc:
            problems.append((line, str(exc)))
    return _dedupe(records, problems)


def parse_yaml(text: str, tree: Localities, config: SupervisionConfig, tz: ZoneInfo,
               now: float | None) -> tuple[list[PlanInput], list[tuple[int, str]]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return [], [((mark.line + 1) if mark else 1, f"YAML không hợp lệ: {getattr(exc, 'problem', exc)}")]
    if node is None:
        return [], []
    if isinstance(node, yaml.MappingNode):
        inner = next((v for k, v in node.value if k.value == "plans"), None)
        if inner is None:
            return [], [(node.start_mark.line + 1, "cần một danh sách kế hoạch (plans:)")]
        node = inner
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        return [], []
    if not isinstance(node, yaml.SequenceNode):
        return [], [(node.start_mark.line + 1, "cần một danh sách các kế hoạch - locality:, title:, due:")]
    records: list[PlanInput] = []
    problems: list[tuple[int, str]] = []
    for item in node.value:
        line = item.start_mark.line + 1
        if not isinstance(item, yaml.MappingNode):
            problems.append((line, "mỗi kế hoạch phải có dạng locality:, title:, due:"))
            continue
        raw: dict[str, Any] = {}
        for k, v in item.value:
            if isinstance(v, yaml.SequenceNode):  # remind: [14d, 7d], chats: [...]
                raw[str(k.value)] = ",".join(str(x.value) for x in v.value if isinstance(x, yaml.ScalarNode))
            elif isinstance(v, yaml.ScalarNode):
                raw[str(k.value)] = None if v.tag.endswith(":null") else v.value
            else:
                problems.append((v.start_mark.line + 1, f"'{k.value}' phải là một giá trị đơn"))
                raw = {}
                break
        if not raw:
            continue
        try:
            records.append(build(raw, tree, config, tz, now=now, line=line))
        except ScheduleError as exc:
            problems.append((line, str(exc)))
    return _dedupe(records, problems)


def _dedupe(records: list[PlanInput], problems: list[tuple[int, str]]) -> tuple[list[PlanInput],
                                                                                 list[tuple[int, str]]]:
    seen: dict[Any, int] = {}
    kept: list[PlanInput] = []
    for r in records:
        ident = r.key or (r.locality, r.title, r.due_at)
        if ident in seen:
            problems.append((r.line, f"trùng với kế hoạch ở dòng {seen[ident]}"))
            continue
        seen[ident] = r.line
        kept.append(r)
    problems.sort()
    return kept, problems


# ---------------------------------------------------------------------- content/supervision/*.yaml


def content_files(root: Path) -> list[Path]:
    folder = root / "supervision"
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.glob("*.yaml")) if p.name != REQUIREMENTS_FILE]


def load_content_plans(root: Path, tree: Localities, config: SupervisionConfig,
                       tz: ZoneInfo) -> tuple[list[PlanInput], list[Problem]]:
    """Plans shipped in content/ (each needs an `id`, unique across files), with their problems."""
    plans: list[PlanInput] = []
    problems: list[Problem] = []
    seen: dict[str, Path] = {}
    for path in content_files(root):
        records, bad = parse_file(path, tree, config, tz, now=None)
        problems += [Problem(path, line, message) for line, message in bad]
        for r in records:
            if not r.key:
                problems.append(Problem(path, r.line, "kế hoạch trong content/ cần có id (mã cố định)"))
            elif r.key in seen:
                problems.append(Problem(path, r.line, f"id '{r.key}' trùng với kế hoạch trong {seen[r.key].name}"))
            else:
                seen[r.key] = path
                plans.append(r)
    return plans, problems


def check(root: Path) -> list[Problem]:
    """`content check` for content/supervision/ (registered in bot.app.content_check)."""
    from bot.audiences.localities import load_localities
    from bot.supervision.schedule import load_config

    config, problems = load_config(root)
    tree, _ = load_localities(root)
    unknown = [code for code in config.localities if code not in tree]
    path = root / "supervision" / REQUIREMENTS_FILE
    problems += [Problem(path, 1, f"localities: không có địa bàn '{code}'") for code in unknown]
    _, plan_problems = load_content_plans(root, tree, config, ZoneInfo("Asia/Ho_Chi_Minh"))
    return problems + plan_problems
