"""Content checks owned by other services (localities, announcements, supervision plans).

Each service registers a function `root -> list[Problem]` here; `content check` and start-up
run them all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from bot.audiences import localities
from bot.broadcasts import standing
from bot.broadcasts import store as broadcasts
from bot.handoff import petitions
from bot.kernel.content import Entry, Problem, load_content
from bot.knowledge import out_of_scope, situations
from bot.supervision import plans_io as supervision_io

CHECKS: list[Callable[[Path], list[Problem]]] = [localities.check, broadcasts.check_announcements, petitions.check,
                                                 supervision_io.check, standing.check]


def run_all(root: Path, entries: Sequence[Entry] | None = None) -> list[Problem]:
    """Every check; `entries`: the knowledge entries already read from `root` (a reload has them), for
    the checks that compare against them, so the folder is read once (5,000 entries: 1.6 s a read)."""
    problems: list[Problem] = []
    for check in CHECKS:
        problems.extend(check(root))
    if entries is None:
        entries = load_content(root, strict=False).entries
    topics, _ = out_of_scope.load(root)
    problems.extend(out_of_scope.check(root, entries))
    known = {e.id for e in entries} | {t.id.removeprefix(out_of_scope.ID_PREFIX) for t in topics}
    problems.extend(situations.check(root, known))
    return problems
