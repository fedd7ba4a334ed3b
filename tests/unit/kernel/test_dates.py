from datetime import datetime
from zoneinfo import ZoneInfo

from bot.kernel.dates import find_local_date, is_local_date, parse_local_date

TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def at(*parts: int) -> float:
    return datetime(*parts, tzinfo=TZ).timestamp()


def test_a_bare_date_is_five_in_the_afternoon_and_a_time_is_taken_as_typed():
    assert parse_local_date("15/12/2026", TZ) == at(2026, 12, 15, 17, 0)
    assert parse_local_date(" 5/1/2027 8h30 ", TZ) == at(2027, 1, 5, 8, 30)
    assert parse_local_date("15/12/2026 lúc 09:00", TZ) == at(2026, 12, 15, 9, 0)


def test_what_is_not_a_real_time_or_not_the_form_is_none():
    assert parse_local_date("31/02/2026", TZ) is None and is_local_date("31/02/2026")
    assert parse_local_date("15/12/2026 25:00", TZ) is None
    assert parse_local_date("mai", TZ) is None and not is_local_date("mai")
    assert parse_local_date("ngày 15/12/2026", TZ) is None


def test_authoring_and_the_cli_keep_their_stricter_forms():
    assert parse_local_date("15/12/2026", TZ, time_required=True) is None
    assert parse_local_date("15/12/2026 08:00", TZ, time_required=True) == at(2026, 12, 15, 8, 0)
    assert parse_local_date("15/12/2026 lúc 08:00", TZ, allow_word=False) is None
    assert not is_local_date("15/12/2026 lúc 08:00", allow_word=False)


def test_a_date_inside_a_sentence_is_found_with_its_place():
    text = "xin lùi đến 30/12/2026 vì mưa bão"
    found = find_local_date(text, TZ)
    assert found is not None and found.when == at(2026, 12, 30, 17, 0) and not found.has_time
    assert text[found.start:found.end] == "30/12/2026"
    assert find_local_date("không có ngày", TZ) is None
    assert find_local_date("30/02/2026", TZ) is not None and find_local_date("30/02/2026", TZ).when is None
