"""Jinja2 (autoescaped) over the templates shipped in bot/dashboard/templates/."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

STATUS_NAMES = {"draft": "nháp", "queued": "chờ gửi", "sending": "đang gửi", "done": "đã xong",
                "cancelled": "đã hủy", "open": "đang chờ", "answered": "đã trả lời", "closed": "đã xong",
                "pending": "đang chờ", "sent": "đã gửi", "failed": "lỗi"}
AUDIENCE_NAMES = {"groups": "các nhóm", "residents": "người dân đăng ký", "all": "nhóm và người dân"}
ROLE_NAMES = {"viewer": "xem", "sender": "gửi tin", "editor": "biên tập", "admin": "quản trị"}


class Renderer:
    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.env = Environment(loader=PackageLoader("bot.dashboard", "templates"),
                               autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        self.env.filters["when"] = self.when
        self.env.filters["status"] = lambda s: STATUS_NAMES.get(s, s)
        self.env.filters["audience"] = lambda s: AUDIENCE_NAMES.get(s, s)
        self.env.filters["role"] = lambda s: ROLE_NAMES.get(s, s)
        self.env.filters["pct"] = lambda part, whole: round(100 * part / whole) if whole else 0

    def when(self, epoch: float | None) -> str:
        return datetime.fromtimestamp(epoch, self.tz).strftime("%d/%m/%Y %H:%M") if epoch else ""

    def __call__(self, name: str, **context: object) -> str:
        return self.env.get_template(name).render(**context)
