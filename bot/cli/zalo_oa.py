"""Operator commands for the Zalo Official Account: `zalo-oa auth-url` (the consent link) and
`zalo-oa sync` (its followers into the chats table)."""

from __future__ import annotations

import argparse
import logging

from bot.cli.common import Subparsers, add_action, add_group, database, fail, print_json
from bot.kernel.config import Settings

log = logging.getLogger(__name__)


def add_parser(sub: Subparsers) -> None:
    actions = add_group(sub, "zalo-oa", "kết nối Zalo Official Account (OA) và lấy danh sách người quan tâm")
    add_action(actions, "auth-url", cmd_auth_url,
               "in liên kết để quản trị viên OA cấp quyền cho trợ lý (OAuth v4, PKCE)")
    sync = add_action(actions, "sync", cmd_sync, "lấy danh sách người quan tâm OA vào cơ sở dữ liệu")
    sync.add_argument("--json", action="store_true", help='in {"followers", "total"}')


def _not_configured(settings: Settings) -> str | None:
    if not (settings.zalo_oa_app_id and settings.zalo_oa_secret_key and settings.zalo_oa_webhook_secret):
        return "Chưa cấu hình Zalo OA: đặt ZALO_OA_APP_ID, ZALO_OA_SECRET_KEY và ZALO_OA_WEBHOOK_SECRET trong .env."
    return None


async def cmd_auth_url(args: argparse.Namespace, settings: Settings) -> int:
    from bot.channels.zalo_oa.channel import CALLBACK_PATH, consent_url, pkce
    from bot.channels.zalo_oa.store import OAStore

    if (problem := _not_configured(settings)) is not None:
        return fail(problem)
    if not settings.webhook_base_url:
        return fail("Cần WEBHOOK_BASE_URL (địa chỉ https công khai của dịch vụ): Zalo gửi mã ủy quyền về "
                    f"{{WEBHOOK_BASE_URL}}{CALLBACK_PATH}.")
    assert settings.zalo_oa_app_id
    verifier, challenge, state = pkce()
    async with database(settings) as db:
        await OAStore(db).save_consent(state, verifier)
    redirect = f"{settings.webhook_base_url}{CALLBACK_PATH}"
    print(f"Địa chỉ gọi lại (đặt trong Zalo for Developers, mục Official Account): {redirect}")
    print("Quản trị viên OA mở liên kết sau (trong 24 giờ) và bấm Cho phép; dịch vụ đang chạy sẽ lưu mã truy cập:")
    print(consent_url(settings.zalo_oa_oauth_url, settings.zalo_oa_app_id, redirect, challenge, state))
    return 0


async def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    from bot.audiences.chats import Chats
    from bot.audiences.localities import load_strict
    from bot.channels.base import DeliveryError
    from bot.channels.zalo_oa.client import OAClient
    from bot.channels.zalo_oa.store import OAStore

    if (problem := _not_configured(settings)) is not None:
        return fail(problem)
    assert settings.zalo_oa_app_id and settings.zalo_oa_secret_key
    roots = load_strict(settings.content_dir).roots()
    province = roots[0].code if len(roots) == 1 else None
    async with database(settings) as db:
        store = OAStore(db)
        client = OAClient(settings.zalo_oa_app_id, settings.zalo_oa_secret_key, settings.zalo_oa_api_url,
                          settings.zalo_oa_oauth_url, store, seed=settings.zalo_oa_refresh_token)
        chats, offset, seen, total = Chats(db), 0, 0, 0
        try:
            while True:
                ids, total = await client.followers(offset, 50)
                if not ids:
                    break
                await store.set_following(ids, True)
                await chats.follow("zalo_oa", ids, True, province)
                seen += len(ids)
                offset += len(ids)
                if offset >= total:
                    break
        except DeliveryError as exc:
            return fail(f"Zalo OA từ chối ({exc.kind}: {exc.reason}); đã lấy {seen} người quan tâm. "
                        "Nếu mã truy cập bị từ chối, chạy `python -m bot zalo-oa auth-url` để kết nối lại.")
        finally:
            await client.aclose()
    if args.json:
        return print_json({"followers": seen, "total": total})
    print(f"Đã lấy {seen} người quan tâm OA (Zalo báo tổng {total}).")
    return 0
