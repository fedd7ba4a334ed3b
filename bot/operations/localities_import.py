"""`localities import --province NAME`: a province's official communes and wards into localities.yaml.

The source is the `vietnam-provinces` package (the national statistics office's list after the
1/7/2025 reorganisation: province → xã / phường / đặc khu). The file is rebuilt for one province:
readable codes (folded slugs: "Phường Phan Rang" → `phan-rang`), the official code kept as
`official_code`, and what the current file already knows carried over — a unit's code and aliases
(matched by official code, then by name), and units below commune level (thôn, tổ dân phố) whose
commune still exists. Codes the database still holds (chats, plans, tickets…) that the new file
would not have are reported; the file is then left alone unless `force`.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import os
import re
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bot.audiences.localities import FILE_NAME, Localities, Locality, load_localities
from bot.kernel.vietnamese import fold

_PREFIXES = ("thanh pho ", "tinh ", "phuong ", "xa ", "dac khu ")
# Where a locality code can sit in the database, in words for the report (other tables: their name).
_TABLE_WORDS = {
    "chats": "nhóm chat / người đăng ký", "broadcasts": "tin đã gửi hoặc lên lịch", "outbox": "hàng đợi gửi tin",
    "supervision_plans": "kế hoạch giám sát", "supervision_nudges": "nhắc chỉ tiêu", "tickets": "câu hỏi, kiến nghị",
}


class LocalityImportError(Exception):
    """One sentence for the operator (the province is unknown, the package is missing…)."""


@dataclass(frozen=True)
class Unit:
    name: str
    official_code: str
    kind: str  # tỉnh, thành phố trung ương, xã, phường, đặc khu


@dataclass(frozen=True)
class Province:
    unit: Unit
    wards: tuple[Unit, ...]

    @property
    def short_name(self) -> str:
        """"Khánh Hòa" for "Tỉnh Khánh Hòa", "Hà Nội" for "Thành phố Hà Nội"."""
        return _strip_prefix(self.unit.name)

    @property
    def display_name(self) -> str:
        name = self.unit.name
        return name if fold(name).startswith(_PREFIXES) else f"{self.unit.kind.capitalize()} {name}"


@dataclass
class Source:
    version: str
    data_date: str
    provinces: list[Province]

    def find(self, text: str) -> Province | None:
        """The province `text` names: with or without diacritics or "Tỉnh"/"Thành phố", or its code."""
        wanted = text.strip()
        for province in self.provinces:
            if wanted.isdigit() and int(wanted) == int(province.unit.official_code):
                return province
            if _key(province.short_name) == _key(_strip_prefix(wanted)):
                return province
        return None

    def suggest(self, text: str) -> list[str]:
        names = {_key(p.short_name): p.short_name for p in self.provinces}
        return [names[k] for k in difflib.get_close_matches(_key(_strip_prefix(text)), list(names), n=3, cutoff=0.5)]


@dataclass
class Plan:
    """What the new file holds and what the import changed."""

    province: Province
    items: list[Locality]
    kept_codes: list[str] = field(default_factory=list)  # codes carried over from the current file
    sub_units: list[str] = field(default_factory=list)  # below commune level, carried over
    dropped: list[str] = field(default_factory=list)  # codes of the current file that are gone
    missing_in_use: dict[str, dict[str, int]] = field(default_factory=dict)  # code → {table: rows}

    def counts(self) -> Counter:
        return Counter(u.kind for u in self.province.wards)


def _key(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9]+", " ", fold(text)).split())


def _strip_prefix(name: str) -> str:
    key = fold(name)
    for prefix in _PREFIXES:
        if key.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):].strip()
    return name.strip()


def slug(name: str) -> str:
    """"Phường Phan Rang" → "phan-rang"; "Xã Bác Ái Đông" → "bac-ai-dong" (the kernel's folding, đ→d)."""
    return re.sub(r"[^a-z0-9]+", "-", fold(_strip_prefix(name))).strip("-")[:40].strip("-")


def load_source() -> Source:
    """Read the package's data (blocking: call it in a thread)."""
    try:
        import vietnam_provinces
    except ModuleNotFoundError:
        raise LocalityImportError("Chưa cài gói vietnam-provinces: chạy pip install vietnam-provinces "
                                  "rồi thử lại.") from None
    with vietnam_provinces.NESTED_DIVISIONS_JSON_PATH.open(encoding="utf-8") as handle:
        data = json.load(handle)
    provinces = [
        Province(Unit(p["name"], f"{int(p['code']):02d}", p["division_type"]),
                 tuple(Unit(w["name"], f"{int(w['code']):05d}", w["division_type"]) for w in p["wards"]))
        for p in data
    ]
    return Source(vietnam_provinces.__version__, getattr(vietnam_provinces, "__data_version__", ""), provinces)


def plan_import(province: Province, current: Localities, in_use: dict[str, dict[str, int]]) -> Plan:
    """The new tree for `province`, carrying over what `current` (the file as it is) already knows."""
    by_official = {i.official_code: i for i in current if i.official_code}
    by_name = {_key(i.name): i for i in current}
    units = [province.unit, *province.wards]
    matched: dict[str, Locality] = {}  # official code → the current item that stands for it
    taken: set[str] = set()
    for unit in units:
        old = by_official.get(unit.official_code) or by_name.get(_key(unit.name))
        if unit is province.unit and old is None:
            old = by_name.get(_key(province.display_name)) or by_name.get(_key(province.short_name))
        if old is not None and old.code not in taken:
            matched[unit.official_code] = old
            taken.add(old.code)
    commune_codes = {matched[u.official_code].code for u in province.wards if u.official_code in matched}
    # Thôn, tổ dân phố… under a commune that is still there: carried over with their own codes.
    sub_units: list[Locality] = []
    under = set(commune_codes)
    for item in current:
        if item.code not in taken and item.parent in under:
            sub_units.append(item)
            under.add(item.code)
            taken.add(item.code)
    codes: dict[str, str] = {}
    for unit in units:
        old = matched.get(unit.official_code)
        if old is not None:
            codes[unit.official_code] = old.code
            continue
        code = slug(unit.name) or unit.official_code
        if code in taken:
            code = slug(f"{unit.kind} {_strip_prefix(unit.name)}")
        if code in taken:
            code = f"{code[:33]}-{unit.official_code}"
        codes[unit.official_code] = code
        taken.add(code)
    root = codes[province.unit.official_code]
    items: list[Locality] = []
    for unit in units:
        old = matched.get(unit.official_code)
        name = province.display_name if unit is province.unit else unit.name
        extra = [province.short_name] if unit is province.unit else []
        items.append(Locality(codes[unit.official_code], name, None if unit is province.unit else root,
                              _aliases(name, [*extra, *(old.aliases if old else ())]), 0, unit.official_code))
    items.extend(sub_units)
    new_codes = {i.code for i in items}
    plan = Plan(province, items, kept_codes=sorted(taken & {i.code for i in current} - {s.code for s in sub_units}),
                sub_units=[s.code for s in sub_units], dropped=[i.code for i in current if i.code not in new_codes])
    plan.missing_in_use = {code: tables for code, tables in sorted(in_use.items()) if code not in new_codes}
    return plan


def _aliases(name: str, candidates: list[str]) -> tuple[str, ...]:
    seen = {_key(name), _key(_strip_prefix(name))}
    out: list[str] = []
    for alias in candidates:
        if alias and _key(alias) not in seen:
            seen.add(_key(alias))
            out.append(alias)
    return tuple(out)


def render(plan: Plan, source: Source) -> str:
    """The YAML text of the new file, with a header saying where it came from."""
    counts = plan.counts()
    parts = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    lines = [
        f"# Danh mục địa bàn {plan.province.display_name}: {len(plan.province.wards)} đơn vị cấp xã ({parts}),",
        "# theo danh mục đơn vị hành chính chính thức sau sắp xếp 1/7/2025 (Cục Thống kê), lấy từ gói",
        f"# vietnam-provinces {source.version}" + (f" (dữ liệu ngày {source.data_date})" if source.data_date else "")
        + f" bằng: python -m bot localities import --province \"{plan.province.short_name}\"",
        "#",
        "# Mỗi mục: code (mã dùng trong /dangky <mã>, giữ nguyên khi nhập lại), name, parent (mã địa bàn cha),",
        "# official_code (mã đơn vị hành chính chính thức), aliases (tên gọi khác, tên cũ: để người dân gõ vẫn tìm",
        "# được). Có thể thêm thôn, tổ dân phố với parent là mã xã/phường: lần nhập sau vẫn giữ lại.",
        "",
    ]
    for item in plan.items:
        lines.append(f"- code: {item.code}")
        lines.append(f"  name: {_quote(item.name)}")
        if item.parent:
            lines.append(f"  parent: {item.parent}")
        if item.official_code:
            lines.append(f'  official_code: "{item.official_code}"')
        if item.aliases:
            lines.append("  aliases: [" + ", ".join(_quote(a) for a in item.aliases) + "]")
        lines.append("")
    return "\n".join(lines)


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False) if re.search(r"[:#\[\]{},&*!|>'\"%@`]", text) or \
        text != text.strip() else text


