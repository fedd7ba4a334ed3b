"""Learning from gaps: which questions the bot could not answer, grouped, most frequent first;
and a staff answer turned into a draft knowledge entry.

Grouping works on folded text (`bot.kernel.vietnamese.fold`: no marks, đ→d), so "Quỹ vì người nghèo ở
đâu?" and "quy vi nguoi ngheo o dau" are one question; different wordings join a group when
their folded syllable sets overlap enough (Dice coefficient ≥ SIMILAR). Sources: questions the
bot declined (question_log) and questions forwarded to staff (tickets of kind "question"); a
ticket made from a declined question is not counted twice.

A draft entry is a normal knowledge file with `draft: true` in its front matter: `content check`
validates it, the service does not serve it until staff review it and delete that line.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from bot.kernel.vietnamese import fold, has_diacritics, syllables
from bot.knowledge.out_of_scope import ID_PREFIX as OUTSIDE_PREFIX
from bot.store.db import Database

SIMILAR = 0.6
# Words that carry no meaning for grouping (folded). Kept tiny on purpose: see DESIGN.md.
FILLER = frozenset({"a", "oi", "nhe", "nha", "vay", "ha", "nhi", "ad", "admin", "alo", "thi", "la", "gi", "sao"})
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass
class Asked:
    text: str
    at: float
    source: str  # "declined" | "handoff"
    chat: int | None = None


@dataclass
class Group:
    tokens: frozenset[str]
    items: list[Asked] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def handed_off(self) -> int:
        return sum(1 for i in self.items if i.source == "handoff")

    @property
    def last(self) -> float:
        return max(i.at for i in self.items)

    def representative(self) -> str:
        """The wording asked most often; among equals, the accented one."""
        counts = Counter(" ".join(i.text.split()) for i in self.items)
        return max(counts, key=lambda t: (counts[t], has_diacritics(t), -len(t)))

    def variants(self, limit: int = 3) -> list[str]:
        seen, out = {self.representative()}, []
        for item in self.items:
            text = " ".join(item.text.split())
            if text not in seen:
                seen.add(text)
                out.append(text)
        return out[:limit]


@functools.lru_cache(maxsize=20_000)  # the same week of questions is grouped on each Knowledge page view
def tokens(text: str) -> frozenset[str]:
    words = [w for w in syllables(fold(text)) if w not in FILLER]
    return frozenset(words) or frozenset(syllables(fold(text)))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return 2 * len(a & b) / (len(a) + len(b))


def group(asked: list[Asked], threshold: float = SIMILAR) -> list[Group]:
    """Greedy clustering, exact folded matches first; groups sorted by size, then recency.

    Each distinct wording joins the earliest-made group it is most similar to (Dice ≥ threshold),
    else starts one. Near-linear: a group's token set never changes, so groups are indexed by
    (size, token), and a wording is compared only with groups that can reach the threshold — a group
    of size b needs an overlap of at least ceil(threshold·(a+b)/2) with a wording of size a, so it
    shares one of the wording's a − overlap + 1 rarest tokens (prefix filtering); other sizes are
    skipped outright. Same groups as comparing every pair."""
    by_exact: dict[frozenset[str], Group] = {}
    for item in sorted(asked, key=lambda i: i.at):
        key = tokens(item.text)
        if not key:
            continue
        by_exact.setdefault(key, Group(key)).items.append(item)
    frequency = Counter(t for key in by_exact for t in key)
    groups: list[Group] = []
    postings: dict[int, dict[str, list[int]]] = {}  # size -> token -> indexes of the groups holding it
    for candidate in sorted(by_exact.values(), key=lambda g: -g.count):
        rarest = sorted(candidate.tokens, key=lambda t: (frequency[t], t))
        a, seen = len(rarest), set()
        best, score = -1, 0.0
        for b, by_token in postings.items():
            overlap = max(1, math.ceil(threshold * (a + b) / 2 - 1e-9))
            if overlap > min(a, b):
                continue
            for token in rarest[: a - overlap + 1]:
                for number in by_token.get(token, ()):
                    if number in seen:
                        continue
                    seen.add(number)
                    s = similarity(candidate.tokens, groups[number].tokens)
                    if s > score or (s == score and s > 0 and number < best):  # the earliest of equals
                        best, score = number, s
        if best >= 0 and score >= threshold:
            groups[best].items.extend(candidate.items)
            continue
        for token in candidate.tokens:
            postings.setdefault(a, {}).setdefault(token, []).append(len(groups))
        groups.append(candidate)
    return sorted(groups, key=lambda g: (-g.count, -g.last))


async def collect(db: Database, since: float | None = None) -> list[Asked]:
    since = since or 0.0
    rows = await db.fetchall(  # declines on a known out-of-scope topic have their answer already
        "SELECT chat, text, asked_at FROM question_log WHERE outcome = 'declined' AND asked_at >= ?"
        " AND (entry_id IS NULL OR entry_id NOT LIKE ?)", (since, OUTSIDE_PREFIX + "%"))
    asked = [Asked(r["text"], r["asked_at"], "declined", r["chat"]) for r in rows]
    declined: dict[tuple[int, frozenset[str]], Asked] = {}
    for a in asked:
        if a.chat is not None:
            declined.setdefault((a.chat, tokens(a.text)), a)  # the first one asked, as before
    tickets = await db.fetchall(
        "SELECT chat, text, created_at FROM tickets WHERE kind = 'question' AND created_at >= ?", (since,))
    for r in tickets:
        twin = declined.get((r["chat"], tokens(r["text"]))) if r["chat"] is not None else None
        if twin is not None:
            twin.source = "handoff"  # the same question, forwarded: counted once
            continue
        asked.append(Asked(r["text"], r["created_at"], "handoff", r["chat"]))
    return asked


async def watermark(db: Database) -> tuple[int, int]:
    """The newest question-log row and ticket: `collect` gives the same result while they stay."""
    row = await db.fetchone("SELECT (SELECT MAX(id) FROM question_log) AS q, (SELECT MAX(id) FROM tickets) AS t")
    return (row["q"] or 0, row["t"] or 0) if row else (0, 0)


def parse_date(value: str, tz: ZoneInfo) -> float:
    """dd/mm/yyyy or yyyy-mm-dd, local midnight, as epoch seconds. ValueError when neither."""
    value = value.strip()
    for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(value, pattern).replace(tzinfo=tz).timestamp()
        except ValueError:
            continue
    raise ValueError(value)


# ---------------------------------------------------------------------- draft entries


def slug(text: str, words: int = 8) -> str:
    return "-".join(_SLUG.sub(" ", fold(text)).split()[:words])


def draft_entry(ticket_id: int, question: str, answer: str, when: datetime,
                entry_id: str | None = None) -> tuple[str, str]:
    """(id, file text) of a draft knowledge entry made from a staff answer."""
    entry_id = entry_id or f"nhap-{ticket_id}-{slug(question)}".rstrip("-")
    title = " ".join(question.split())
    if len(title) > 100:
        title = title[:100].rsplit(" ", 1)[0] + " …"
    meta = {
        "id": entry_id,
        "title": title,
        "draft": True,
        "questions": [" ".join(question.split())],
        "keywords": [],
        "tags": [],
        "source": f"Cán bộ trả lời câu hỏi #{ticket_id} ngày {when.strftime('%d/%m/%Y')}",
        "updated": when.strftime("%Y-%m-%d"),
    }
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False, width=1000).strip()
    header = ("# BẢN NHÁP từ câu trả lời của cán bộ: xem lại nội dung, bỏ mọi thông tin cá nhân, thêm câu hỏi\n"
              "# mẫu, từ khóa và tags; xong thì xóa dòng \"draft: true\" để trợ lý dùng mục này.\n")
    return entry_id, f"---\n{header}{front}\n---\n{answer.strip()}\n"


def write_draft(folder: Path, entry_id: str, text: str, *, force: bool = False) -> Path:
    path = folder / f"{entry_id}.md"
    if path.exists() and not force:
        raise FileExistsError(path)
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
