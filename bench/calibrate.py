"""Fit the search's confidence model (bot.knowledge.index.ConfidenceModel) and print its weights.

Positives: every example question of the knowledge base, searched on an index built without
that question (so it is as new to the index as a resident's question), as typed and stripped
of diacritics; label = the right entry came first. Negatives: bench/data/
calibration_out_of_scope.yaml and the out-of-scope half of bench/data/qa_dev.yaml.
tests/data/qa_eval.yaml is never read here: it stays held out for the accuracy test and
bench/qa.py.

Run: python bench/calibrate.py [--bare] [--write]   (--write updates the constants in
bot/knowledge/confidence.py; --bare fits the model of entries without example questions)
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.kernel.content import load_content  # noqa: E402
from bot.kernel.vietnamese import Analyzer  # noqa: E402
from bot.knowledge import out_of_scope  # noqa: E402
from bot.knowledge.evaluation import strip_diacritics  # noqa: E402
from bot.knowledge.index import KnowledgeIndex, Thresholds  # noqa: E402

Row = tuple[tuple[float, ...], int]


def bare_samples() -> tuple[list[Row], list[Row]]:
    """For the model of entries without example questions: the knowledge base stripped of its
    example questions and keywords (as an imported FAQ of titles and bodies), asked every one
    of those example questions; negatives as in `samples`."""
    content = load_content(ROOT / "content")
    analyzer = Analyzer(content.expansions)
    outside, _problems = out_of_scope.load(ROOT / "content")
    bare = [dataclasses.replace(e, questions=(), keywords=()) for e in content.entries]
    index = KnowledgeIndex(bare, analyzer, outside=outside)
    rows: list[Row] = []
    for entry in content.entries:
        for question in entry.questions:
            for text in (question, strip_diacritics(question)):
                best = index.search(text).best
                if best is not None and best.signals is not None:
                    rows.append((best.signals.vector(), int(best.entry.id == entry.id)))
    return rows, _negatives(index)


def _negatives(index: KnowledgeIndex) -> list[Row]:
    data = ROOT / "bench" / "data"
    negatives = yaml.safe_load((data / "calibration_out_of_scope.yaml").read_text("utf-8"))
    negatives += yaml.safe_load((data / "qa_dev.yaml").read_text("utf-8"))["out_of_scope"]
    rows: list[Row] = []
    for question in negatives:
        for text in (question, strip_diacritics(question)):
            best = index.search(text).best
            if best is not None and best.signals is not None:
                rows.append((best.signals.vector(), 0))
    return rows


BARE_REFUSED = 0.97  # share of the out-of-scope questions a bare entry must not answer


def _refusing_bias(w: list[float], b: float, rows: list[Row]) -> float:
    """The class-balanced fit answers too many out-of-scope questions for bare entries (their
    signals overlap more): lower the bias until `BARE_REFUSED` of the out-of-scope questions
    fall under the answer threshold."""
    negatives = [x for x, _ in rows]
    threshold = Thresholds().answer
    for _ in range(100):
        z = [b + sum(a * c for a, c in zip(w, x, strict=True)) for x in negatives]
        refused = sum(1 / (1 + math.exp(-v)) < threshold for v in z) / len(negatives)
        if refused >= BARE_REFUSED:
            break
        b -= 0.05
    return b


def samples() -> list[Row]:
    content = load_content(ROOT / "content")
    analyzer = Analyzer(content.expansions)
    outside, _problems = out_of_scope.load(ROOT / "content")
    rows: list[Row] = []
    for position, entry in enumerate(content.entries):
        for question in entry.questions:
            others = tuple(q for q in entry.questions if q != question)
            entries = list(content.entries)
            entries[position] = dataclasses.replace(entry, questions=others)
            index = KnowledgeIndex(entries, analyzer, outside=outside)
            for text in (question, strip_diacritics(question)):
                best = index.search(text).best
                if best is not None and best.signals is not None:
                    rows.append((best.signals.vector(), int(best.entry.id == entry.id)))
    index = KnowledgeIndex(content.entries, analyzer, outside=outside)
    return rows + _negatives(index)


def fit(rows: list[Row], l2: float = 0.01, epochs: int = 4000, rate: float = 0.5) -> tuple[list[float], float]:
    """Class-balanced logistic regression by plain gradient descent (a few hundred rows)."""
    k = len(rows[0][0])
    w, b = [0.0] * k, 0.0
    positives = sum(y for _, y in rows)
    weight = {1: len(rows) / (2 * positives), 0: len(rows) / (2 * (len(rows) - positives))}
    for _ in range(epochs):
        grad, grad_b = [0.0] * k, 0.0
        for x, y in rows:
            p = 1 / (1 + math.exp(-max(-40, min(40, b + sum(a * c for a, c in zip(w, x, strict=True))))))
            e = weight[y] * (p - y)
            grad = [g + e * c for g, c in zip(grad, x, strict=True)]
            grad_b += e
        w = [a - rate * (g / len(rows) + l2 * a) for a, g in zip(w, grad, strict=True)]
        b -= rate * grad_b / len(rows)
    return w, b


def main() -> None:
    bare = "--bare" in sys.argv
    if bare:
        positives, negatives = bare_samples()
        rows = positives + negatives
        w, b = fit(rows)
        b = _refusing_bias(w, b, negatives)
    else:
        rows = samples()
        w, b = fit(rows)
    weights = tuple(round(x, 3) for x in w)
    bias = round(b, 3)
    print(f"{len(rows)} samples, {sum(y for _, y in rows)} positive")
    names = ("BARE_WEIGHTS", "BARE_BIAS") if bare else ("CALIBRATED_WEIGHTS", "CALIBRATED_BIAS")
    print(f"{names[0]} = {weights}\n{names[1]} = {bias}")
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7):
        def prob(x: tuple[float, ...]) -> float:
            return 1 / (1 + math.exp(-(bias + sum(a * c for a, c in zip(weights, x, strict=True)))))

        pos = [x for x, y in rows if y]
        neg = [x for x, y in rows if not y]
        kept = sum(prob(x) >= threshold for x in pos) / len(pos)
        refused = sum(prob(x) < threshold for x in neg) / len(neg)
        print(f"threshold {threshold}: right answers kept {kept:.3f}, wrong/out-of-scope refused {refused:.3f}")
    if "--write" in sys.argv:
        path = ROOT / "bot" / "knowledge" / "confidence.py"
        text = path.read_text("utf-8")
        text = re.sub(rf"^{names[0]} = .*$", f"{names[0]} = {weights}", text, flags=re.M)
        text = re.sub(rf"^{names[1]} = .*$", f"{names[1]} = {bias}", text, flags=re.M)
        path.write_text(text, "utf-8")
        print(f"written to {path}")


if __name__ == "__main__":
    main()
