"""Measure the search on a labelled question set (tests/data/qa_eval.yaml format).

Used by the test that guards the accuracy floors and by bench/qa.py, which prints the figures.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.knowledge.index import KnowledgeIndex


@dataclass
class EvalResult:
    in_scope: int = 0
    correct: int = 0  # answered with the right entry
    choices_with_right: int = 0  # offered choices that include the right entry
    out_of_scope: int = 0
    declined: int = 0
    misses: list[tuple[str, str, str]] = field(default_factory=list)  # (question, expected, got)
    false_answers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.in_scope if self.in_scope else 0.0

    @property
    def decline_rate(self) -> float:
        return self.declined / self.out_of_scope if self.out_of_scope else 0.0


def load_eval(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def strip_diacritics(text: str) -> str:
    """As a resident typing on a phone without a Vietnamese keyboard would: no marks, đ→d, case kept."""
    decomposed = unicodedata.normalize("NFD", text)
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return plain.replace("đ", "d").replace("Đ", "D")


def evaluate(index: KnowledgeIndex, data: dict, *, transform=lambda q: q) -> EvalResult:
    result = EvalResult()
    for item in data["in_scope"]:
        question, expected = transform(item["q"]), item["id"]
        answer = index.search(question)
        result.in_scope += 1
        got = answer.best.entry.id if answer.best else "-"
        if answer.decision == "answer" and got == expected:
            result.correct += 1
            continue
        if answer.decision == "choices" and any(h.entry.id == expected for h in answer.hits):
            result.choices_with_right += 1
        result.misses.append((question, expected, f"{answer.decision}:{got}"))
    for raw in data["out_of_scope"]:
        question = transform(raw)
        answer = index.search(question)
        result.out_of_scope += 1
        if answer.decision == "answer" and answer.best:
            result.false_answers.append((question, answer.best.entry.id))
        else:
            result.declined += 1
    return result
