"""A knowledge file (`content/knowledge/*.md`) rewritten with the fewest changed lines, written atomically.

Staff keep `content/` in git, so an edit from the web must diff like an edit by hand: only the front
matter keys whose value changed are rewritten (an unchanged example question keeps its exact line,
comments and key order stay), the body only when it changed, the file's line endings kept. Writes go
to a temporary file in the same folder (not `*.md`, so never loaded half-written), then `os.replace`.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import yaml

_KEY = re.compile(r"^([A-Za-z_][\w-]*)\s*:")
_ITEM = re.compile(r"^(\s*)-\s+(.*)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
Value = str | bool | Sequence[str] | None  # None: the key is removed


def scalar(value: str) -> str:
    """A string as YAML writes it on one line (quoted only when it must be)."""
    if _DATE.match(value):
        return value  # `updated: 2026-11-27` as staff write it (YAML reads a date; str() gives it back)
    dumped = yaml.safe_dump(value, allow_unicode=True, width=1_000_000)
    return dumped.removesuffix("\n").removesuffix("\n...").strip()


def _blocks(front: list[str]) -> list[tuple[str | None, list[str]]]:
    """Front matter lines as (key, its lines); comments and blank lines between keys are keyless."""
    blocks: list[tuple[str | None, list[str]]] = []
    for line in front:
        match = _KEY.match(line)
        if match:
            blocks.append((match.group(1), [line]))
        elif not line.strip() or line.startswith("#") or not blocks or blocks[-1][0] is None:
            blocks.append((None, [line]))
        else:
            blocks[-1][1].append(line)
    return blocks


def _old_items(lines: list[str]) -> dict[str, str]:
    """The lines of a block-style list, by the value each one holds."""
    items: dict[str, str] = {}
    for line in lines[1:]:
        match = _ITEM.match(line)
        if not match:
            continue
        try:
            value = yaml.safe_load(match.group(2))
        except yaml.YAMLError:
            continue
        if isinstance(value, (str, int, float)):
            items.setdefault(str(value).strip(), line)
    return items


def _render(key: str, value: Value, old: list[str] | None) -> list[str]:
    if isinstance(value, bool):
        return [f"{key}: {'true' if value else 'false'}"]
    if isinstance(value, str):
        return [f"{key}: {scalar(value)}"]
    values = [str(v) for v in value or ()]
    flow = old is not None and len(old) == 1 and old[0].split(":", 1)[1].strip().startswith("[")
    if flow or not values:
        return [f"{key}: " + yaml.safe_dump(values, allow_unicode=True, default_flow_style=True,
                                            width=1_000_000).strip()]
    kept = _old_items(old or [])
    indent = next((_ITEM.match(line).group(1) for line in (old or [])[1:] if _ITEM.match(line)), "  ")  # type: ignore[union-attr]
    return [f"{key}:"] + [kept.get(v.strip()) or f"{indent}- {scalar(v)}" for v in values]


def update(text: str, changes: Mapping[str, Value], body: str | None = None) -> str:
    """`text` with the keys in `changes` rewritten (added at the end of the front matter when new,
    removed when None) and, when `body` is given, the answer replaced."""
    newline = "\r\n" if "\r\n" in text else "\n"
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    lines = text.lstrip("\ufeff").splitlines()
    end = next(i for i in range(1, len(lines)) if lines[i].strip() == "---")
    blocks = _blocks(lines[1:end])
    done: set[str] = set()
    out: list[str] = [lines[0]]
    for key, block in blocks:
        if key is not None and key in changes:
            done.add(key)
            if changes[key] is not None:
                out += _render(key, changes[key], block)
            continue
        out += block
    for key, value in changes.items():
        if key not in done and value is not None:
            out += _render(key, value, None)
    out.append(lines[end])
    old_body = lines[end + 1:]
    out += body.strip().splitlines() if body is not None else old_body
    return bom + newline.join(out) + newline


def field_at(text: str, line: int) -> str:
    """Which key of the front matter a (1-based) line of `text` belongs to; "body" past it."""
    lines = text.lstrip("\ufeff").splitlines()
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), len(lines))
    if line > end + 1:
        return "body"
    key = ""
    for number, content in enumerate(lines[1:end], start=2):
        match = _KEY.match(content)
        if match:
            key = match.group(1)
        if number >= line:
            break
    return key


def new_entry(entry_id: str, title: str, body: str, *, questions: Sequence[str] = (), keywords: Sequence[str] = (),
              tags: Sequence[str] = (), source: str = "", draft: bool = True, when: date | None = None) -> str:
    """The text of a new knowledge file, laid out like the shipped ones."""
    lines = ["---", f"id: {entry_id}", f"title: {scalar(title)}"]
    if draft:
        lines.append("draft: true")
    lines += _render("questions", list(questions), None)
    lines += _render("keywords", list(keywords), ["keywords: []"])
    lines += _render("tags", list(tags), ["tags: []"])
    if source:
        lines.append(f"source: {scalar(source)}")
    lines += [f"updated: {(when or date.today()).isoformat()}", "---", *body.strip().splitlines()]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` all at once: a temporary file beside it, flushed, then renamed over it."""
    mode = path.stat().st_mode & 0o777 if path.exists() else None
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644 if mode is None else mode)  # mkstemp makes it 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
