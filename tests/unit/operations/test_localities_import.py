"""`localities import` on the real vietnam-provinces data, into a temporary CONTENT_DIR and database."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.audiences.localities import Localities, load_localities
from bot.operations.localities_import import import_province, load_source, plan_import, render, validate
from bot.store.db import open_database
from tests.conftest import CONTENT, run_cli

vietnam_provinces = pytest.importorskip("vietnam_provinces")


def package_wards(province_code: int) -> list[dict]:
    data = json.loads(vietnam_provinces.NESTED_DIVISIONS_JSON_PATH.read_text(encoding="utf-8"))
    [province] = [p for p in data if p["code"] == province_code]
    return province["wards"]


@pytest.fixture
def content(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    shutil.copytree(CONTENT, folder)
    return folder


def env_for(tmp_path: Path, content: Path) -> dict[str, str]:
    return {"CONTENT_DIR": str(content), "DATABASE_URL": f"sqlite:///{tmp_path}/bot.sqlite3"}


def test_cli_import_writes_every_unit_of_the_package_and_keeps_codes_and_aliases(tmp_path: Path, content: Path):
    with (content / "localities.yaml").open("a", encoding="utf-8") as tree_file:  # a khu phố staff added
        tree_file.write("\n- code: kp-3-phan-rang\n  name: Khu phố 3\n  parent: phan-rang\n")
    result = run_cli("localities", "import", "--province", "khanh hoa", env=env_for(tmp_path, content))
    assert result.returncode == 0, result.stderr
    assert "65 đơn vị (48 xã, 16 phường, 1 đặc khu)" in result.stdout
    tree, problems = load_localities(content)
    assert problems == []
    wards = package_wards(56)
    communes = tree.children("khanh-hoa")
    assert len(communes) == len(wards) == 65
    assert {c.official_code for c in communes} == {f"{w['code']:05d}" for w in wards}
    assert {c.name for c in communes} == {w["name"] for w in wards}
    # the seed's codes are kept where the unit exists with that name; the khu phố is carried over
    for code, name in (("phan-rang", "Phường Phan Rang"), ("dong-hai", "Phường Đông Hải"), ("ca-na", "Xã Cà Ná"),
                       ("ninh-chu", "Phường Ninh Chử"), ("bao-an", "Phường Bảo An"), ("thuan-nam", "Xã Thuận Nam")):
        assert tree.get(code) is not None and tree.get(code).name == name
    assert [c.code for c in tree.children("phan-rang")] == ["kp-3-phan-rang"]
    # former names still find their units, with or without diacritics
    assert tree.lookup("Ninh Thuận").code == tree.lookup("ninh thuan").code == "khanh-hoa"
    assert tree.lookup("Phan Rang–Tháp Chàm").code == tree.lookup("phan rang thap cham").code == "phan-rang"
    assert tree.lookup("dac khu truong sa").official_code == "22736"
    listed = json.loads(run_cli("localities", "--json", env=env_for(tmp_path, content)).stdout)
    assert len(listed) == 67 and all(set(i) == {"code", "name", "parent"} for i in listed)
    checked = run_cli("content", "check", env=env_for(tmp_path, content))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_shipped_file_is_what_the_import_writes(tmp_path: Path):
    source = load_source()
    current, _ = load_localities(CONTENT)
    plan = plan_import(source.find("Khánh Hòa"), current, {})
    assert render(plan, source) == (CONTENT / "localities.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["Khánh Hòa", "KHANH HOA", "Tỉnh Khánh Hoà", "khanh-hoa", "56"])
def test_province_names_with_or_without_diacritics(name: str):
    assert load_source().find(name).unit.official_code == "56"


def test_every_province_of_the_package_makes_a_valid_tree():
    source = load_source()
    assert len(source.provinces) == 34
    assert sum(len(p.wards) for p in source.provinces) == 3321
    for province in source.provinces:
        plan = plan_import(province, Localities([]), {})
        assert validate(render(plan, source)) == [], province.unit.name
        assert len(plan.items) == len(province.wards) + 1


async def test_codes_in_use_that_would_disappear_are_reported_and_the_file_kept(tmp_path: Path, content: Path):
    db = await open_database(tmp_path / "bot.sqlite3")
    await db.write("INSERT INTO chats (channel, chat_id, kind, locality, consent, active, first_seen, last_seen)"
                   " VALUES ('telegram', '-5', 'group', 'phuoc-my-cu', 1, 1, 0, 0)")
    await db.write("INSERT INTO chats (channel, chat_id, kind, locality, consent, active, first_seen, last_seen)"
                   " VALUES ('telegram', '-6', 'group', 'phan-rang', 1, 1, 0, 0)")
    await db.close()
    before = (content / "localities.yaml").read_text(encoding="utf-8")
    outcome = await import_province("Khánh Hòa", content, tmp_path / "bot.sqlite3")
    assert not outcome.written and outcome.plan.missing_in_use == {"phuoc-my-cu": {"chats": 1}}
    env = env_for(tmp_path, content)
    refused = run_cli("localities", "import", "--province", "Khánh Hòa", env=env)
    assert refused.returncode == 1
    assert "phuoc-my-cu (nhóm chat / người đăng ký: 1)" in refused.stderr and "--force" in refused.stderr
    assert (content / "localities.yaml").read_text(encoding="utf-8") == before
    forced = run_cli("localities", "import", "--province", "Khánh Hòa", "--force", env=env)
    assert forced.returncode == 0 and "phuoc-my-cu" in forced.stderr
    unknown = run_cli("localities", "import", "--province", "Khanh Hao", env=env)
    assert unknown.returncode == 2 and "Khánh Hòa" in unknown.stderr and "Traceback" not in unknown.stderr
