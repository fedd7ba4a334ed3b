import unicodedata

from bot.kernel.vietnamese import Analyzer, fold, has_diacritics, normalize, syllables, tone_key


def test_fold_removes_tones_and_d_stroke():
    assert fold("Đại đoàn kết") == "dai doan ket"
    assert fold("ĐĐK") == "ddk"
    assert fold("Quỹ “Vì người nghèo”") == "quy “vi nguoi ngheo”"


def test_fold_letters_with_two_marks():
    # ế ồ ữ ặ ở carry a vowel mark and a tone: both must go
    assert fold("thế ồn những mặt ở") == "the on nhung mat o"
    assert fold("Tiếng Việt") == "tieng viet"


def test_nfd_input_is_the_same_as_nfc():
    nfd = unicodedata.normalize("NFD", "Bảo hiểm y tế hộ cận nghèo")
    assert normalize(nfd) == "bảo hiểm y tế hộ cận nghèo"
    assert fold(nfd) == "bao hiem y te ho can ngheo"


def test_tone_key_joins_both_tone_placements():
    assert tone_key("hoà") == tone_key("hòa") == "hoa2"
    assert tone_key("thuỷ") == tone_key("thủy")
    assert tone_key("người") == "ngươi2"
    assert tone_key("nhà") != tone_key("nha") != tone_key("nhá")


def test_has_diacritics():
    assert has_diacritics("nhà")
    assert has_diacritics("dd đ")
    assert not has_diacritics("nha dai doan ket")


def test_syllables_drop_punctuation_and_emoji():
    assert syllables("Xin chào!!! 😀 Quỹ VNN, 9,42 tỷ") == ["xin", "chào", "quỹ", "vnn", "9", "42", "tỷ"]
    assert syllables("🙏🙏🙏") == []
    assert syllables("") == []


def test_abbreviations_and_teencode_expand():
    analyzer = Analyzer({"bhyt": "bảo hiểm y tế", "ko": "không", "đđk": "đại đoàn kết", "dc": "được"})
    folded = [t.folded for t in analyzer.tokens("BHYT ko dc ha, nha ĐĐK")]
    assert folded == ["bao", "hiem", "y", "te", "khong", "duoc", "ha", "nha", "dai", "doan", "ket"]
    # the unaccented key matches its accented spelling too (đđk → ddk)
    assert [t.folded for t in analyzer.tokens("ddk")] == ["dai", "doan", "ket"]


def test_meaning_words_are_never_dropped():
    analyzer = Analyzer({})
    folded = [t.folded for t in analyzer.tokens("người không được hỗ trợ")]
    assert folded == ["nguoi", "khong", "duoc", "ho", "tro"]


def test_abbreviations_of_several_syllables_match_as_a_sequence_first():
    analyzer = Analyzer({"tnd tq": "tổ nhân dân tự quản", "tnd": "tổ nhân dân", "tổ tq": "tổ tự quản",
                         "mttq": "mặt trận tổ quốc"})
    assert [t.folded for t in analyzer.tokens("TND TQ là gì")] == ["to", "nhan", "dan", "tu", "quan", "la", "gi"]
    assert [t.folded for t in analyzer.tokens("tnd ở đâu")] == ["to", "nhan", "dan", "o", "dau"]
    assert [t.folded for t in analyzer.tokens("to tq")] == ["to", "tu", "quan"]  # typed without marks too
    assert [t.folded for t in analyzer.tokens("tq mttq")] == ["tq", "mat", "tran", "to", "quoc"]  # "tq" alone stays
    assert all(t.expanded for t in analyzer.tokens("tổ tq"))
    assert {"tu", "quan"} <= {t.folded for t in analyzer.seen()}  # a phrase's words are in the vocabulary


def test_regional_words_expand_only_as_written_with_their_marks():
    analyzer = Analyzer({}, {"răng": "sao", "mần": "làm", "hổng": "không"})
    assert [t.folded for t in analyzer.tokens("mần răng hổng được")] == ["lam", "sao", "khong", "duoc"]
    assert [t.folded for t in analyzer.tokens("rang man hong")] == ["rang", "man", "hong"]  # other words
    assert [t.folded for t in analyzer.tokens("mặn")] == ["man"]
