"""Issue 12: warnings that do not stop the service, and the situation lexicon in content/."""

from __future__ import annotations

import shutil
from pathlib import Path

from bot.kernel.content import Entry, load_content
from bot.kernel.vietnamese import Analyzer
from bot.knowledge.index import KnowledgeIndex
from tests.conftest import CONTENT, run_cli


def db_env(tmp_path: Path, content: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path}/bot.sqlite3", "CONTENT_DIR": str(content)}


def _repeating_content(tmp_path: Path) -> Path:
    """The shipped content plus an entry repeating another's example question, and a topic
    with no entries: both only warnings."""
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    question = (root / "knowledge" / "bhyt-ho-can-ngheo.md").read_text(encoding="utf-8").split("\n  - ")[1]
    question = question.splitlines()[0]
    (root / "knowledge" / "zz-ban-sao.md").write_text(
        f"---\nid: ban-sao\ntitle: Bản sao\nquestions:\n  - {question}\n---\nNội dung khác.\n", encoding="utf-8")
    with (root / "topics.yaml").open("a", encoding="utf-8") as topics:
        topics.write("- id: chu-de-trong\n  title: Chủ đề trống\n")
    return root


def test_warnings_are_reported_with_file_and_line_and_the_service_runs(tmp_path: Path):
    root = _repeating_content(tmp_path)
    check = run_cli("content", "check", env={"CONTENT_DIR": str(root)})
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{root / 'knowledge' / 'zz-ban-sao.md'}:5: cảnh báo: câu hỏi mẫu" in check.stdout
    assert f"{root / 'topics.yaml'}:" in check.stdout and "chu-de-trong" in check.stdout
    strict = run_cli("content", "check", "--strict", env={"CONTENT_DIR": str(root)})
    assert strict.returncode == 1

    chat = run_cli("chat", stdin="quy vi nguoi ngheo la gi\n", env=db_env(tmp_path, root))
    assert chat.returncode == 0, chat.stderr
    assert "Vì người nghèo" in chat.stdout
    assert chat.stderr.count("content: 2 warnings") == 1, chat.stderr


def test_missing_title_is_still_an_error(tmp_path: Path):
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    (root / "knowledge" / "hong.md").write_text("---\nid: hong\n---\nNội dung.\n", encoding="utf-8")
    assert not load_content(root, strict=False).warnings
    assert run_cli("content", "check", env={"CONTENT_DIR": str(root)}).returncode == 1
    assert run_cli("chat", stdin="xin chào\n", env=db_env(tmp_path, root)).returncode == 1


def test_situation_lexicon_errors_name_file_and_line(tmp_path: Path):
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    (root / "situations.yaml").write_text(
        "situations:\n  - entry: cuu-tro-thien-tai\n    words: [bão lũ]\n  - entry: khong-co-muc\n"
        "    words: [tốc mái]\n  - entry: nha-ddk-dieu-kien\n    words: []\n"
        "  - entry: nha-dai-doan-ket\n    also: [nha-ddk-dang-ky, khong-co-anh-em]\n    words: [nhà dột]\n",
        encoding="utf-8")
    check = run_cli("content", "check", env={"CONTENT_DIR": str(root)})
    assert check.returncode == 1
    assert f"{root / 'situations.yaml'}:4: không có mục kiến thức" in check.stdout
    assert f"{root / 'situations.yaml'}:6: 'nha-ddk-dieu-kien': words" in check.stdout
    assert f"{root / 'situations.yaml'}:8: không có mục kiến thức hay chủ đề ngoài phạm vi 'khong-co-anh-em'" \
        in check.stdout
    refused = run_cli("chat", stdin="xin chào\n", env=db_env(tmp_path, root))
    assert refused.returncode == 1 and "khong-co-muc" in refused.stderr


def test_situation_words_find_the_program_a_resident_does_not_name():
    entries = [
        Entry(id="cuu-tro", title="Cứu trợ thiên tai", body="Ban vận động cứu trợ giúp gia đình bị thiệt hại."),
        Entry(id="nha", title="Nhà Đại đoàn kết", body="Hỗ trợ xây, sửa nhà cho hộ nghèo."),
    ]
    plain = KnowledgeIndex(entries, Analyzer())
    lexicon = KnowledgeIndex(entries, Analyzer(), situations={"cuu-tro": ["tốc mái", "gió lốc"],
                                                             "nha": ["tường đất", "mái dột"]})
    question = "trận gió lốc tối qua làm tốc mái nhà tôi"
    assert plain.search(question).decision == "decline"
    answer = lexicon.search(question)
    assert (answer.decision, answer.best.entry.id) == ("answer", "cuu-tro")
    assert lexicon.search("nha toi tuong dat, mua la mai dot").best.entry.id == "nha"


