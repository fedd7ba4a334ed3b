"""Settings from the environment and an optional `.env` file, validated with clear errors.

A wrong value stops start-up with one sentence that names the setting (`ConfigError`), never
a traceback. The environment wins over `.env`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(Exception):
    """A setting is missing or wrong; the message names it and says what is expected."""


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class Settings:
    database_path: Path = Path("data/bot.sqlite3")
    content_dir: Path = Path("content")
    timezone: str = "Asia/Ho_Chi_Minh"
    telegram_bot_token: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_staff_ids: frozenset[str] = field(default_factory=frozenset)
    telegram_staff_chat_id: str | None = None
    telegram_rate_per_second: float = 30.0
    telegram_group_rate_per_minute: float = 20.0
    telegram_chat_rate_per_second: float = 1.0
    zalo_bot_token: str | None = None
    zalo_api_url: str = "https://bot-api.zaloplatforms.com"
    zalo_webhook_secret: str | None = None
    zalo_rate_per_second: float = 5.0
    webhook_base_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_level: str = "INFO"
    log_format: str = "text"  # "json": one JSON object a line (bot/kernel/logs.py)
    handoff_remind_hours: float = 4.0  # working hours before an unanswered ticket is re-announced
    ticket_retention_days: int = 365  # closed tickets lose their personal fields after this
    rate_limit_messages: int = 20  # per person, in rate_limit_seconds
    rate_limit_seconds: float = 60.0
    backup_dir: Path | None = None  # nightly backups of the database go here; None: off
    backup_keep: int = 7  # how many nightly backups are kept (the newest)
    backup_at: str = "02:30"  # local time (TIMEZONE) of the nightly backup, HH:MM
    flow_expiry_hours: float = 24.0  # an unfinished conversation step (/gopy, /thongbao…) expires after this
    zalo_oa_app_id: str | None = None  # the Zalo Official Account channel is on when set
    zalo_oa_secret_key: str | None = None  # the app's secret (OAuth header `secret_key`)
    zalo_oa_webhook_secret: str | None = None  # the OA secret key (webhook X-ZEvent-Signature)
    zalo_oa_refresh_token: str | None = None  # the first refresh token; the database keeps its successors
    zalo_oa_api_url: str = "https://openapi.zalo.me"
    zalo_oa_oauth_url: str = "https://oauth.zaloapp.com"
    zalo_oa_rate_per_second: float = 20.0  # Zalo allows about 4,000 requests a minute
    zalo_oa_template: str = "none"  # none | promotion | transaction: outside the 7-day window
    public_url: str | None = None  # base of the links the bot prints (dashboard); None: http://HTTP_HOST:HTTP_PORT
    web_session_hours: float = 12.0  # a dashboard session ends this long after sign-in
    web_idle_minutes: float = 30.0  # ... or after this long without a page viewed, whichever comes first
    search_process: bool = True  # residents' questions searched in a process beside the service (`run` only)
    web_approval_threshold: int = 0  # a web broadcast to more recipients waits for a second staff member; 0: off

    @property
    def public_base(self) -> str:
        """PUBLIC_URL, or the address the HTTP server listens on."""
        return self.public_url or f"http://{self.http_host}:{self.http_port}"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse KEY=VALUE lines; `#` comments, blank lines, `export ` and quotes allowed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"Tệp {path}, dòng {number}: không hiểu dòng này (cần dạng TÊN=giá_trị).")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def load_settings(env: dict[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
    """Build Settings from `env` (default: os.environ) over the `.env` file."""
    merged: dict[str, str] = read_dotenv(dotenv) if dotenv else {}
    merged.update(os.environ if env is None else env)

    def get(name: str) -> str | None:
        value = merged.get(name)
        return value.strip() if value and value.strip() else None

    return Settings(
        database_path=_database_path(get("DATABASE_URL")),
        content_dir=Path(get("CONTENT_DIR") or _default_content_dir()),
        timezone=_timezone(get("TIMEZONE")),
        telegram_bot_token=_token("TELEGRAM_BOT_TOKEN", get("TELEGRAM_BOT_TOKEN")),
        telegram_api_url=_url("TELEGRAM_API_URL", get("TELEGRAM_API_URL") or Settings.telegram_api_url),
        telegram_staff_ids=_id_list("TELEGRAM_STAFF_IDS", get("TELEGRAM_STAFF_IDS")),
        telegram_staff_chat_id=_chat_id("TELEGRAM_STAFF_CHAT_ID", get("TELEGRAM_STAFF_CHAT_ID")),
        telegram_rate_per_second=_rate("TELEGRAM_RATE_PER_SECOND", get("TELEGRAM_RATE_PER_SECOND"), 30),
        telegram_group_rate_per_minute=_rate(
            "TELEGRAM_GROUP_RATE_PER_MINUTE", get("TELEGRAM_GROUP_RATE_PER_MINUTE"), 20
        ),
        telegram_chat_rate_per_second=_rate(
            "TELEGRAM_CHAT_RATE_PER_SECOND", get("TELEGRAM_CHAT_RATE_PER_SECOND"), 1
        ),
        zalo_bot_token=_token("ZALO_BOT_TOKEN", get("ZALO_BOT_TOKEN")),
        zalo_api_url=_url("ZALO_API_URL", get("ZALO_API_URL") or Settings.zalo_api_url),
        zalo_webhook_secret=_webhook_secret(get("ZALO_WEBHOOK_SECRET")),
        zalo_rate_per_second=_rate("ZALO_RATE_PER_SECOND", get("ZALO_RATE_PER_SECOND"), 5),
        webhook_base_url=_url("WEBHOOK_BASE_URL", get("WEBHOOK_BASE_URL")) if get("WEBHOOK_BASE_URL") else None,
        http_host=get("HTTP_HOST") or "127.0.0.1",
        http_port=_port(get("HTTP_PORT")),
        log_level=_log_level(get("LOG_LEVEL")),
        log_format=_log_format(get("LOG_FORMAT")),
        handoff_remind_hours=_rate("HANDOFF_REMIND_HOURS", get("HANDOFF_REMIND_HOURS"), 4),
        ticket_retention_days=int(_rate("TICKET_RETENTION_DAYS", get("TICKET_RETENTION_DAYS"), 365)),
        rate_limit_messages=int(_rate("RATE_LIMIT_MESSAGES", get("RATE_LIMIT_MESSAGES"), 20)),
        rate_limit_seconds=_rate("RATE_LIMIT_SECONDS", get("RATE_LIMIT_SECONDS"), 60),
        backup_dir=Path(get("BACKUP_DIR") or "") if get("BACKUP_DIR") else None,
        backup_keep=_backup_keep(get("BACKUP_KEEP")),
        backup_at=_clock_time("BACKUP_AT", get("BACKUP_AT"), Settings.backup_at),
        flow_expiry_hours=_rate("FLOW_EXPIRY_HOURS", get("FLOW_EXPIRY_HOURS"), 24),
        **_zalo_oa(get),
        public_url=_url("PUBLIC_URL", get("PUBLIC_URL")) if get("PUBLIC_URL") else None,
        web_session_hours=_rate("WEB_SESSION_HOURS", get("WEB_SESSION_HOURS"), 12),
        web_idle_minutes=_rate("WEB_IDLE_MINUTES", get("WEB_IDLE_MINUTES"), 30),
        web_approval_threshold=_count("WEB_APPROVAL_THRESHOLD", get("WEB_APPROVAL_THRESHOLD")),
        search_process=_switch("SEARCH_PROCESS", get("SEARCH_PROCESS"), default=True),
    )


def _default_content_dir() -> Path:
    """`content` in the working folder; failing that, the content shipped beside the package."""
    here = Path("content")
    shipped = Path(__file__).resolve().parents[2] / "content"
    return here if here.is_dir() or not shipped.is_dir() else shipped


def _database_path(value: str | None) -> Path:
    if value is None:
        return Settings.database_path
    prefix = "sqlite:///"
    if not value.startswith(prefix) or len(value) == len(prefix):
        raise ConfigError(
            f"DATABASE_URL={value!r} không hợp lệ: cần dạng sqlite:///đường/dẫn/tệp.sqlite3 "
            "(DATABASE_URL must be sqlite:///path/to/file.sqlite3)."
        )
    return Path(value[len(prefix) :])


def _timezone(value: str | None) -> str:
    name = value or Settings.timezone
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"TIMEZONE={name!r} không phải múi giờ hợp lệ (ví dụ: Asia/Ho_Chi_Minh)."
        ) from None
    return name


def _token(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if any(ch.isspace() for ch in value) or len(value) < 10:
        raise ConfigError(f"{name} không hợp lệ: mã token phải là một chuỗi liền, không có khoảng trắng.")
    return value


def _url(name: str, value: str | None) -> str:
    parsed = urlparse(value or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"{name}={value!r} không phải địa chỉ http(s) hợp lệ.")
    return (value or "").rstrip("/")


def _id_list(name: str, value: str | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    ids = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
    for item in ids:
        if not item.lstrip("-").isdigit():
            raise ConfigError(f"{name}: {item!r} không phải mã số người dùng (cần các số, cách nhau bởi dấu phẩy).")
    return frozenset(ids)


def _chat_id(name: str, value: str | None) -> str | None:
    if value is not None and not value.lstrip("-").isdigit():
        raise ConfigError(f"{name}={value!r} không phải mã số nhóm chat (ví dụ: -1001234567890).")
    return value


def _rate(name: str, value: str | None, default: float) -> float:
    if value is None:
        return float(default)
    try:
        rate = float(value)
    except ValueError:
        rate = -1.0
    if not rate > 0 or rate > 100_000:
        raise ConfigError(f"{name}={value!r} không hợp lệ: cần một số dương (mặc định {default}).")
    return rate


def _webhook_secret(value: str | None) -> str | None:
    """Zalo accepts 8 to 256 characters; it travels in an HTTP header, so no spaces."""
    if value is not None and (not 8 <= len(value) <= 256 or any(ch.isspace() for ch in value)):
        raise ConfigError("ZALO_WEBHOOK_SECRET không hợp lệ: cần từ 8 đến 256 ký tự, không có khoảng trắng.")
    return value


def _port(value: str | None) -> int:
    if value is None:
        return Settings.http_port
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ConfigError(f"HTTP_PORT={value!r} không hợp lệ: cần một số từ 1 đến 65535.")
    return int(value)


def _log_level(value: str | None) -> str:
    level = (value or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL={value!r} không hợp lệ: chọn một trong {', '.join(LOG_LEVELS)}.")
    return level


def _log_format(value: str | None) -> str:
    form = (value or "text").lower()
    if form not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT={value!r} không hợp lệ: chọn text (mặc định) hoặc json.")
    return form


def _backup_keep(value: str | None) -> int:
    if value is None:
        return Settings.backup_keep
    if not value.isdigit() or not 1 <= int(value) <= 1000:
        raise ConfigError(f"BACKUP_KEEP={value!r} không hợp lệ: cần số bản sao giữ lại, từ 1 đến 1000 (mặc định 7).")
    return int(value)


def _clock_time(name: str, value: str | None, default: str) -> str:
    """"HH:MM" in 24-hour time, normalised to two digits each ("2:30" → "02:30")."""
    if value is None:
        return default
    hours, sep, minutes = value.partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and int(hours) < 24
            and int(minutes) < 60):
        raise ConfigError(f"{name}={value!r} không hợp lệ: cần giờ dạng HH:MM, ví dụ {default}.")
    return f"{int(hours):02d}:{minutes}"


ZALO_OA_TEMPLATES = ("none", "promotion", "transaction")


def _zalo_oa(get) -> dict[str, object]:
    """The ZALO_OA_* settings: all or nothing once ZALO_OA_APP_ID is set."""
    app_id = get("ZALO_OA_APP_ID")
    if app_id is not None and not app_id.isdigit():
        raise ConfigError(f"ZALO_OA_APP_ID={app_id!r} không hợp lệ: cần mã số ứng dụng (App ID) "
                          "trong Zalo for Developers.")
    values: dict[str, object] = {
        "zalo_oa_app_id": app_id,
        "zalo_oa_secret_key": _token("ZALO_OA_SECRET_KEY", get("ZALO_OA_SECRET_KEY")),
        "zalo_oa_webhook_secret": _token("ZALO_OA_WEBHOOK_SECRET", get("ZALO_OA_WEBHOOK_SECRET")),
        "zalo_oa_refresh_token": _token("ZALO_OA_REFRESH_TOKEN", get("ZALO_OA_REFRESH_TOKEN")),
        "zalo_oa_api_url": _url("ZALO_OA_API_URL", get("ZALO_OA_API_URL") or Settings.zalo_oa_api_url),
        "zalo_oa_oauth_url": _url("ZALO_OA_OAUTH_URL", get("ZALO_OA_OAUTH_URL") or Settings.zalo_oa_oauth_url),
        "zalo_oa_rate_per_second": _rate("ZALO_OA_RATE_PER_SECOND", get("ZALO_OA_RATE_PER_SECOND"), 20),
    }
    template = (get("ZALO_OA_TEMPLATE") or "none").lower()
    if template not in ZALO_OA_TEMPLATES:
        raise ConfigError(f"ZALO_OA_TEMPLATE={template!r} không hợp lệ: chọn none (mặc định), "
                          "promotion hoặc transaction.")
    values["zalo_oa_template"] = template
    if app_id is not None:
        for name in ("ZALO_OA_SECRET_KEY", "ZALO_OA_WEBHOOK_SECRET"):
            if values[name.lower()] is None:
                raise ConfigError(f"Đã đặt ZALO_OA_APP_ID nhưng thiếu {name}: lấy nó trong Zalo for Developers "
                                  "(ứng dụng, mục Official Account).")
    return values


def _switch(name: str, value: str | None, *, default: bool) -> bool:
    """On or off: 1/0, true/false, yes/no, on/off (any case); unset: `default`."""
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r} không hợp lệ: cần 1 (bật) hoặc 0 (tắt).")


def _count(name: str, value: str | None) -> int:
    """A whole number ≥ 0 (0: off)."""
    if value is None:
        return 0
    if not value.isdigit():
        raise ConfigError(f"{name}={value!r} không hợp lệ: cần một số nguyên không âm (0: tắt).")
    return int(value)
