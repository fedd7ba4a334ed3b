"""Content checks owned by other services (localities, announcements, supervision plans).

Each service registers a function `root -> list[Problem]` here; `content check` and start-up
run them all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot import broadcasts, localities, out_of_scope, petitions, supervision_io
from bot.content import Problem

CHECKS: list[Callable[[Path], list[Problem]]] = [localities.check, broadcasts.check_announcements, petitions.check,
                                                 supervision_io.check, out_of_scope.check]


def run_all(root: Path) -> list[Problem]:
    problems: list[Problem] = []
    for check in CHECKS:
        problems.extend(check(root))
    return problems
