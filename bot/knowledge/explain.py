"""`ask QUESTION --explain`: why the bot answers, offers choices or declines, for staff improving content.

Shows the best candidates with the signals their confidence is computed from, and which rule
decided. Operator output (Vietnamese, like the other commands), never shown to residents.
"""

from __future__ import annotations

from bot.knowledge.index import Answer, Hit, KnowledgeIndex

SIGNAL_NAMES = {  # short name shown per candidate, and its meaning (printed once)
    "key_phrase": ("cụm khóa", "phần lớn nhất của tiêu đề / một từ khóa / một từ tình huống có trong câu"),
    "coverage": ("phủ", "phần thông tin của câu được mục giải thích"),
    "nearest_question": ("gần", "gần câu mẫu (hoặc câu trong bài, với mục không có câu mẫu) nhất"),
    "rival": ("đối thủ", "điểm ứng viên kế / điểm mục này (gần 1: sát nút)"),
    "unknown": ("lạ", "tỉ lệ chữ cơ sở kiến thức không có"),
    "question_found": ("câu mẫu", "phần câu mẫu gần nhất có trong câu"),
    "wording": ("diễn đạt", "xác suất cách diễn đạt so với các ứng viên"),
}
DECISIONS = {"answer": "TRẢ LỜI", "choices": "ĐƯA LỰA CHỌN", "decline": "TỪ CHỐI"}


def explain(index: KnowledgeIndex, question: str, limit: int = 3) -> list[str]:
    answer = index.search(question, limit=limit)
    lines = [f"Câu hỏi: {question}", f"Quyết định: {DECISIONS[answer.decision]}", f"Lý do: {reason(index, answer)}"]
    if answer.nearest_outside is not None:
        lines.append("Chủ đề ngoài phạm vi khớp nhất:")
        lines += _hit_lines(0, answer.nearest_outside)
    if answer.hits:
        lines.append("Ứng viên:")
        for rank, hit in enumerate(answer.hits, start=1):
            lines += _hit_lines(rank, hit)
    lines.append("Tín hiệu: " + "; ".join(f"{short}: {meaning}" for short, meaning in SIGNAL_NAMES.values()))
    return lines


def reason(index: KnowledgeIndex, answer: Answer) -> str:
    t = index.thresholds
    if answer.nearest_outside is not None:
        topic = answer.nearest_outside
        return (f"câu hỏi gần chủ đề ngoài phạm vi '{topic.entry.title}' hơn mọi mục kiến thức"
                f" (độ tin cậy {topic.confidence:.2f})")
    best = answer.best
    if best is None:
        return "không mục nào có chữ nào của câu hỏi"
    close = [h for h in answer.hits[1:] if h.score >= t.tie * best.score]
    if answer.decision == "answer":
        return f"độ tin cậy {best.confidence:.2f} ≥ ngưỡng trả lời {t.answer:.2f}, không mục nào sát điểm"
    if answer.decision == "choices":
        return (f"{len(close) + 1} mục sát điểm nhau (≥ {t.tie:.0%} điểm mục đầu) và câu hỏi rõ là trong phạm vi:"
                " để người dân chọn")
    if close:
        return f"các mục sát điểm nhau và độ tin cậy phạm vi dưới ngưỡng {t.answer:.2f}"
    return (f"độ tin cậy {best.confidence:.2f} < ngưỡng trả lời {t.answer:.2f}: thêm câu hỏi mẫu, từ khóa hoặc"
            " từ tình huống (content/situations.yaml) nếu câu này thuộc một mục")


def _hit_lines(rank: int, hit: Hit) -> list[str]:
    model = "mô hình có câu mẫu" if hit.entry.questions else "mô hình chỉ tiêu đề + nội dung"
    label = f"{rank}. " if rank else "   "
    lines = [f"  {label}[{hit.entry.id}] {hit.entry.title}: điểm {hit.score:.2f}, độ tin cậy {hit.confidence:.2f}"
             f" ({model})"]
    if hit.signals is not None:
        lines.append("       " + " · ".join(f"{short} {getattr(hit.signals, name):.2f}"
                                          for name, (short, _meaning) in SIGNAL_NAMES.items()))
    return lines
