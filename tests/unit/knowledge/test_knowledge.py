"""Search quality on the labelled set, and the ranking rules that matter for Vietnamese."""


import pytest

from bot.kernel.content import Entry
from bot.kernel.vietnamese import Analyzer
from bot.knowledge.evaluation import evaluate, load_eval, strip_diacritics
from bot.knowledge.index import KnowledgeIndex
from tests.conftest import ROOT

EVAL = load_eval(ROOT / "tests" / "data" / "qa_eval.yaml")


def test_eval_set_is_large_and_points_at_real_entries(content):
    ids = {e.id for e in content.entries}
    assert len(EVAL["in_scope"]) >= 200
    assert len(EVAL["out_of_scope"]) >= 40
    assert {item["id"] for item in EVAL["in_scope"]} <= ids


# Issue 2's floors: 0.95 (as typed) / 0.93 (no diacritics) / 0.90 (declined). Measured now:
# 314/319 = 0.984 / 314/319 = 0.984, declined 68/68 = 1.000 / 67/68 = 0.985 (issue 12, fourth round: the
# misses of dev6-dev16). Nothing is tuned on this set (see bench/qa.py); the margins are ten questions (as
# typed) and six (declined as typed).
FLOOR_AS_TYPED = 0.95
FLOOR_NO_DIACRITICS = 0.93
FLOOR_DECLINED = 0.90


def test_accuracy_floors(index):
    result = evaluate(index, EVAL)
    assert result.accuracy >= FLOOR_AS_TYPED, result.misses
    assert result.decline_rate >= FLOOR_DECLINED, result.false_answers


def test_accuracy_without_any_diacritics(index):
    result = evaluate(index, EVAL, transform=strip_diacritics)
    assert result.accuracy >= FLOOR_NO_DIACRITICS, result.misses
    assert result.decline_rate >= FLOOR_DECLINED, result.false_answers


def _entry(entry_id: str, title: str, body: str, questions: tuple[str, ...] = ()) -> Entry:
    return Entry(id=entry_id, title=title, body=body, questions=questions)


@pytest.fixture
def small_index() -> KnowledgeIndex:
    entries = [
        _entry("nha", "Nhà Đại đoàn kết", "Hỗ trợ xây nhà cho hộ nghèo.", ("ai được xây nhà đại đoàn kết",)),
        _entry("nha-nhe", "Lời chào nhá", "Nhá nha nhá, chào bà con.", ("nói nha nhá thế nào",)),
        _entry("bhyt", "Thẻ bảo hiểm y tế cho hộ cận nghèo", "Ngân sách hỗ trợ mua thẻ BHYT."),
        _entry("quy", "Quỹ Vì người nghèo", "Quỹ giúp người nghèo, hộ khó khăn.", ("quỹ vì người nghèo là gì",)),
    ]
    return KnowledgeIndex(entries, Analyzer({"bhyt": "bảo hiểm y tế", "ddk": "đại đoàn kết"}))


def test_d_stroke_folds_both_ways(small_index):
    assert small_index.search("nha dai doan ket").best.entry.id == "nha"
    assert small_index.search("nhà ddk").best.entry.id == "nha"
    assert small_index.search("NHÀ ĐẠI ĐOÀN KẾT").best.entry.id == "nha"


def test_accented_query_prefers_accented_match(small_index):
    accented = small_index.search("nhà")
    assert accented.hits[0].entry.id == "nha"
    nha_score = {h.entry.id: h.score for h in small_index.search("nhá").hits}
    assert nha_score["nha-nhe"] > nha_score.get("nha", 0)


def test_abbreviation_in_query_finds_full_words(small_index):
    answer = small_index.search("bhyt ho can ngheo")
    assert answer.best.entry.id == "bhyt"
    assert answer.decision == "answer"


def test_typo_is_repaired(small_index):
    assert small_index.search("quy vi nguoi ngheoo la gi").best.entry.id == "quy"


def test_unrelated_question_is_declined(small_index):
    assert small_index.search("rạp phim tối nay chiếu phim gì").decision == "decline"
    assert small_index.search("🙂🙂").decision == "decline"
    assert small_index.search("").decision == "decline"


def test_near_tie_offers_choices():
    entries = [
        _entry("a", "Quỹ Vì người nghèo là gì", "Quỹ giúp người nghèo."),
        _entry("b", "Quỹ Vì người nghèo ở đâu", "Quỹ giúp người nghèo."),
    ]
    answer = KnowledgeIndex(entries, Analyzer({})).search("quỹ vì người nghèo")
    assert answer.decision == "choices"
    assert {h.entry.id for h in answer.hits} == {"a", "b"}


def test_huge_query_is_bounded(index):
    answer = index.search("quỹ vì người nghèo là gì " + "x" * 20_000)
    assert answer.best is not None


def test_mixed_message_is_not_penalised_for_its_unmarked_syllables():
    """"nhận thẻ bao hiem y te": the writer typed marks on two syllables only; the others must
    still count as found in "Thẻ bảo hiểm y tế", as they do when all marks are typed."""
    index = KnowledgeIndex(
        [_entry("the", "Nhận thẻ bảo hiểm y tế ở đâu", "Thẻ được phát tại xã."),
         _entry("quy", "Quỹ Vì người nghèo", "Quỹ giúp người nghèo.")],
        Analyzer({}),
    )
    full = index.search("nhận thẻ bảo hiểm y tế ở đâu").best
    mixed = index.search("nhận thẻ bao hiem y te o dau").best
    assert full.entry.id == mixed.entry.id == "the"
    assert mixed.signals.coverage == pytest.approx(full.signals.coverage, abs=0.05)


