"""The Zalo OA adapter alone, over real HTTP against tests/fakes/zalo_oa.py and a real SQLite file:
the webhook signature, durable deduplication, single-use refresh tokens, the error classes and
the OA's rules (window, quiet hours, 2,000 characters)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from bot.channels.base import DeliveryError, Inbound, Reply
from bot.channels.zalo_oa.channel import ZaloOAChannel, consent_url, pkce, quiet_wait
from bot.channels.zalo_oa.client import WINDOW_REASON, OAClient
from bot.channels.zalo_oa.store import OAStore
from bot.channels.zalo_oa.webhook import read_event, signature, verify
from bot.store.db import open_database
from tests.fakes.zalo_oa import FakeZaloOA

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOON = datetime(2026, 12, 2, 12, 0, tzinfo=TZ).timestamp()


@pytest.fixture
async def fake():
    async with FakeZaloOA() as fake:
        yield fake


def client_for(fake: FakeZaloOA, db, seed: str | None, **kw) -> OAClient:
    return OAClient(fake.app_id, fake.secret_key, fake.url, fake.url, OAStore(db), seed=seed, **kw)


class Echo:
    def __init__(self) -> None:
        self.seen: list[Inbound] = []

    async def __call__(self, inbound: Inbound) -> list[Reply]:
        self.seen.append(inbound)
        return [Reply(f"echo: {inbound.kind} {inbound.text}")]


def channel_for(fake: FakeZaloOA, db, seed: str | None, handler=None, **kw) -> ZaloOAChannel:
    kw.setdefault("clock", lambda: NOON)
    return ZaloOAChannel(client_for(fake, db, seed), handler or Echo(), webhook_secret=fake.oa_secret, tz=TZ, **kw)


# ---------------------------------------------------------------------- the webhook signature


def test_the_signature_is_plain_sha256_of_app_id_body_timestamp_and_oa_secret():
    raw = b'{"app_id":"1","event_name":"user_send_text","timestamp":"1700000000000"}'
    by_hand = hashlib.sha256(b"1" + raw + b"1700000000000" + b"oa-key").hexdigest()
    assert signature("1", raw, "1700000000000", "oa-key") == by_hand
    assert verify(f"mac={by_hand}", raw, "1", "oa-key")
    assert verify(by_hand.upper(), raw, "1", "oa-key")  # the hex, in either case, with or without mac=
    assert not verify(f"mac={by_hand}", raw, "1", "other-key")  # the app secret is not the OA secret key
    assert not verify(f"mac={by_hand}", raw.replace(b"text", b"link"), "1", "oa-key")  # a changed body
    assert not verify(f"mac={by_hand}", raw, "2", "oa-key")  # another app
    as_hmac = hmac.new(b"oa-key", b"1" + raw + b"1700000000000", hashlib.sha256).hexdigest()
    assert not verify(f"mac={as_hmac}", raw, "1", "oa-key")
    assert not verify("mac=", b"not json", "1", "oa-key")


def test_events_are_read_with_string_ids_and_echoes_ignored(fake: FakeZaloOA):
    event = read_event(fake.text_event("841234", "chào", msg_id="m1"))
    assert event is not None and (event.user_id, event.key, event.text) == ("841234", "m1", "chào")
    image = read_event(fake.image_event("841234", url="https://p.example/x.jpg"))
    assert image is not None and (image.media_type, image.media_url) == ("photo", "https://p.example/x.jpg")
    follow = read_event(fake.follow_event("99"))
    assert follow is not None and follow.name == "follow" and follow.user_id == "99"
    assert read_event(fake.echo_event("841234", "tin của OA")) is None
    assert read_event({"event_name": "user_seen_message", "sender": {"id": "1"}}) is None
    with pytest.raises(ValueError):
        read_event({"event_name": "user_send_text", "message": {"text": "x"}})


# ---------------------------------------------------------------------- tokens


async def test_a_refresh_token_is_stored_before_use_and_never_presented_twice(fake: FakeZaloOA, tmp_path):
    seed = fake.issue_refresh_token()
    db = await open_database(tmp_path / "a.sqlite3")
    try:
        client = client_for(fake, db, seed)
        assert (await client.get_oa())["oa_id"] == fake.oa_id
        stored = await db.fetchone("SELECT refresh_token, access_token FROM zalo_oa_tokens")
        assert stored["refresh_token"] in fake.live_refresh and stored["refresh_token"] != seed
        assert stored["access_token"] in fake.access
        await client.aclose()
        for _ in range(3):  # restarts with the same environment: the seed is spent and stays unused
            again = client_for(fake, db, seed)
            assert (await again.get_oa())["oa_id"] == fake.oa_id
            await again.aclose()
        assert fake.refreshes == 1 and fake.spent_presented == 0
        fake.expire_access_tokens()
        again = client_for(fake, db, seed)
        await asyncio.gather(*(again.get_oa() for _ in range(20)))  # -220 on each: one refresh between them
        assert fake.refreshes == 2 and fake.spent_presented == 0
        assert all(f["refresh_token"] != seed for f in fake.oauth_forms[1:])
        await again.aclose()
    finally:
        await db.close()


async def test_an_access_token_near_its_end_is_refreshed_ahead(fake: FakeZaloOA, db):
    fake.access_life = 1800  # under the hour ahead: refreshed before each use
    client = client_for(fake, db, fake.issue_refresh_token())
    await client.get_oa()
    await client.get_oa()
    assert fake.refreshes == 2 and fake.spent_presented == 0
    await client.aclose()


async def test_two_processes_refreshing_at_once_spend_the_token_once(fake: FakeZaloOA, tmp_path):
    seed = fake.issue_refresh_token()
    first = await open_database(tmp_path / "shared.sqlite3")
    second = await open_database(tmp_path / "shared.sqlite3")  # `zalo-oa sync` beside `run`
    try:
        a, b = client_for(fake, first, seed), client_for(fake, second, seed)
        await asyncio.gather(a.get_oa(), b.get_oa())
        assert fake.refreshes == 1 and fake.spent_presented == 0
        await a.aclose()
        await b.aclose()
    finally:
        await first.close()
        await second.close()


async def test_a_refused_refresh_token_pauses_the_client_and_alerts_once(fake: FakeZaloOA, db):
    alerts: list[str] = []

    async def alert(why: str) -> None:
        alerts.append(why)

    client = client_for(fake, db, "rt-never-issued-by-zalo", on_paused=alert)
    for _ in range(3):
        with pytest.raises(DeliveryError) as caught:
            await client.send_text("u1", "chào")
        assert caught.value.kind == "unauthorized"
    assert client.paused and len(alerts) == 1 and "-14014" in alerts[0]
    assert len(fake.oauth_forms) == 1  # not presented again
    restarted = client_for(fake, db, "rt-never-issued-by-zalo")
    with pytest.raises(DeliveryError):
        await restarted.get_oa()
    assert restarted.paused and len(fake.oauth_forms) == 1
    await client.aclose()


async def test_a_network_fault_on_refresh_is_transient_and_keeps_the_token(fake: FakeZaloOA, db):
    seed = fake.issue_refresh_token()
    fake.oauth_down = True
    client = client_for(fake, db, seed)
    with pytest.raises(DeliveryError) as caught:
        await client.get_oa()
    assert caught.value.kind == "transient" and not client.paused
    fake.oauth_down = False
    assert (await client.get_oa())["oa_id"] == fake.oa_id
    await client.aclose()


# ---------------------------------------------------------------------- errors and rules


async def test_errors_map_to_the_delivery_classes(fake: FakeZaloOA, db):
    client = client_for(fake, db, fake.issue_refresh_token(), quiet_wait=lambda: 1234.0)
    fake.add_follower("u1")
    cases = {-213: ("gone", None), -227: ("gone", None), -230: ("bad_request", None),
             -232: ("bad_request", None), -234: ("rate_limited", 1234.0), -211: ("rate_limited", 3600.0),
             -32: ("rate_limited", 60.0), -201: ("bad_request", None)}
    for code, (kind, retry) in cases.items():
        fake.fail_next("u1", code)
        with pytest.raises(DeliveryError) as caught:
            await client.send_text("u1", "chào")
        assert (caught.value.kind, caught.value.retry_after) == (kind, retry), code
        if code in (-230, -232):
            assert caught.value.reason == WINDOW_REASON
        if code == -211:
            assert caught.value.reason == "quota"
    assert await client.send_text("u1", "x" * 2000)
    with pytest.raises(DeliveryError) as caught:
        await client.send_text("u1", "x" * 2001)  # the fake enforces the limit; the channel splits
    assert caught.value.kind == "bad_request"
    await client.aclose()


def test_quiet_hours_wait_until_six_local_time():
    at = lambda h, m=0: datetime(2026, 12, 2, h, m, tzinfo=TZ).timestamp()  # noqa: E731
    assert quiet_wait(at(12), TZ) == 0 and quiet_wait(at(21, 59), TZ) == 0 and quiet_wait(at(6), TZ) == 0
    assert quiet_wait(at(22), TZ) == 8 * 3600
    assert quiet_wait(at(5, 30), TZ) == 1800


async def test_the_outbox_path_keeps_the_window_quiet_hours_and_the_template(fake: FakeZaloOA, db):
    channel = channel_for(fake, db, fake.issue_refresh_token())
    await channel.start()
    fake.add_follower("old", interacted_ago=8 * 86400)
    fake.add_follower("new")
    channel.store.note("old", NOON - 8 * 86400, True)
    await channel.store.flush()
    before = len(fake.requests)
    with pytest.raises(DeliveryError) as caught:
        await channel.send("old", Reply("Thông báo"))
    assert caught.value.reason == WINDOW_REASON and len(fake.requests) == before  # known: no call spent
    long = "Đoạn văn bản dài. " * 250  # 4,500 characters: three consultation messages
    sent = await channel.send("new", Reply(long))
    assert len(sent.message_ids) == 3 and all(len(m.text) <= 2000 for m in fake.sent_to("new"))
    channel.template = "promotion"
    await channel.send("old", Reply("Thông báo"))
    assert [m.kind for m in fake.sent_to("old")] == ["promotion"]
    assert (await channel.quota()) == {"cs": {"sent": 3, "refused": 0}, "promotion": {"sent": 1, "refused": 0}}
    night = channel_for(fake, db, None, clock=lambda: NOON + 11 * 3600)  # 23:00
    with pytest.raises(DeliveryError) as caught:
        await night.send("new", Reply("Thông báo"))
    assert caught.value.kind == "rate_limited" and caught.value.retry_after == 7 * 3600
    await channel.stop()


# ---------------------------------------------------------------------- receiving


async def test_a_repeated_event_is_handled_once_even_after_a_restart(fake: FakeZaloOA, tmp_path):
    seed = fake.issue_refresh_token()
    fake.add_follower("u7")
    event = fake.text_event("u7", "xin chào")
    db = await open_database(tmp_path / "d.sqlite3")
    try:
        echo = Echo()
        channel = channel_for(fake, db, seed, echo)
        await channel.start()
        assert await channel.process_update(event) is True
        assert await channel.process_update(json.loads(json.dumps(event))) is False
        await channel.drain()
        await channel.stop()
        again = channel_for(fake, db, seed, echo)
        await again.start()
        assert await again.process_update(event) is False  # the durable record survives the restart
        await again.drain()
        await again.stop()
        assert [i.text for i in echo.seen] == ["xin chào"]
        assert [m.text for m in fake.sent_to("u7")] == ["echo: text xin chào"]
        assert again.stats["duplicates"] == 1 and channel.stats["duplicates"] == 1
    finally:
        await db.close()


async def test_follow_and_unfollow_are_told_and_photos_kept(fake: FakeZaloOA, db):
    told: list[tuple[str, list[str], bool]] = []

    async def on_follow(channel: str, ids: list[str], following: bool) -> None:
        told.append((channel, ids, following))

    echo = Echo()
    channel = channel_for(fake, db, fake.issue_refresh_token(), echo, on_follow=on_follow)
    await channel.start()
    await channel.process_update(fake.follow_event("f1"))
    await channel.process_update(fake.follow_event("f1", "unfollow"))
    await channel.process_update(fake.image_event("f1", url="https://p.example/don.jpg", text="đơn"))
    await channel.process_update(fake.echo_event("f1", "OA trả lời"))
    await channel.drain()
    assert told == [("zalo_oa", ["f1"], True), ("zalo_oa", ["f1"], False)]
    [photo] = echo.seen
    assert (photo.kind, photo.media_type, photo.media_id, photo.text) == ("media", "photo", "https://p.example/don.jpg",
                                                                          "đơn")
    assert await channel.store.last_interaction("f1") == NOON  # the channel's clock
    await channel.stop()
    row = await db.fetchone("SELECT following, last_interaction FROM zalo_oa_followers WHERE user_id = 'f1'")
    assert tuple(row) == (0, NOON)  # written at the latest when the channel stops


async def test_the_consent_link_and_callback_store_the_first_tokens(fake: FakeZaloOA, db):
    verifier, challenge, state = pkce()
    link = consent_url(fake.url, fake.app_id, "https://bot.example.vn/zalo-oa/oauth", challenge, state)
    assert "/v4/oa/permission?app_id=" in link and f"code_challenge={challenge}" in link
    channel = channel_for(fake, db, None)
    await channel.start()
    assert not channel.running  # nothing to connect with yet: paused, the service still runs
    await channel.store.save_consent(state, verifier)
    code = fake.consent(challenge)
    assert (await channel.consent_callback({"code": code, "state": "forged"}))[0] == 400
    status, _ = await channel.consent_callback({"code": code, "state": state})
    assert status == 200 and channel.running
    assert (await channel.consent_callback({"code": code, "state": state}))[0] == 400  # once
    fake.add_follower("u1")
    assert (await channel.send("u1", Reply("chào"))).message_ids
    await channel.stop()
