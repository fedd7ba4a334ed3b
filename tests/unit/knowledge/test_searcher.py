"""The search process: the same answers as searching here, and nothing depends on it."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
from pathlib import Path

import pytest

from bot.kernel.config import ConfigError, Settings, load_settings
from bot.kernel.content import load_content
from bot.knowledge.build import build_index
from bot.knowledge.live import LiveKnowledge
from bot.knowledge.searcher import Searcher

ROOT = Path(__file__).resolve().parents[3]
QUESTIONS = ["quy vi nguoi ngheo la gi", "Nhà tôi bị dột, xin hỗ trợ sửa nhà ở đâu?", "rạp phim tối nay",
             "thẻ bhyt hộ cận nghèo", "xin chào", "mua nha o xa hoi"]


def _live(index, content=None, folder: Path = ROOT / "content") -> LiveKnowledge:
    def load():
        fresh = load_content(folder)
        return fresh, build_index(fresh)

    return LiveKnowledge(content or load_content(folder), index, load)


async def _until(check, seconds: float = 30) -> None:
    for _ in range(int(seconds * 20)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


def _same(a, b) -> None:
    assert a.decision == b.decision and a.folded == b.folded
    assert [(h.entry.id, h.score, h.confidence, h.signals) for h in a.hits] == \
           [(h.entry.id, h.score, h.confidence, h.signals) for h in b.hits]
    assert (a.outside and a.outside.id) == (b.outside and b.outside.id)


async def test_answers_from_the_process_equal_answers_searched_here(index) -> None:
    searcher = Searcher(_live(index), ROOT / "content")
    await searcher.start()
    try:
        await _until(lambda: searcher.ready)
        answers = await asyncio.gather(*(searcher.search(q) for q in QUESTIONS))
        for question, answer in zip(QUESTIONS, answers, strict=True):
            _same(answer, index.search(question))
            # the service's own Entry objects, not copies
            assert all(any(h.entry is e for e in index.entries) for h in answer.hits)
    finally:
        await searcher.stop()
    assert not searcher.ready


async def test_a_killed_process_loses_no_question_and_is_started_again(index, caplog) -> None:
    searcher = Searcher(_live(index), ROOT / "content", restart_after=0.2)
    await searcher.start()
    try:
        await _until(lambda: searcher.ready)
        first = searcher._proc.pid
        os.kill(first, signal.SIGKILL)
        with caplog.at_level(logging.ERROR, logger="bot.knowledge.searcher"):
            answers = await asyncio.gather(*(searcher.search(q) for q in QUESTIONS))  # answered here meanwhile
            for question, answer in zip(QUESTIONS, answers, strict=True):
                _same(answer, index.search(question))
            await _until(lambda: searcher.ready and searcher._proc.pid != first)
        assert "search process stopped" in caplog.text
        _same(await searcher.search(QUESTIONS[0]), index.search(QUESTIONS[0]))
    finally:
        await searcher.stop()


async def test_other_content_in_the_process_is_not_used(index, tmp_path, caplog) -> None:
    other = tmp_path / "content"
    shutil.copytree(ROOT / "content", other)
    (other / "knowledge" / "quy-vi-nguoi-ngheo.md").unlink()  # the process would lack an entry
    searcher = Searcher(_live(index), other)
    with caplog.at_level(logging.WARNING, logger="bot.knowledge.searcher"):
        await searcher.start()
        try:
            await _until(lambda: "other content" in caplog.text)
            assert not searcher.ready
            _same(await searcher.search(QUESTIONS[0]), index.search(QUESTIONS[0]))
        finally:
            await searcher.stop()


async def test_a_reload_of_the_live_knowledge_reaches_the_process(tmp_path) -> None:
    folder = tmp_path / "content"
    shutil.copytree(ROOT / "content", folder)
    content = load_content(folder)
    live = _live(build_index(content), content, folder)
    searcher = Searcher(live, folder)
    await searcher.start()
    try:
        await _until(lambda: searcher.ready)
        entry = folder / "knowledge" / "quy-vi-nguoi-ngheo.md"
        entry.write_text(entry.read_text(encoding="utf-8").replace("\ntitle:", "\ntitle: Ống nhòm thần kỳ —", 1),
                         encoding="utf-8")
        await live.reload()  # as the dashboard does after an edit
        answer = await searcher.search("ống nhòm thần kỳ")  # searched here while the process reloads
        assert not searcher.ready
        _same(answer, live.index.search("ống nhòm thần kỳ"))
        await _until(lambda: searcher.ready)
        answer = await searcher.search("ống nhòm thần kỳ")
        _same(answer, live.index.search("ống nhòm thần kỳ"))
        assert answer.best is not None and answer.best.entry.id == "quy-vi-nguoi-ngheo"
        assert any(answer.best.entry is e for e in live.index.entries)
    finally:
        await searcher.stop()


def test_the_setting_is_a_switch() -> None:
    assert Settings().search_process is True
    assert load_settings({}, dotenv=None).search_process is True
    for value, expected in (("0", False), ("off", False), ("1", True), ("Yes", True)):
        assert load_settings({"SEARCH_PROCESS": value}, dotenv=None).search_process is expected
    with pytest.raises(ConfigError, match="SEARCH_PROCESS"):
        load_settings({"SEARCH_PROCESS": "maybe"}, dotenv=None)
