"""The locality tree from `content/localities.yaml`: any depth, data not code.

Each item has `code`, `name`, optional `parent` (a code), optional `aliases` and optional
`official_code` (the unit's code in the national list, digits; `localities import` writes it). Lookup accepts
a code, an alias or a name, with or without diacritics ("Phường Phan Rang", "phan rang",
"PHAN-RANG"); a wrong one gets close-match suggestions. Audience selection by a locality takes
its whole subtree.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.kernel.content import Problem
from bot.kernel.vietnamese import fold

FILE_NAME = "localities.yaml"
CODE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
OFFICIAL_CODE = re.compile(r"^[0-9]{1,10}$")
FIELDS = ("code", "name", "parent", "aliases", "official_code")
# Unit words people may or may not type before a name: "phường Phan Rang" / "Phan Rang".
_UNIT_PREFIXES = ("tinh ", "thanh pho ", "tp ", "phuong ", "xa ", "dac khu ", "thon ", "to dan pho ",
                  "khu pho ", "to ", "khom ", "ap ", "ban ", "buon ", "p ", "x ")


@dataclass(frozen=True)
class Locality:
    code: str
    name: str
    parent: str | None = None
    aliases: tuple[str, ...] = ()
    line: int = 0
    official_code: str | None = None


def _key(text: str) -> str:
    """The folded form used to compare what people type: no marks, đ→d, punctuation ('-', '–', '_', '.')
    as spaces: "Phan Rang–Tháp Chàm" → "phan rang thap cham"."""
    return " ".join(re.sub(r"[\W_]+", " ", fold(text)).split())


def _short(key: str) -> str:
    for prefix in _UNIT_PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return key[len(prefix):]
    return key


class Localities:
    """An immutable, validated tree. Iteration is depth-first, parents before children."""

    def __init__(self, items: list[Locality]) -> None:
        self._by_code = {item.code: item for item in items}
        self._children: dict[str | None, list[str]] = {}
        for item in items:
            self._children.setdefault(item.parent, []).append(item.code)
        self._keys: dict[str, set[str]] = {}
        for item in items:
            for text in (item.code, item.name, *item.aliases):
                key = _key(text)
                for form in {key, _short(key)}:
                    self._keys.setdefault(form, set()).add(item.code)

    def __iter__(self) -> Iterator[Locality]:
        def walk(parent: str | None) -> Iterator[Locality]:
            for code in self._children.get(parent, []):
                yield self._by_code[code]
                yield from walk(code)

        return walk(None)

    def __len__(self) -> int:
        return len(self._by_code)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    def get(self, code: str | None) -> Locality | None:
        return self._by_code.get(code) if code else None

    def roots(self) -> list[Locality]:
        return [self._by_code[c] for c in self._children.get(None, [])]

    def children(self, code: str) -> list[Locality]:
        return [self._by_code[c] for c in self._children.get(code, [])]

    def subtree(self, code: str) -> list[str]:
        """`code` and every code below it; empty for an unknown code."""
        if code not in self._by_code:
            return []
        found, stack = [], [code]
        while stack:
            current = stack.pop()
            found.append(current)
            stack.extend(reversed(self._children.get(current, [])))
        return found

    def path(self, code: str) -> list[Locality]:
        """From the root down to `code`."""
        chain: list[Locality] = []
        current = self._by_code.get(code)
        while current is not None and len(chain) <= len(self._by_code):
            chain.append(current)
            current = self._by_code.get(current.parent) if current.parent else None
        return list(reversed(chain))

    def full_name(self, code: str) -> str:
        """"Phường Phan Rang, Tỉnh Khánh Hòa"; the code itself when unknown."""
        chain = self.path(code)
        return ", ".join(item.name for item in reversed(chain)) if chain else code

    def lookup(self, text: str) -> Locality | None:
        """The one locality `text` names (code, alias or name, folded); None if none or ambiguous."""
        if text in self._by_code:
            return self._by_code[text]
        key = _key(text)
        if not key:
            return None
        codes = self._keys.get(key) or self._keys.get(_short(key)) or set()
        return self._by_code[next(iter(codes))] if len(codes) == 1 else None

    def suggest(self, text: str, limit: int = 3) -> list[Locality]:
        """Close matches for a wrong code or name (difflib on folded names, codes and aliases)."""
        key = _short(_key(text))
        if not key:
            return []
        exact = sorted(self._keys.get(key, set()))
        scored = difflib.get_close_matches(key, list(self._keys), n=limit * 3, cutoff=0.6)
        found: list[str] = list(exact)
        for match in scored:
            for code in sorted(self._keys[match]):
                if code not in found:
                    found.append(code)
        if not found:  # a fragment: "phan" → every name containing it
            found = sorted({c for k, codes in self._keys.items() if key in k for c in codes})
        return [self._by_code[c] for c in found[:limit]]


# ---------------------------------------------------------------------- loading and checking


def load_localities(root: Path) -> tuple[Localities, list[Problem]]:
    """Read `root/localities.yaml`; every problem carries the file and line."""
    path = root / FILE_NAME
    if not path.is_file():
        return Localities([]), [Problem(path, 0, "thiếu tệp danh mục địa bàn")]
    try:
        text = path.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except UnicodeDecodeError:
        return Localities([]), [Problem(path, 1, "tệp không phải văn bản UTF-8")]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return Localities([]), [Problem(path, (mark.line + 1) if mark else 1, f"YAML không hợp lệ: {reason}")]
    if node is None:
        return Localities([]), [Problem(path, 1, "danh mục địa bàn đang trống")]
    if not isinstance(node, yaml.SequenceNode):
        return Localities([]), [Problem(path, node.start_mark.line + 1, "cần một danh sách các mục - code:, name:")]
    problems: list[Problem] = []
    items: list[Locality] = []
    for item_node in node.value:
        item = _read_item(path, item_node, problems)
        if item is not None:
            items.append(item)
    items = _check_tree(path, items, problems)
    return Localities(items), problems


def _read_item(path: Path, node: yaml.Node, problems: list[Problem]) -> Locality | None:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        problems.append(Problem(path, line, "mỗi địa bàn phải có dạng code:, name:, parent:"))
        return None
    fields: dict[str, yaml.Node] = {str(k.value): v for k, v in node.value}
    for unknown in sorted(set(fields) - set(FIELDS)):
        problems.append(Problem(path, line, f"khóa '{unknown}' không được hỗ trợ ({', '.join(FIELDS)})"))

    def scalar(key: str) -> str | None:
        value = fields.get(key)
        if value is None or (isinstance(value, yaml.ScalarNode) and value.tag.endswith(":null")):
            return None
        if not isinstance(value, yaml.ScalarNode):
            problems.append(Problem(path, value.start_mark.line + 1, f"'{key}' phải là một giá trị đơn"))
            return None
        return str(value.value).strip() or None

    code, name, parent, official = scalar("code"), scalar("name"), scalar("parent"), scalar("official_code")
    if code is None or not CODE.match(code):
        problems.append(Problem(path, line, f"mã địa bàn {code!r} không hợp lệ "
                                            "(chữ thường không dấu, số, - _ . ; tối đa 40 ký tự)"))
        return None
    if name is None:
        problems.append(Problem(path, line, f"địa bàn '{code}' thiếu name (tên)"))
        return None
    aliases: list[str] = []
    alias_node = fields.get("aliases")
    if isinstance(alias_node, yaml.SequenceNode):
        aliases = [str(a.value).strip() for a in alias_node.value if isinstance(a, yaml.ScalarNode)]
    elif isinstance(alias_node, yaml.ScalarNode) and alias_node.value.strip():
        aliases = [a.strip() for a in alias_node.value.split(",")]
    if official is not None and not OFFICIAL_CODE.match(official):
        problems.append(Problem(path, line, f"'{code}': official_code {official!r} không hợp lệ (mã số của "
                                            "đơn vị hành chính, chỉ gồm chữ số)"))
        official = None
    return Locality(code, name, parent, tuple(a for a in aliases if a), line, official)


def _check_tree(path: Path, items: list[Locality], problems: list[Problem]) -> list[Locality]:
    """Drop duplicates, unknown parents and cycles (each reported); return what is left."""
    by_code: dict[str, Locality] = {}
    for item in items:
        if item.code in by_code:
            first = by_code[item.code]
            problems.append(Problem(path, item.line, f"mã '{item.code}' trùng với mục ở dòng {first.line}"))
            continue
        by_code[item.code] = item
    for item in by_code.values():
        if item.parent is not None and item.parent not in by_code:
            problems.append(Problem(path, item.line, f"'{item.code}': địa bàn cha '{item.parent}' không có "
                                                      "trong danh mục"))
    reported: set[str] = set()
    for item in by_code.values():
        seen: list[str] = []
        current: Locality | None = item
        while current is not None and current.parent is not None:
            if current.code in seen:
                cycle = seen[seen.index(current.code):]
                if not reported & set(cycle):
                    first = min((by_code[c] for c in cycle), key=lambda i: i.line)
                    problems.append(Problem(path, first.line,
                                            "vòng lặp trong cây địa bàn: " + " → ".join([*cycle, current.code])))
                    reported.update(cycle)
                break
            seen.append(current.code)
            current = by_code.get(current.parent)
    officials: dict[str, Locality] = {}
    for item in by_code.values():
        if item.official_code is not None:
            first = officials.setdefault(item.official_code, item)
            if first is not item:
                problems.append(Problem(path, item.line, f"official_code {item.official_code} trùng với mục ở dòng "
                                                          f"{first.line}"))
    aliases: dict[str, str] = {}
    for item in by_code.values():
        for alias in item.aliases:
            key = _key(alias)
            other = aliases.setdefault(key, item.code)
            if other != item.code:
                problems.append(Problem(path, item.line, f"tên gọi khác '{alias}' đã dùng cho '{other}'"))
    bad = {i.code for i in by_code.values() if i.parent is not None and i.parent not in by_code} | reported
    changed = True
    while changed:  # children of dropped items go too, so the tree stays a tree
        changed = False
        for item in by_code.values():
            if item.code not in bad and item.parent in bad:
                bad.add(item.code)
                changed = True
    return [i for i in by_code.values() if i.code not in bad]


def check(root: Path) -> list[Problem]:
    """For `content check` (registered in bot.app.content_check)."""
    return load_localities(root)[1]


def load_strict(root: Path) -> Localities:
    """For start-up: the tree, or ContentError naming every problem."""
    from bot.kernel.content import ContentError

    tree, problems = load_localities(root)
    if problems:
        raise ContentError(problems)
    return tree


def resolve_locality(tree: Localities, text: str) -> tuple[str | None, str]:
    """(code, "") or (None, an error sentence with suggestions)."""
    found = tree.lookup(text)
    if found is not None:
        return found.code, ""
    close = tree.suggest(text)
    hint = f" Có phải: {', '.join(f'{i.code} ({i.name})' for i in close)}?" if close else ""
    return None, f"không có địa bàn '{text}'.{hint} Xem danh sách: python -m bot localities"
