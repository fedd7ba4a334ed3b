import json
from pathlib import Path

import pytest

from bot.app.wiring import Core, build_core
from bot.channels.base import Inbound
from bot.kernel.config import Settings
from tests.conftest import run_cli

GROUP = "-100777"


@pytest.fixture
async def core(settings: Settings):
    core = await build_core(settings)
    yield core
    await core.close()


def in_group(text: str = "", *, admin: bool = True, user: str = "11", kind: str = "text",
             option: str | None = None, chat_id: str = GROUP, **extra) -> Inbound:
    return Inbound("telegram", chat_id, user, kind=kind, chat_kind="group", text=text, option=option,
                   chat_title="Tổ dân phố 3", display_name="Chị Lan", is_group_admin=admin, **extra)


def in_private(text: str = "", *, option: str | None = None, user: str = "501") -> Inbound:
    return Inbound("telegram", user, user, kind="option" if option else "text", text=text, option=option,
                   display_name="Anh Minh")


async def chat_row(core: Core, chat_id: str):
    return await core.chats.get("telegram", chat_id)


async def test_admin_registers_group_with_a_code(core: Core):
    [reply] = await core.dialogue.handle(in_group("/dangky phan-rang"))
    assert "Phường Phan Rang" in reply.text
    chat = await chat_row(core, GROUP)
    assert chat.kind == "group" and chat.locality == "phan-rang" and chat.consent and chat.active


async def test_name_without_diacritics_works_too(core: Core):
    await core.dialogue.handle(in_group("/dangky@LoaPhuongBot xa thuan nam"))
    assert (await chat_row(core, GROUP)).locality == "thuan-nam"


async def test_non_admin_is_refused_unless_the_channel_says_admin(core: Core):
    [reply] = await core.dialogue.handle(in_group("/dangky phan-rang", admin=False))
    assert reply.text == core.dialogue.say("dangky_not_admin")
    assert (await chat_row(core, GROUP)).locality is None
    asked = []

    async def channel_says_admin(inbound: Inbound) -> bool:
        asked.append((inbound.chat_id, inbound.user_id))
        return True

    core.registration.is_admin = channel_says_admin
    await core.dialogue.handle(in_group("/dangky phan-rang", admin=False))
    assert asked == [(GROUP, "11")]
    assert (await chat_row(core, GROUP)).locality == "phan-rang"


async def test_wrong_code_suggests_close_matches_with_buttons(core: Core):
    [reply] = await core.dialogue.handle(in_group("/dangky phan-ran"))
    assert "phan-ran" in reply.text and "Phường Phan Rang" in reply.text
    assert reply.options[0].data == "grp:s:phan-rang"
    assert all(len(o.data.encode()) <= 64 for o in reply.options)
    [done] = await core.dialogue.handle(in_group(kind="option", option="grp:s:phan-rang"))
    assert "Phường Phan Rang" in done.text
    assert (await chat_row(core, GROUP)).locality == "phan-rang"


async def test_button_list_when_no_code_given(core: Core):
    [reply] = await core.dialogue.handle(in_group("/dangky"))
    datas = [o.data for o in reply.options]
    assert "grp:s:khanh-hoa" in datas and "grp:s:phan-rang" in datas
    refused = await core.dialogue.handle(in_group(kind="option", option="grp:s:phan-rang", admin=False))
    assert refused[0].text == core.dialogue.say("dangky_not_admin")
    assert (await chat_row(core, GROUP)).locality is None


async def test_dangky_in_private_points_to_diaban(core: Core):
    [reply] = await core.dialogue.handle(in_private("/dangky phan-rang"))
    assert reply.text == core.dialogue.say("dangky_private")


async def test_resident_subscribes_with_explicit_consent_and_stops_at_once(core: Core):
    [tree] = await core.dialogue.handle(in_private("/diaban"))
    assert "sub:p:phan-rang" in [o.data for o in tree.options]
    assert (await chat_row(core, "501")).consent is False  # nothing stored before consent
    [question] = await core.dialogue.handle(in_private(option="sub:p:phan-rang"))
    assert [o.data for o in question.options] == ["sub:y:phan-rang", "sub:x"]
    assert (await chat_row(core, "501")).consent is False
    [done] = await core.dialogue.handle(in_private(option="sub:y:phan-rang"))
    assert "Phường Phan Rang" in done.text
    chat = await chat_row(core, "501")
    assert chat.consent and chat.locality == "phan-rang"
    [stopped] = await core.dialogue.handle(in_private("/huy"))
    assert stopped.text == core.dialogue.say("huy_done")
    assert (await chat_row(core, "501")).consent is False
    [again] = await core.dialogue.handle(in_private("/huy"))
    assert again.text == core.dialogue.say("huy_not_subscribed")


async def test_declining_consent_subscribes_nothing(core: Core):
    await core.dialogue.handle(in_private("/diaban"))
    [reply] = await core.dialogue.handle(in_private(option="sub:x"))
    assert reply.text == core.dialogue.say("diaban_declined")
    assert (await chat_row(core, "501")).consent is False


async def test_diaban_with_a_name_goes_straight_to_consent(core: Core):
    [question] = await core.dialogue.handle(in_private("/diaban thuan nam"))
    assert question.options[0].data == "sub:y:thuan-nam"