def test_also_lends_the_situations_to_siblings_that_answer_other_questions_about_them():
    entries = [
        Entry(id="dieu-kien", title="Ai được hỗ trợ xây nhà Đại đoàn kết?", body="Hộ nghèo có nhà tạm.",
              questions=("nhà thế nào thì được hỗ trợ xây nhà",)),
        Entry(id="dang-ky", title="Đăng ký xin hỗ trợ nhà Đại đoàn kết ở đâu?", body="Nộp đơn ở ban công tác.",
              questions=("nộp đơn xin nhà đại đoàn kết ở đâu", "đăng ký xin xây nhà thế nào")),
    ]
    words = ["mối mọt", "mái dột", "vách đất"]
    alone = KnowledgeIndex(entries, Analyzer(), situations={"dieu-kien": words})
    shared = KnowledgeIndex(entries, Analyzer(), situations={"dieu-kien": words}, related={"dang-ky": words})
    situation, registration = "nhà tôi vách đất, mối mọt, mái dột", "nhà tôi vách đất mối mọt mái dột, đăng ký ở đâu"
    assert shared.search(situation).best.entry.id == "dieu-kien"
    assert alone.search(registration).best.entry.id == "dieu-kien"  # without `also:` the situation wins
    answer = shared.search(registration)
    assert (answer.decision, answer.best.entry.id) == ("answer", "dang-ky")


def test_entries_without_example_questions_are_answered_from_title_and_body(content):
    """The shipped knowledge base stripped of example questions and keywords (an imported FAQ of
    titles and bodies) still answers a development set and declines its out-of-scope questions.
    Measured when written (bench/qa.py prints the full body-only benchmark): 0.71 / 0.98."""
    import dataclasses

    from bot.knowledge import out_of_scope
    from bot.knowledge.evaluation import evaluate, load_eval
    from tests.conftest import ROOT

    bare = [dataclasses.replace(e, questions=(), keywords=()) for e in content.entries]
    outside, _ = out_of_scope.load(content.root)
    index = KnowledgeIndex(bare, Analyzer(content.expansions), outside=outside)
    result = evaluate(index, load_eval(ROOT / "bench" / "data" / "qa_dev3.yaml"))
    assert result.accuracy >= 0.65, result.misses
    assert result.decline_rate >= 0.93, result.false_answers


# Short abbreviations residents type for a program (content/synonyms.yaml), and the entry each means.
PROGRAMS = {"ddk": "nha-dai-doan-ket", "nhà đđk": "nha-dai-doan-ket", "vnn": "quy-vi-nguoi-ngheo",
            "qvnn": "quy-vi-nguoi-ngheo", "bhyt cn": "bhyt-ho-can-ngheo", "mttq": "mttq-la-gi",
            "bctmt": "ban-cong-tac-mat-tran", "tnd tq": "to-nhan-dan-tu-quan", "pbxh": "phan-bien-xa-hoi",
            "ttnd": "nguoi-dan-giam-sat", "đnnd là gì": "doi-ngoai-nhan-dan"}


def test_program_abbreviations_resolve_to_the_program(index):
    got = {q: (a.decision, a.best.entry.id if a.best else None) for q, a in
           ((q, index.search(q)) for q in PROGRAMS)}
    assert got == {q: ("answer", entry) for q, entry in PROGRAMS.items()}


def test_an_abbreviation_given_two_meanings_is_a_warning_with_its_line(tmp_path: Path):
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    path = root / "synonyms.yaml"
    text = path.read_text(encoding="utf-8").replace("teencode:\n", "teencode:\n  zz: zô zô\n  ZZ: khác hẳn\n", 1)
    path.write_text(text, encoding="utf-8")
    content = load_content(root, strict=False)
    [warning] = [w for w in content.warnings if w.path == path]
    line = text.splitlines().index("  ZZ: khác hẳn") + 1
    assert warning.line == line and "'ZZ' đã có ở dòng" in warning.message
    assert not content.problems


def test_a_regional_key_must_be_one_marked_word(tmp_path: Path):
    root = tmp_path / "content"
    shutil.copytree(CONTENT, root)
    path = root / "synonyms.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "  rang: sao\n", encoding="utf-8")
    content = load_content(root, strict=False)
    [problem] = [p for p in content.problems if p.path == path]
    assert problem.line == len(path.read_text(encoding="utf-8").splitlines()) and "regional" in problem.message
    assert load_content(CONTENT).regional["răng"] == "sao"
