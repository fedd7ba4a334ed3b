"""The JSON API: bearer tokens (401 otherwise, in JSON), roles, broadcasts, tickets, supervision,
stats and the OpenAPI document; `web token create/list/revoke` from the CLI."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.unit.broadcasts.test_broadcasts import add_chat
from tests.unit.dashboard.helpers import dashboard


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_no_token_wrong_token_revoked_token_are_401_json(settings):
    async with dashboard(settings) as (client, core):
        token = await core.dashboard.accounts.create_token("portal", "viewer")
        for headers in ({}, {"Authorization": "Basic abc"}, bearer("lp_wrong"), {"Authorization": token}):
            response = await client.get("/api/v1/tickets", headers=headers)
            assert response.status == 401 and (await response.json())["ok"] is False
        assert (await client.get("/api/v1/tickets", headers=bearer(token))).status == 200
        assert await core.dashboard.accounts.revoke_token("portal")
        assert (await client.get("/api/v1/tickets", headers=bearer(token))).status == 401
        missing = await client.get("/api/v1/nothing", headers=bearer(token))
        assert missing.status in (401, 404) and missing.content_type == "application/json"


async def test_broadcasts_through_the_api(settings, tmp_path):
    async with dashboard(settings) as (client, core):
        await add_chat(core.db, "-1001", "group", "phan-rang")
        await add_chat(core.db, "-1002", "group", "ninh-hai")
        viewer = await core.dashboard.accounts.create_token("viewer", "viewer")
        sender = await core.dashboard.accounts.create_token("portal", "sender")
        body = {"text": "Họp tổ", "to": "groups", "locality": "phan-rang"}
        refused = await client.post("/api/v1/broadcasts", json=body, headers=bearer(viewer))
        assert refused.status == 403 and "sender" in (await refused.json())["error"]
        created = await client.post("/api/v1/broadcasts", json=body, headers=bearer(sender))
        assert created.status == 201
        made = await created.json()
        assert made["recipients"] == 1 and made["status"] == "queued"
        shown = await (await client.get(f"/api/v1/broadcasts/{made['id']}", headers=bearer(viewer))).json()
        assert shown == (await core.broadcasts.report(made["id"])).as_json_full()
        assert shown["total"] == 1 and shown["pending"] == 1
        cli = run_cli("broadcast", "show", str(made["id"]), "--json",
                      env={"DATABASE_URL": f"sqlite:///{core.settings.database_path}"})
        assert json.loads(cli.stdout) == shown
        listed = await (await client.get("/api/v1/broadcasts", headers=bearer(viewer))).json()
        assert [b["id"] for b in listed] == [made["id"]]
        for bad in ({"to": "groups"}, {"text": "x", "to": "everyone"}, {"text": "x", "to": "all", "locality": "x"},
                    {"text": "x", "to": "all", "at": "2001-01-01T00:00"}, {"text": "x", "to": "all", "channel": "sms"}):
            response = await client.post("/api/v1/broadcasts", json=bad, headers=bearer(sender))
            assert response.status == 400, bad
        assert (await client.post("/api/v1/broadcasts", data="nope", headers=bearer(sender))).status == 400
        assert (await client.get("/api/v1/broadcasts/999", headers=bearer(viewer))).status == 404
        audit = await core.dashboard.audit.recent()
        assert audit[0]["actor"] == "api:portal" and audit[0]["via"] == "api"


async def test_tickets_supervision_stats_and_openapi(settings):
    async with dashboard(settings) as (client, core):
        token = await core.dashboard.accounts.create_token("portal", "sender")
        chat = await add_chat(core.db, "501", "private", "phan-rang")
        first = await core.handoff.tickets.create("question", chat, "telegram", "501", "Lan", "Hỏi BHYT",
                                                  locality="phan-rang")
        second = await core.handoff.tickets.create("petition", chat, "telegram", "501", "Lan", "Đường ngập")
        await core.handoff.tickets.close(second, "telegram:900")
        everything = await (await client.get("/api/v1/tickets", headers=bearer(token))).json()
        assert [t["id"] for t in everything] == [first, second]
        assert everything[0]["kind"] == "question" and everything[0]["locality"] == "phan-rang"
        assert everything[0]["created_at"].endswith("+07:00")
        closed = await (await client.get("/api/v1/tickets?status=closed", headers=bearer(token))).json()
        assert [t["id"] for t in closed] == [second]
        assert (await client.get("/api/v1/tickets?status=x", headers=bearer(token))).status == 400
        answer = await client.post(f"/api/v1/tickets/{first}/answer", json={"text": "Có"}, headers=bearer(token))
        assert answer.status == 502  # no channel runs in this test: not delivered, not recorded
        assert (await core.handoff.tickets.get(first)).answer is None
        assert (await client.post("/api/v1/tickets/99/answer", json={"text": "x"}, headers=bearer(token))).status == 404
        table = await (await client.get("/api/v1/supervision", headers=bearer(token))).json()
        assert {"period", "localities", "overdue", "upcoming"} <= set(table)
        figures = await (await client.get("/api/v1/stats", headers=bearer(token))).json()
        assert figures["tickets"]["open"] == 1 and figures["tickets"]["closed"] == 1
        spec = await (await client.get("/api/v1/openapi.json")).json()
        assert spec["openapi"].startswith("3.")
        assert set(spec["paths"]) == {"/broadcasts", "/broadcasts/{id}", "/tickets", "/tickets/{id}/answer",
                                      "/supervision", "/stats"}


def test_cli_tokens(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite3'}"}
    made = run_cli("web", "token", "create", "--name", "portal", "--role", "viewer", env=env)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("lp_") and len(token) > 30
    assert run_cli("web", "token", "create", "--name", "portal", "--role", "viewer", env=env).returncode == 1
    listed = json.loads(run_cli("web", "token", "list", "--json", env=env).stdout)
    assert listed[0]["name"] == "portal" and listed[0]["revoked"] is False and token not in json.dumps(listed)
    assert run_cli("web", "token", "revoke", "portal", env=env).returncode == 0
    assert json.loads(run_cli("web", "token", "list", "--json", env=env).stdout)[0]["revoked"] is True
    assert run_cli("web", "token", "revoke", "portal", env=env).returncode == 1
