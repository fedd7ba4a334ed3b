"""Knowledge files rewritten from the web: only changed lines, line endings and comments kept, written
atomically; and the live knowledge swapped whole after a load in a worker thread."""

from __future__ import annotations

import asyncio
import gc
import threading
from pathlib import Path

import pytest

from bot.kernel.content import Content, ContentError, Problem, check_entry
from bot.knowledge import entry_file
from bot.knowledge.live import LiveKnowledge

TEXT = """---
id: vi-du
# a comment staff wrote
title: Ví dụ
questions:
  - Câu một?
  - "Câu hai: có hai chấm"
keywords: [một, hai]
tags: [to-nhan-dan]
updated: 2026-01-02
---
Nội dung **đậm**.

- một dòng
"""


def test_unchanged_is_identical_and_a_change_touches_its_lines_only():
    assert entry_file.update(TEXT, {}) == TEXT
    changed = entry_file.update(TEXT, {"questions": ["Câu một?", "Câu hai: có hai chấm", "Câu ba"],
                                       "keywords": ["một", "hai", "ba, bốn"]})
    old, new = TEXT.splitlines(), changed.splitlines()
    assert [line for line in new if line not in old] == ["  - Câu ba", "keywords: [một, hai, 'ba, bốn']"]
    assert [line for line in old if line not in new] == ["keywords: [một, hai]"]
    entry, problems = check_entry(Path("vi-du.md"), changed)
    assert problems == [] and entry.questions[-1] == "Câu ba" and entry.keywords[-1] == "ba, bốn"
    assert "# a comment staff wrote" in changed


def test_crlf_kept_new_keys_appended_removed_keys_gone_and_body_replaced():
    crlf = TEXT.replace("\n", "\r\n")
    changed = entry_file.update(crlf, {"draft": None, "source": "Luật: 2015", "title": "Ví dụ mới"}, "Mới.")
    assert "\n" not in changed.replace("\r\n", "")
    entry, problems = check_entry(Path("vi-du.md"), changed)
    assert problems == [] and (entry.title, entry.source, entry.body) == ("Ví dụ mới", "Luật: 2015", "Mới.")
    assert entry_file.update(changed, {"source": None}).count("source") == 0
    assert entry_file.field_at(TEXT, 4) == "title" and entry_file.field_at(TEXT, 7) == "questions"
    assert entry_file.field_at(TEXT, 13) == "body"


def test_new_entry_checks_and_atomic_write(tmp_path: Path):
    text = entry_file.new_entry("moi", "Tiêu đề: mới", "Trả lời.", questions=["hỏi gì?"], tags=["a"])
    entry, problems = check_entry(tmp_path / "moi.md", text)
    assert problems == [] and entry.draft and entry.title == "Tiêu đề: mới"
    path = tmp_path / "moi.md"
    entry_file.write_atomic(path, text)
    path.chmod(0o640)
    entry_file.write_atomic(path, text + "\n")
    assert path.read_text(encoding="utf-8") == text + "\n" and path.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["moi.md"]


async def test_live_knowledge_loads_off_the_loop_and_keeps_the_pair_on_error():
    loop_thread, seen = threading.get_ident(), []

    def load():
        seen.append(threading.get_ident())
        if len(seen) == 2:
            raise ContentError([Problem(Path("x.md"), 1, "hỏng")])
        return (content, "index")

    content = Content(root=Path("."))
    live = LiveKnowledge(Content(root=Path(".")), "old-index", load)  # type: ignore[arg-type]
    await live.reload()
    assert (live.content, live.index, live.generation) == (content, "index", 1)
    with pytest.raises(ContentError):
        await live.reload()
    assert (live.content, live.index, live.generation) == (content, "index", 1)
    assert loop_thread not in seen
    await asyncio.gather(live.reload(), live.reload())  # one at a time
    assert live.generation == 3


async def test_a_reloaded_index_is_kept_out_of_the_collectors_walks():
    """bot.kernel.heap: what a reload built is frozen, as the first index is at start."""
    class Index:  # a tracked object, as every part of a real index is
        pass

    built: list[Index] = []

    def load():
        built.append(Index())
        return (Content(root=Path(".")), built[-1])

    live = LiveKnowledge(Content(root=Path(".")), "old-index", load)  # type: ignore[arg-type]
    gc.unfreeze()
    try:
        await live.reload()
        assert gc.get_freeze_count() > 0
        assert not any(o is built[-1] for o in gc.get_objects())  # frozen: out of every generation
    finally:
        gc.unfreeze()
