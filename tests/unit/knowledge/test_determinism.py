"""The ranking does not depend on PYTHONHASHSEED (set order): two processes, the same answers."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

# Questions whose ranking once varied between runs: near ties decided by set order (typo repair
# of "xeo", "bon" chose among equally widespread syllables in the order a set gave them).
QUESTIONS = ["cach lam banh xeo", "cách làm bánh xèo miền Tây", "cach lam banh xeo mien Tay",
             "gia phan bon tang qua mua o dau re", "giá phân bón hôm nay", "gia phan bon hom nay",
             "nha dai doan ket ai duoc xay", "thẻ bhyt hộ cận nghèo"]

SCRIPT = f"""
from pathlib import Path
from bot.app.wiring import build_index
from bot.kernel.content import load_content
index = build_index(load_content(Path("content")))
for q in {QUESTIONS!r}:
    a = index.search(q)
    print(q, a.decision, [(h.entry.id, repr(h.score), repr(h.confidence)) for h in a.hits])
"""


def _run(seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_same_search_ranks_the_same_under_different_hash_seeds():
    first, second, third = _run("1"), _run("2"), _run("3")
    assert len(first.splitlines()) == len(QUESTIONS)
    assert first == second == third