def test_writer_who_types_marks_is_taken_literally():
    # Most syllables carry marks, so the unmarked "ba" is "ba" (three), not "bà".
    tokens = Analyzer({}).tokens("nhà tôi có ba người")
    assert KnowledgeIndex._marked(tokens) == [True] * 5
    mixed = Analyzer({}).tokens("nhận thẻ bao hiem y te")
    assert KnowledgeIndex._marked(mixed) == [True, True, False, False, False, False]
    # The words an abbreviation stands for follow the writer: unmarked here.
    expanded = Analyzer({"bhyt": "bảo hiểm y tế"}).tokens("the bhyt o dau")
    assert not any(KnowledgeIndex._marked(expanded))


def test_wording_of_example_questions_tells_sibling_entries_apart():
    """Two entries on the same card share every topic word; residents' questions for each use
    different words, and the wording share follows them."""
    siblings = [
        _entry("thu-tuc", "Thẻ bảo hiểm y tế hộ nghèo", "Ủy ban xã lập danh sách, phát thẻ.",
               ("ai lập danh sách cấp thẻ bảo hiểm y tế", "nhận thẻ bảo hiểm y tế ở đâu",
                "danh sách hộ nghèo được cấp thẻ do xã lập à")),
        _entry("muc", "Thẻ bảo hiểm y tế hộ nghèo", "Ngân sách đóng toàn bộ.",
               ("thẻ bảo hiểm y tế hộ nghèo được hỗ trợ bao nhiêu phần trăm",
                "hộ nghèo có phải đóng tiền thẻ bảo hiểm y tế không")),
    ]
    index = KnowledgeIndex(siblings, Analyzer({}))
    from bot.knowledge.index import features
    feats = features(index.analyzer.tokens("danh sách thẻ bảo hiểm y tế hộ nghèo do ai lập"), True)
    share = index._wording_share([0, 1], feats)
    assert share[0] > 0.6 > share[1]
    assert index.search("danh sách thẻ bảo hiểm y tế hộ nghèo do ai lập").best.entry.id == "thu-tuc"
    assert index.search("thẻ bảo hiểm y tế hộ nghèo được hỗ trợ mấy phần trăm").best.entry.id == "muc"


def test_known_out_of_scope_topic_takes_its_near_misses():
    entries = [_entry("ddk", "Điều kiện được xây nhà Đại đoàn kết", "Hộ nghèo có đất ở, nhà dột nát.",
                      ("nhà như thế nào thì được xây nhà đại đoàn kết", "điều kiện xin nhà đại đoàn kết"))]
    outside = [_entry("ngoai-pham-vi:noxh", "Nhà ở xã hội", "Hỏi Sở Xây dựng.",
                      ("mua nhà ở xã hội cần điều kiện gì", "đăng ký thuê nhà ở xã hội"))]
    without = KnowledgeIndex(entries, Analyzer({}))
    index = KnowledgeIndex(entries, Analyzer({}), outside=outside)
    question = "nhà ở xã hội cần điều kiện gì để mua"
    assert without.search(question).best.entry.id == "ddk"  # the near miss the topic is there for
    near_miss = index.search(question)
    assert near_miss.decision == "decline" and near_miss.outside.id == "ngoai-pham-vi:noxh"
    assert all(h.entry.id == "ddk" for h in near_miss.hits)  # a topic is never offered as an answer
    inside = index.search("điều kiện được xây nhà đại đoàn kết là gì")
    assert inside.decision == "answer" and inside.best.entry.id == "ddk" and inside.outside is None
    # The advice (the topic's body) is not indexed: "Sở Xây dựng" is not what the topic is about.
    topic = len(index.entries) - 1
    assert index.entries[topic].body == "Hỏi Sở Xây dựng." and not index._body[topic]
    assert "so" not in index._strong[topic] and "dung" not in index._strong[topic]


def test_a_near_tie_in_score_that_the_confidence_clearly_breaks_is_no_tie():
    from bot.knowledge.index import SURER_MARGIN, SURER_WINDOW, Hit, _surer_first

    a, b, c = (Entry(id=x, title=x, body=x) for x in "abc")
    tied = (Hit(a, 2.00, 0.20), Hit(b, 1.99, 0.20 + SURER_MARGIN), Hit(c, 1.0, 0.9))
    assert [h.entry.id for h in _surer_first(tied, 0.97)] == ["b", "a", "c"]
    close = (Hit(a, 2.00, 0.80), Hit(b, 1.99, 0.84), Hit(c, 1.0, 0.9))  # confidences close: stays a tie
    assert _surer_first(close, 0.97) == close
    apart = (Hit(a, 2.00, 0.10), Hit(b, 1.50, 0.90))  # not a near tie in score: the score decides
    assert _surer_first(apart, 0.97) == apart
    within = (Hit(a, 2.00, 0.30), Hit(b, 1.86, 0.30 + SURER_MARGIN))  # 7 % apart: inside the search's window
    assert [h.entry.id for h in _surer_first(within, SURER_WINDOW)] == ["b", "a"]
    assert _surer_first(within, 0.97) == within
