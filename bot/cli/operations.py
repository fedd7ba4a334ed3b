"""Operator commands for operations: `localities import`, `backup`, `restore` (bot.operations)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from bot.kernel.config import Settings


def add_parser(subparsers: Any) -> None:
    """Register `backup` and `restore`, and `import` under the existing `localities` command
    (so call it after bot.cli.audience has registered `localities`)."""
    localities = subparsers.choices["localities"]
    loc_sub = localities.add_subparsers(dest="localities_command", metavar="ACTION")
    imp = loc_sub.add_parser(
        "import", help="danh mục xã, phường chính thức của một tỉnh vào CONTENT_DIR/localities.yaml",
        description="Dựng lại CONTENT_DIR/localities.yaml từ danh mục đơn vị hành chính chính thức "
                    "(gói vietnam-provinces), giữ các mã đang dùng.")
    imp.add_argument("--province", required=True, help='tên tỉnh, thành phố, có dấu hoặc không ("Khánh Hòa")')
    imp.add_argument("--force", action="store_true",
                     help="ghi tệp dù có mã địa bàn đang dùng trong cơ sở dữ liệu không còn trong danh mục mới")
    imp.set_defaults(func=cmd_localities_import, quiet_logs=True)

    backup = subparsers.add_parser("backup", help="sao lưu cơ sở dữ liệu (chạy được khi dịch vụ đang chạy)",
                                   description="Bản sao nhất quán của cơ sở dữ liệu, đã kiểm tra toàn vẹn.")
    backup.add_argument("file", type=Path, help="tệp bản sao (ghi đè nếu đã có)")
    backup.set_defaults(func=cmd_backup, quiet_logs=True)
    restore = subparsers.add_parser("restore", help="khôi phục cơ sở dữ liệu từ một bản sao (dịch vụ phải dừng)",
                                    description="Kiểm tra bản sao rồi đặt nó vào chỗ của DATABASE_URL; "
                                                "từ chối khi dịch vụ đang chạy.")
    restore.add_argument("file", type=Path, help="tệp bản sao (từ lệnh backup)")
    restore.set_defaults(func=cmd_restore, quiet_logs=True)


async def cmd_localities_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.operations.localities_import import LocalityImportError, describe_use, import_province

    try:
        outcome = await import_province(args.province, settings.content_dir, settings.database_path,
                                        force=args.force)
    except LocalityImportError as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 2
    plan, source = outcome.plan, outcome.source
    if plan.missing_in_use:
        print("Các mã địa bàn sau đang được dùng trong cơ sở dữ liệu nhưng không có trong danh mục mới:",
              file=sys.stderr)
        for code, tables in plan.missing_in_use.items():
            print(f"  {code} ({describe_use(tables)})", file=sys.stderr)
    if not outcome.written:
        print(f"Chưa ghi {settings.content_dir / 'localities.yaml'}: đăng ký lại các nhóm, kế hoạch ấy vào địa bàn "
              "mới (hoặc thêm mã cũ làm tên gọi khác) rồi chạy lại, hoặc thêm --force để vẫn ghi.", file=sys.stderr)
        return 1
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(plan.counts().items(), key=lambda kv: -kv[1]))
    print(f"Đã ghi {settings.content_dir / 'localities.yaml'}: {plan.province.display_name} và "
          f"{len(plan.province.wards)} đơn vị ({counts}), theo vietnam-provinces {source.version}; "
          f"giữ {len(plan.kept_codes)} mã đã có, {len(plan.sub_units)} địa bàn cấp dưới xã.")
    if plan.dropped:
        print(f"Bỏ {len(plan.dropped)} mã không còn trong danh mục: {', '.join(plan.dropped)}.")
    print("Kiểm tra các nội dung khác dùng mã địa bàn: python -m bot content check")
    return 0


async def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from bot.operations.backup import BackupError, backup

    try:
        result = await backup(settings.database_path, args.file)
    except BackupError as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 1
    print(f"Đã sao lưu {settings.database_path} vào {result.path} ({result.size / 1_048_576:.1f} MB, "
          f"kiểm tra toàn vẹn: ok, {result.seconds:.1f} giây).")
    return 0


async def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from bot.operations.backup import BackupError, restore

    try:
        kept = await restore(args.file, settings.database_path)
    except BackupError as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 1
    before = f" Dữ liệu cũ được giữ ở {kept}." if kept else ""
    print(f"Đã khôi phục {settings.database_path} từ {args.file}.{before} Có thể chạy lại dịch vụ.")
    return 0
