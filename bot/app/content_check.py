"""Content checks owned by other services (localities, announcements, supervision plans).

Each service registers a function `root -> list[Problem]` here; `content check` and start-up
run them all.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bot.audiences import localities
from bot.broadcasts import standing
from bot.broadcasts import store as broadcasts
from bot.handoff import petitions
from bot.kernel.content import Problem
from bot.knowledge import out_of_scope, situations
from bot.supervision import plans_io as supervision_io

CHECKS: list[Callable[[Path], list[Problem]]] = [localities.check, broadcasts.check_announcements, petitions.check,
                                                 supervision_io.check, out_of_scope.check,
                                                 situations.check,
                                                 standing.check]


def run_all(root: Path) -> list[Problem]:
    problems: list[Problem] = []
    for check in CHECKS:
        problems.extend(check(root))
    return problems
