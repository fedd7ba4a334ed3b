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
    check = add_action(content, "check", cmd_content_check, "kiểm tra thư mục content/, báo lỗi theo tệp và dòng")
    check.add_argument("--strict", action="store_true", help="coi cảnh báo như lỗi (mã thoát 1), cho CI của nội dung")


async def cmd_content_check(args: argparse.Namespace, settings: Settings) -> int:
    content = load_content(settings.content_dir, strict=False)
    extra = await _extra_content_checks(settings.content_dir)
    problems = content.problems + extra
    for problem in problems:
        print(problem)
    for warning in content.warnings:
        print(f"{warning.path}:{warning.line}: cảnh báo: {warning.message}")
    if problems:
        print(f"{len(problems)} lỗi, {len(content.warnings)} cảnh báo trong {settings.content_dir}/", file=sys.stderr)
        return 1
    print(f"Nội dung hợp lệ: {len(content.entries)} mục kiến thức, {len(content.topics)} chủ đề"
          + (f", {len(content.warnings)} cảnh báo." if content.warnings else "."))
    return 1 if args.strict and content.warnings else 0


async def _extra_content_checks(root: Path) -> list[Problem]:
    """Checks that belong to other services' content (localities, announcements…), if present."""
    from bot.app import content_check as content_checks

    return content_checks.run_all(root)
