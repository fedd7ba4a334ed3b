"""The ZALO_OA_* settings: off by default, all-or-nothing once ZALO_OA_APP_ID is set, one sentence per mistake."""

from __future__ import annotations

import pytest

from bot.kernel.config import ConfigError, load_settings
from tests.conftest import ROOT

GOOD = {"ZALO_OA_APP_ID": "4318251006482953221", "ZALO_OA_SECRET_KEY": "app-secret-123",
        "ZALO_OA_WEBHOOK_SECRET": "oa-secret-456"}


def test_off_by_default_and_read_when_set():
    assert load_settings({}, None).zalo_oa_app_id is None
    settings = load_settings({**GOOD, "ZALO_OA_TEMPLATE": "Promotion", "ZALO_OA_API_URL": "http://127.0.0.1:9/"}, None)
    assert (settings.zalo_oa_app_id, settings.zalo_oa_template, settings.zalo_oa_api_url) == (
        "4318251006482953221", "promotion", "http://127.0.0.1:9")
    assert settings.zalo_oa_oauth_url == "https://oauth.zaloapp.com" and settings.zalo_oa_refresh_token is None


@pytest.mark.parametrize(("change", "named"), [
    ({"ZALO_OA_APP_ID": "my-app"}, "ZALO_OA_APP_ID"),
    ({"ZALO_OA_SECRET_KEY": ""}, "ZALO_OA_SECRET_KEY"),
    ({"ZALO_OA_WEBHOOK_SECRET": ""}, "ZALO_OA_WEBHOOK_SECRET"),
    ({"ZALO_OA_REFRESH_TOKEN": "two words here"}, "ZALO_OA_REFRESH_TOKEN"),
    ({"ZALO_OA_OAUTH_URL": "oauth.zaloapp.com"}, "ZALO_OA_OAUTH_URL"),
    ({"ZALO_OA_TEMPLATE": "zns"}, "ZALO_OA_TEMPLATE"),
    ({"ZALO_OA_RATE_PER_SECOND": "-1"}, "ZALO_OA_RATE_PER_SECOND"),
])
def test_a_wrong_value_is_one_sentence_naming_the_setting(change, named):
    with pytest.raises(ConfigError) as caught:
        load_settings({**GOOD, **change}, None)
    assert named in str(caught.value) and "\n" not in str(caught.value)


def test_the_example_file_loads_and_lists_every_zalo_oa_setting():
    example = ROOT / ".env.example"
    settings = load_settings({}, example)
    assert settings.zalo_oa_app_id is None and settings.zalo_oa_template == "none"
    text = example.read_text(encoding="utf-8")
    for name in ("ZALO_OA_APP_ID", "ZALO_OA_SECRET_KEY", "ZALO_OA_WEBHOOK_SECRET", "ZALO_OA_REFRESH_TOKEN",
                 "ZALO_OA_API_URL", "ZALO_OA_OAUTH_URL", "ZALO_OA_RATE_PER_SECOND", "ZALO_OA_TEMPLATE"):
        assert f"\n{name}=" in text