def in_use_codes(database: Path) -> dict[str, dict[str, int]]:
    """Every locality code the database holds, with the tables and row counts (blocking: use a thread).
    Any table with a `locality` column counts, so a later migration's tables are covered too."""
    if not database.is_file():
        return {}
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        found: dict[str, dict[str, int]] = {}
        for table in tables:
            columns = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
            if "locality" not in columns:
                continue
            rows = conn.execute(f'SELECT locality, COUNT(*) FROM "{table}" WHERE locality IS NOT NULL'
                                " AND locality NOT IN ('', '*') GROUP BY locality")
            for code, count in rows:
                found.setdefault(str(code), {})[table] = int(count)
        return found
    finally:
        conn.close()


def describe_use(tables: dict[str, int]) -> str:
    return ", ".join(f"{_TABLE_WORDS.get(t, t)}: {n}" for t, n in sorted(tables.items()))


def write_atomically(path: Path, text: str) -> None:
    """Write beside, fsync, rename (blocking: use a thread)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def validate(text: str) -> list[str]:
    """The loader's own problems with `text` (blocking: use a thread)."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / FILE_NAME).write_text(text, encoding="utf-8")
        _, problems = load_localities(Path(folder))
    return [f"dòng {p.line}: {p.message}" for p in problems]