async def test_group_events_joined_left_migrated(core: Core):
    replies = await core.dialogue.handle(in_group(kind="joined"))
    assert core.dialogue.say("group_register_hint") in [r.text for r in replies]
    await core.dialogue.handle(in_group("/dangky phan-rang"))
    await core.dialogue.handle(in_group(kind="migrated", new_chat_id="-100888"))
    assert await chat_row(core, GROUP) is None
    moved = await chat_row(core, "-100888")
    assert moved.locality == "phan-rang" and moved.consent and moved.active
    await core.dialogue.handle(in_group(kind="left", chat_id="-100888"))
    assert (await chat_row(core, "-100888")).active is False


async def test_migration_when_the_new_chat_already_spoke(core: Core):
    await core.dialogue.handle(in_group("/dangky phan-rang"))
    await core.dialogue.handle(in_group("xin chào", chat_id="-100999", addressed=False))
    await core.dialogue.handle(in_group(kind="migrated", new_chat_id="-100999"))
    moved = await chat_row(core, "-100999")
    assert moved.locality == "phan-rang" and moved.consent
    assert await chat_row(core, GROUP) is None


async def test_group_admin_can_unregister(core: Core):
    await core.dialogue.handle(in_group("/dangky phan-rang"))
    [refused] = await core.dialogue.handle(in_group("/huy", admin=False))
    assert refused.text == core.dialogue.say("dangky_not_admin")
    await core.dialogue.handle(in_group("/huy"))
    assert (await chat_row(core, GROUP)).consent is False


# ---------------------------------------------------------------------- CLI


def env_for(tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}"}


def test_cli_groups_add_and_list(tmp_path: Path):
    env = env_for(tmp_path)
    added = run_cli("groups", "add", "--channel", "telegram", "--chat-id", "-1001", "--locality", "phan-rang",
                    "--title", "Tổ 1", env=env)
    assert added.returncode == 0, added.stderr
    again = run_cli("groups", "add", "--channel", "telegram", "--chat-id", "-1001", "--locality", "thuan-nam",
                    env=env)
    assert again.returncode == 0 and "cập nhật" in again.stdout
    wrong = run_cli("groups", "add", "--channel", "telegram", "--chat-id", "-1002", "--locality", "phan-ran",
                    env=env)
    assert wrong.returncode == 2 and "phan-rang" in wrong.stderr
    bad_id = run_cli("groups", "add", "--channel", "telegram", "--chat-id", "abc", "--locality", "phan-rang",
                     env=env)
    assert bad_id.returncode == 2 and "chat_id" in bad_id.stderr
    listed = run_cli("groups", "list", "--json", env=env)
    [group] = json.loads(listed.stdout)
    assert group["chat_id"] == "-1001" and group["locality"] == "thuan-nam" and group["title"] == "Tổ 1"
    assert group["registered"] is True and group["active"] is True


def test_cli_groups_import_names_bad_rows_keeps_good_ones_idempotent(tmp_path: Path):
    env = env_for(tmp_path)
    csv_file = tmp_path / "groups.csv"
    csv_file.write_text(
        "channel,chat_id,locality,title\n"
        "telegram,-2001,phan-rang,Tổ 1 Phan Rang\n"
        "telegram,-2002,Xã Thuận Nam,\"Thôn 2, Thuận Nam\"\n"
        "fax,-2003,phan-rang,Sai kênh\n"
        "telegram,-2004,khong-co,Sai mã\n"
        "\n"
        "telegram,-2001,ca-na,Trùng\n"
        "telegram,,phan-rang,Thiếu id\n",
        encoding="utf-8",
    )
    first = run_cli("groups", "import", str(csv_file), env=env)
    assert first.returncode == 1
    assert f"{csv_file}:4:" in first.stderr and f"{csv_file}:5:" in first.stderr
    assert f"{csv_file}:7:" in first.stderr and f"{csv_file}:8:" in first.stderr
    assert f"{csv_file}:2:" not in first.stderr and f"{csv_file}:3:" not in first.stderr
    assert "2 nhóm (2 mới" in first.stdout
    second = run_cli("groups", "import", str(csv_file), env=env)
    assert "2 nhóm (0 mới, 2 cập nhật)" in second.stdout
    groups = json.loads(run_cli("groups", "list", "--json", env=env).stdout)
    assert sorted((g["chat_id"], g["locality"]) for g in groups) == [("-2001", "phan-rang"), ("-2002", "thuan-nam")]


def test_cli_import_rejects_a_wrong_header(tmp_path: Path):
    csv_file = tmp_path / "groups.csv"
    csv_file.write_text("id,where\n1,2\n", encoding="utf-8")
    result = run_cli("groups", "import", str(csv_file), env=env_for(tmp_path))
    assert result.returncode == 1 and f"{csv_file}:1:" in result.stderr


async def test_cli_lists_unregistered_groups(tmp_path: Path, settings: Settings):
    settings = Settings(database_path=tmp_path / "bot.sqlite3", content_dir=settings.content_dir)
    core = await build_core(settings)
    try:
        await core.dialogue.handle(in_group(kind="joined", chat_id="-3001"))
        await core.dialogue.handle(in_group("/dangky phan-rang", chat_id="-3002"))
    finally:
        await core.close()
    result = run_cli("groups", "list", "--unregistered", "--json", env=env_for(tmp_path))
    assert [g["chat_id"] for g in json.loads(result.stdout)] == ["-3001"]
