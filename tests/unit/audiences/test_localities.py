import json
import shutil
from pathlib import Path

from bot.audiences.localities import load_localities
from tests.conftest import CONTENT, run_cli

TREE = """\
- code: tinh
  name: Tỉnh Khánh Hòa
  aliases: [Ninh Thuận]
- code: phan-rang
  name: Phường Phan Rang
  parent: tinh
- code: kp-1
  name: Khu phố 1
  parent: phan-rang
- code: kp-2
  name: Khu phố 2
  parent: phan-rang
- code: thuan-nam
  name: Xã Thuận Nam
  parent: tinh
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "localities.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def test_shipped_tree_is_valid_and_rooted_in_the_merged_province():
    tree, problems = load_localities(CONTENT)
    assert problems == []
    [root] = tree.roots()
    assert root.code == "khanh-hoa" and root.parent is None
    assert {"phan-rang", "thuan-nam"} <= {c.code for c in tree.children("khanh-hoa")}
    assert len(tree.children("khanh-hoa")) == 65  # the official list after 1/7/2025 (localities import)
    assert all(c.official_code for c in tree.children("khanh-hoa"))


def test_tree_of_any_depth_subtree_and_path(tmp_path: Path):
    tree, problems = load_localities(write(tmp_path, TREE))
    assert problems == []
    assert [i.code for i in tree] == ["tinh", "phan-rang", "kp-1", "kp-2", "thuan-nam"]
    assert tree.subtree("phan-rang") == ["phan-rang", "kp-1", "kp-2"]
    assert set(tree.subtree("tinh")) == {"tinh", "phan-rang", "kp-1", "kp-2", "thuan-nam"}
    assert tree.subtree("nope") == []
    assert [i.code for i in tree.path("kp-2")] == ["tinh", "phan-rang", "kp-2"]
    assert tree.full_name("kp-1") == "Khu phố 1, Phường Phan Rang, Tỉnh Khánh Hòa"


def test_lookup_by_code_alias_or_name_folded(tmp_path: Path):
    tree, _ = load_localities(write(tmp_path, TREE))
    for text in ("phan-rang", "PHAN-RANG", "Phường Phan Rang", "phuong phan rang", "phan rang", "Phan  Rang"):
        assert tree.lookup(text).code == "phan-rang", text
    assert tree.lookup("ninh thuan").code == "tinh"
    assert tree.lookup("xa thuan nam").code == "thuan-nam"
    assert tree.lookup("khu pho") is None  # ambiguous fragment
    assert tree.lookup("") is None


def test_close_match_suggestions(tmp_path: Path):
    tree, _ = load_localities(write(tmp_path, TREE))
    assert tree.lookup("phan-rangg") is None
    assert tree.suggest("phan-rangg")[0].code == "phan-rang"
    assert tree.suggest("thuan nan")[0].code == "thuan-nam"
    assert {i.code for i in tree.suggest("khu pho")[:2]} == {"kp-1", "kp-2"}
    assert tree.suggest("zzzz") == []


def test_problems_name_file_and_line(tmp_path: Path):
    bad = """\
- code: a
  name: A
- code: b
  name: B
  parent: ghost
- code: a
  name: A again
- code: c
  name: C
  parent: d
- code: d
  name: D
  parent: c
- code: Not A Code
  name: X
- code: e
"""
    tree, problems = load_localities(write(tmp_path, bad))
    by_line = {p.line: p.message for p in problems}
    assert all(p.path == tmp_path / "localities.yaml" for p in problems)
    assert "ghost" in by_line[3]
    assert "trùng" in by_line[6] and "dòng 1" in by_line[6]
    assert "vòng lặp" in by_line[8]
    assert "không hợp lệ" in by_line[14]
    assert "thiếu name" in by_line[16]
    assert [i.code for i in tree] == ["a"]  # the broken parts are left out


def test_yaml_error_and_missing_file(tmp_path: Path):
    _, problems = load_localities(tmp_path)
    assert problems and "thiếu tệp" in problems[0].message
    _, problems = load_localities(write(tmp_path, "- code: a\n  name: [unclosed\n"))
    assert problems and problems[0].line >= 2 and "YAML" in problems[0].message


def test_cli_localities_json_and_text():
    result = run_cli("localities", "--json")
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert items[0] == {"code": "khanh-hoa", "name": "Tỉnh Khánh Hòa", "parent": None}
    assert all(set(i) == {"code", "name", "parent"} for i in items)
    assert {"code": "phan-rang", "name": "Phường Phan Rang", "parent": "khanh-hoa"} in items
    text = run_cli("localities")
    assert text.returncode == 0 and "Phường Phan Rang" in text.stdout


def test_content_check_reports_locality_problems(tmp_path: Path):
    content = tmp_path / "content"
    shutil.copytree(CONTENT, content)
    (content / "localities.yaml").write_text("- code: a\n  name: A\n- code: b\n  name: B\n  parent: x\n",
                                             encoding="utf-8")
    result = run_cli("content", "check", env={"CONTENT_DIR": str(content)})
    assert result.returncode == 1
    assert f"{content / 'localities.yaml'}:3:" in result.stdout
