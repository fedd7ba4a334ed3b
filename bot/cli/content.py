"""Operator commands for the content folder: `content check`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.cli.common import Subparsers, add_action, add_group
from bot.kernel.config import Settings
from bot.kernel.content import Problem, load_content


def add_parser(sub: Subparsers) -> None:
    content = add_group(sub, "content", "kiểm tra nội dung")
    add_action(content, "check", cmd_content_check, "kiểm tra thư mục content/, báo lỗi theo tệp và dòng")


async def cmd_content_check(args: argparse.Namespace, settings: Settings) -> int:
    content = load_content(settings.content_dir, strict=False)
    extra = await _extra_content_checks(settings.content_dir)
    problems = content.problems + extra
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} lỗi trong {settings.content_dir}/", file=sys.stderr)
        return 1
    print(f"Nội dung hợp lệ: {len(content.entries)} mục kiến thức, {len(content.topics)} chủ đề.")
    return 0


async def _extra_content_checks(root: Path) -> list[Problem]:
    """Checks that belong to other services' content (localities, announcements…), if present."""
    from bot.app import content_check as content_checks

    return content_checks.run_all(root)
