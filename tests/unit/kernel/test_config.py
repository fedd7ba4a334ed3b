from pathlib import Path

import pytest

from bot.kernel.config import ConfigError, load_settings


def test_defaults_without_anything():
    s = load_settings({}, dotenv=None)
    assert s.database_path == Path("data/bot.sqlite3")
    assert s.timezone == "Asia/Ho_Chi_Minh"
    assert s.telegram_bot_token is None
    assert s.telegram_rate_per_second == 30
    assert s.flow_expiry_hours == 24
    assert load_settings({"FLOW_EXPIRY_HOURS": "1.5"}, dotenv=None).flow_expiry_hours == 1.5


def test_dotenv_is_read_and_environment_wins(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text('# comment\nexport TIMEZONE="Asia/Bangkok"\nHTTP_PORT=9000 # inline\nLOG_LEVEL=debug\n')
    s = load_settings({"HTTP_PORT": "9100"}, dotenv=env_file)
    assert (s.timezone, s.http_port, s.log_level) == ("Asia/Bangkok", 9100, "DEBUG")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "postgres://x"),
        ("TIMEZONE", "Asia/Saigonn"),
        ("TELEGRAM_RATE_PER_SECOND", "fast"),
        ("TELEGRAM_GROUP_RATE_PER_MINUTE", "-3"),
        ("HTTP_PORT", "99999"),
        ("LOG_LEVEL", "LOUD"),
        ("TELEGRAM_STAFF_IDS", "12,abc"),
        ("TELEGRAM_API_URL", "api.telegram.org"),
        ("TELEGRAM_BOT_TOKEN", "has space in it"),
        ("TELEGRAM_STAFF_CHAT_ID", "group"),
        ("FLOW_EXPIRY_HOURS", "0"),
        ("WEB_IDLE_MINUTES", "0"),
        ("WEB_IDLE_MINUTES", "nửa giờ"),
    ],
)
def test_wrong_value_names_the_setting(name: str, value: str):
    with pytest.raises(ConfigError) as err:
        load_settings({name: value}, dotenv=None)
    assert name in str(err.value)


def test_bad_dotenv_line_names_file_and_line(tmp_path: Path):
    env_file = tmp_path / ".env"
    env_file.write_text("TIMEZONE=Asia/Ho_Chi_Minh\nthis is not a setting\n")
    with pytest.raises(ConfigError) as err:
        load_settings({}, dotenv=env_file)
    assert "dòng 2" in str(err.value)


def test_web_idle_minutes_default_and_value():
    assert load_settings({}, dotenv=None).web_idle_minutes == 30
    assert load_settings({"WEB_IDLE_MINUTES": "90"}, dotenv=None).web_idle_minutes == 90
    with pytest.raises(ConfigError) as err:
        load_settings({"WEB_IDLE_MINUTES": "-5"}, dotenv=None)
    assert str(err.value).count("\n") == 0 and "WEB_IDLE_MINUTES" in str(err.value)