@dataclass
class Outcome:
    plan: Plan
    source: Source
    written: bool


async def import_province(name: str, content_dir: Path, database: Path, *, force: bool = False) -> Outcome:
    """Build the plan; write the file unless codes in use would go missing (and not `force`)."""
    source = await asyncio.to_thread(load_source)
    province = source.find(name)
    if province is None:
        close = source.suggest(name)
        hint = f" Có phải: {', '.join(close)}?" if close else ""
        raise LocalityImportError(f"Không có tỉnh, thành phố '{name}' trong danh mục {len(source.provinces)} tỉnh, "
                           f"thành phố.{hint}")
    path = content_dir / FILE_NAME
    current, _ = await asyncio.to_thread(load_localities, content_dir) if path.is_file() else (Localities([]), [])
    in_use = await asyncio.to_thread(in_use_codes, database)
    plan = plan_import(province, current, in_use)
    text = render(plan, source)
    problems = await asyncio.to_thread(validate, text)
    if problems:
        raise LocalityImportError(f"Danh mục mới chưa hợp lệ ({problems[0]}); tệp {path} được giữ nguyên.")
    if plan.missing_in_use and not force:
        return Outcome(plan, source, written=False)
    await asyncio.to_thread(write_atomically, path, text)
    return Outcome(plan, source, written=True)
