"""Broadcast delivery, measured from outside, printed as ratios to the issue's limits.

The fake Telegram Bot API server (tests/fake_telegram.py) runs in this process with Telegram's
limits enforced and scaled 10× (300 messages/s overall, 200/min per group, 10/s per private
chat); the real service runs as `python -m bot run` in a subprocess with the same settings
(TELEGRAM_RATE_PER_SECOND=300, TELEGRAM_GROUP_RATE_PER_MINUTE=200, TELEGRAM_CHAT_RATE_PER_SECOND=10).

1. 5,000 recipients (groups and residents mixed), queued with `python -m bot broadcast send`:
   achieved rate / configured overall limit (≥ 0.95), 429s / sends (≤ 0.5 %), lost and
   duplicated recipients (the fake's record against the outbox; both must be 0).
2. While it runs, 50 residents ask questions: p99 update-to-answer (≤ 1.5 s).
3. Queueing a broadcast to 100,000 recipients (≤ 5 s), then the running service's RSS while it
   delivers it (≤ 200 MB); the broadcast is then cancelled.

4. Baseline: the same recipients sent by a plain loop (every send at once, `asyncio.gather`)
   through PTB's stock `AIORateLimiter` (overall and per-group rates set to the same scaled limits,
   max_retries=5 so that a 429 is retried rather than lost), against a fresh fake with the same
   limits, while the same number of residents ask questions of that PTB application (answered
   with a fixed sentence: no search, so the latency is the pacing's alone). Printed: our rate / its
   rate, its 429s, lost and duplicated, and its p99 update-to-answer. Needs the
   python-telegram-bot[rate-limiter] extra (in the `test` extra).

5. SIGKILL mid-broadcast (issue 11): a fresh service delivers a broadcast to 2,000 recipients
   (same mix, same limits), is killed with SIGKILL once a third has arrived, then restarted until
   every row is sent; the approach of tests/e2e/test_crash.py, with its helpers (tests/crashes.py). In flight at
   the kill: chats the fake had delivered to while their outbox row was still 'pending'. Printed:
   repeats (extra copies after the restart), in flight at the kill, lost, and repeats / in flight
   (≤ 1; every repeated chat must also be one that was in flight).

Run: python bench/broadcast.py [--recipients 5000] [--questions 50] [--big 100000] [--no-baseline]
     [--crash-recipients 2000] [--only-crash]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.service import Service, check_log  # noqa: E402
from bot.store.db import open_database  # noqa: E402
from tests import crashes  # noqa: E402
from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.polling import until  # noqa: E402

TOKEN = "777002:BenchBroadcast_secret-VALUE"
SCALE = 10
RATE, GROUP_PER_MIN, CHAT_PER_S = 30.0 * SCALE, 20.0 * SCALE, 1.0 * SCALE
MARKER = "BENCH-BROADCAST"
QUESTION = "quy vi nguoi ngheo la gi"
P99_LIMIT_S, QUEUE_LIMIT_S, RSS_LIMIT_MB = 1.5, 5.0, 200.0
RATE_FLOOR, LIMITED_CEIL = 0.95, 0.005


class BroadcastService(Service):
    def env(self) -> dict[str, str]:
        env = super().env()
        env.update({
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_RATE_PER_SECOND": str(RATE),
            "TELEGRAM_GROUP_RATE_PER_MINUTE": str(GROUP_PER_MIN),
            "TELEGRAM_CHAT_RATE_PER_SECOND": str(CHAT_PER_S),
            "LOG_LEVEL": "WARNING",
        })
        return env

    @property
    def db_path(self) -> Path:
        return self.workdir / "data" / "bot.sqlite3"


def populate(db_path: Path, groups: int, residents: int, *, first_group: int = 1, first_resident: int = 1) -> None:
    """Registered groups (negative ids) and consenting residents, all in the shipped province."""
    con = sqlite3.connect(db_path)
    localities = ["phan-rang", "thuan-nam", "dong-hai", "ninh-chu"]
    rows = [("telegram", str(-1_000_000_000_000 - i), "group", f"Tổ {i}", localities[i % 4])
            for i in range(first_group, first_group + groups)]
    rows += [("telegram", str(100_000 + i), "private", f"Dân {i}", localities[i % 4])
             for i in range(first_resident, first_resident + residents)]
    with con:
        con.executemany(
            "INSERT INTO chats (channel, chat_id, kind, display_name, locality, consent, consent_at, active,"
            " first_seen, last_seen) VALUES (?, ?, ?, ?, ?, 1, 0, 1, 0, 0)", rows,
        )
    con.close()


async def cli(service: BroadcastService, *args: str) -> tuple[float, str]:
    env = service.env()
    t0 = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=service.workdir, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"python -m bot {' '.join(args)} failed: {err.decode()}")
    return time.monotonic() - t0, out.decode()


def outbox(db_path: Path, broadcast: int) -> dict[str, int]:
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT status, COUNT(*) FROM outbox WHERE broadcast = ? GROUP BY status",
                                (broadcast,)).fetchall())
    finally:
        con.close()


def recipient_ids(groups: int, residents: int) -> list[int]:
    """The chat ids `populate` writes, in the same mix."""
    return ([-1_000_000_000_000 - i for i in range(1, groups + 1)]
            + [100_000 + i for i in range(1, residents + 1)])


async def baseline(groups: int, residents: int, questions: int) -> dict[str, float]:
    """A plain loop through PTB's stock AIORateLimiter, against a fresh fake with the same limits."""
    from telegram.ext import AIORateLimiter, Application, MessageHandler, filters
    from telegram.request import HTTPXRequest

    fake = FakeTelegram(token=TOKEN, limits=(RATE, GROUP_PER_MIN, CHAT_PER_S))
    await fake.start()
    limiter = AIORateLimiter(overall_max_rate=RATE, overall_time_period=1, group_max_rate=GROUP_PER_MIN,
                             group_time_period=60, max_retries=5)
    app = (Application.builder().token(TOKEN).base_url(f"{fake.url}/bot").rate_limiter(limiter)
           .request(HTTPXRequest(connection_pool_size=32)).get_updates_request(HTTPXRequest())
           .concurrent_updates(True).build())

    async def answer(update, context) -> None:
        await update.effective_message.reply_text("Quỹ \"Vì người nghèo\" do Ủy ban MTTQ các cấp vận động.")

    app.add_handler(MessageHandler(filters.TEXT, answer))
    await app.initialize()
    await app.start()
    await app.updater.start_polling(timeout=1)
    chats = recipient_ids(groups, residents)
    text = f"{MARKER}: Họp tổ dân phố lúc 19 giờ tối nay."
    t0 = time.monotonic()
    sends = asyncio.gather(*(app.bot.send_message(chat, text) for chat in chats), return_exceptions=True)
    await fake.wait_for(lambda m: MARKER in m.text, timeout=30)
    askers = [c for c in chats if c > 0][:: max(1, residents // questions)][:questions]
    latencies = await ask_questions(fake, askers, spread=10.0)
    results = await sends
    took = time.monotonic() - t0
    await app.updater.stop()
    await app.stop()
    await app.shutdown()
    marked = [m for m in fake.sent if MARKER in m.text]
    stamps = sorted(c.time for c in fake.calls_to("sendMessage") if MARKER in str(c.params.get("text")))
    per_chat = Counter(m.chat_id for m in marked)
    errors = Counter(type(r).__name__ for r in results if isinstance(r, BaseException))
    out = {
        "rate": (len(marked) - 1) / (stamps[-1] - stamps[0]), "took": took,
        "limited": fake.limit_breaches, "sends": len(fake.calls_to("sendMessage")),
        "lost": len(set(chats) - set(per_chat)), "duplicated": sum(n - 1 for n in per_chat.values() if n > 1),
        "p99": p99(latencies), "median": sorted(latencies)[len(latencies) // 2], "max": max(latencies),
        "errors": sum(errors.values()),
    }
    await fake.close()
    return out


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


async def ask_questions(fake: FakeTelegram, chats: list[int], spread: float) -> list[float]:
    """One question per chat, spread over `spread` seconds; each one's push-to-answer time."""
    latencies: list[float] = []

    async def one(chat: int, delay: float) -> None:
        await asyncio.sleep(delay)
        before = len(fake.sent_to(chat))
        t0 = time.monotonic()
        fake.push_update(fake.text_update(chat, QUESTION))
        while True:
            answers = [m for m in fake.sent_to(chat)[before:] if MARKER not in m.text]
            if answers:
                call = next(c for c in reversed(fake.calls_to("sendMessage"))
                            if str(c.params.get("chat_id")) == str(chat) and MARKER not in str(c.params.get("text")))
                latencies.append(call.time - t0)
                return
            if time.monotonic() - t0 > 30:
                latencies.append(math.inf)
                return
            await asyncio.sleep(0.005)

    await asyncio.gather(*(one(chat, i * spread / len(chats)) for i, chat in enumerate(chats)))
    return latencies


async def crash(recipients: int) -> tuple[bool, list[str]]:
    """5. SIGKILL mid-broadcast, restart: repeats against the sends in flight at the kill."""
    groups = recipients // 5
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="loaphuong-crash-") as tmp:
        fake = FakeTelegram(token=TOKEN, limits=(RATE, GROUP_PER_MIN, CHAT_PER_S))
        await fake.start()
        service = BroadcastService(fake, Path(tmp))
        service.db_path.parent.mkdir()
        await (await open_database(service.db_path)).close()  # migrated, so the CLI can queue before `run`
        populate(service.db_path, groups, recipients - groups)
        _, out = await cli(service, "broadcast", "send", "--to", "all", "--text", crashes.MARKER, "--yes", "--json")
        broadcast = json.loads(out)["id"]
        await service.spawn()
        assert service.proc is not None
        try:
            await until(lambda: len(crashes.copies(fake)) >= recipients // 3, 60,
                                 "a third of the broadcast to arrive")
        finally:
            service.proc.send_signal(signal.SIGKILL)
            await service.proc.wait()
        killed = service.proc.returncode
        await asyncio.sleep(0.3)  # requests already on the wire reach the fake
        at_kill = crashes.copies(fake)
        state = crashes.outbox_states(service.db_path)
        recorded = sum(1 for s in state.values() if s == "sent")
        in_flight = {c for c in at_kill if state.get(c) == "pending"}  # delivered, not yet recorded
        await service.spawn()
        try:
            await until(lambda: crashes.all_sent(service.db_path), 120, "the restarted service to finish")
        finally:
            code, _ = await service.terminate()
            await fake.close()
        total = crashes.copies(fake)
        final = outbox(service.db_path, broadcast)
        problems += check_log(service.log_text())

    repeated = {c for c, n in total.items() if n > 1}
    repeats = sum(n - 1 for n in total.values() if n > 1)
    lost = len(set(state) - set(total))
    outside = len(repeated - in_flight)  # repeated although recorded (or never sent) before the kill
    ratio = repeats / len(in_flight) if in_flight else (0.0 if not repeats else math.inf)
    ok = ratio <= 1 and lost == 0 and outside == 0
    print(f"SIGKILL mid-broadcast to {len(state)} recipients ({groups} groups, {recipients - groups} residents),"
          f" same limits: at the kill {len(at_kill)} delivered, {recorded} recorded sent")
    print(f"  repeats after the restart: {repeats} ({len(repeated)} chats; {outside} of them not in flight);"
          f" in flight at the kill: {len(in_flight)}; lost: {lost}")
    print(f"  repeats / in flight: {ratio:.2f} (limit 1) {'OK' if ok else 'OVER'};"
          f" outbox after: {final}; 429s: {fake.limit_breaches}")
    if killed != -signal.SIGKILL:
        problems.append(f"the first service ended with {killed}, not by the SIGKILL")
    if not 0 < len(at_kill) < len(state):
        problems.append(f"the kill did not land mid-broadcast ({len(at_kill)} of {len(state)} delivered)")
    if sum(final.values()) != len(state):
        problems.append(f"the outbox holds other rows than this broadcast's ({final}, {len(state)} chats)")
    if code != 0:
        problems.append(f"exit code {code} after SIGTERM (restarted service)")
    return ok, problems


def report(ok: bool, problems: list[str]) -> int:
    for problem in problems:
        print(f"PROBLEM: {problem}")
    return 0 if ok and not problems else 1


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--questions", type=int, default=50)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--no-baseline", action="store_true", help="skip the AIORateLimiter baseline")
    parser.add_argument("--crash-recipients", type=int, default=2000, help="recipients of the SIGKILL run (5.)")
    parser.add_argument("--only-crash", action="store_true", help="run only the SIGKILL run (5.)")
    args = parser.parse_args()
    if args.only_crash:
        return report(*await crash(args.crash_recipients))
    groups = args.recipients // 5  # one in five recipients is a group chat
    residents = args.recipients - groups
    problems: list[str] = []
    ok = True

    with tempfile.TemporaryDirectory(prefix="loaphuong-bcast-") as tmp:
        fake = FakeTelegram(token=TOKEN, limits=(RATE, GROUP_PER_MIN, CHAT_PER_S))
        await fake.start()
        service = BroadcastService(fake, Path(tmp))
        await service.spawn()
        fake.push_update(fake.text_update(1, "cảm ơn"))  # ready once it answers
        await fake.wait_for_call("sendMessage", timeout=30)
        populate(service.db_path, groups, residents)

        # ---- 1. the 5,000-recipient broadcast, 2. questions during it
        _, out = await cli(service, "broadcast", "send", "--to", "all", "--text",
                           f"{MARKER}: Họp tổ dân phố lúc 19 giờ tối nay.", "--yes", "--json")
        broadcast = json.loads(out)["id"]
        await fake.wait_for(lambda m: MARKER in m.text, timeout=10)
        askers = [100_000 + i for i in range(1, residents + 1, max(1, residents // args.questions))][:args.questions]
        questions = asyncio.create_task(ask_questions(fake, askers, spread=10.0))
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if not outbox(service.db_path, broadcast).get("pending", 0):
                break
            await asyncio.sleep(0.2)
        latencies = await questions
        state = outbox(service.db_path, broadcast)

        marked = [m for m in fake.sent if MARKER in m.text]
        calls = [c for c in fake.calls_to("sendMessage") if MARKER in str(c.params.get("text"))]
        per_chat = Counter(m.chat_id for m in marked)
        expected = {int(r[0]) for r in sqlite3.connect(service.db_path).execute(
            "SELECT chat_id FROM outbox WHERE broadcast = ?", (broadcast,))}
        lost = len(expected - set(per_chat))
        duplicated = sum(n - 1 for n in per_chat.values() if n > 1)
        stamps = sorted(c.time for c in calls)
        span = stamps[-1] - stamps[0] if len(stamps) > 1 else math.inf
        rate = (len(marked) - 1) / span
        sends = len(fake.calls_to("sendMessage"))  # broadcast and answers: the 429s count over both
        limited = fake.limit_breaches
        worst = p99(latencies)
        print(f"broadcast to {len(expected)} recipients ({groups} groups, {residents} residents),"
              f" limits ×{SCALE}: {RATE:.0f}/s overall, {GROUP_PER_MIN:.0f}/min per group,"
              f" {CHAT_PER_S:.0f}/s per private chat")
        print(f"  achieved rate: {rate:.1f}/s over {span:.1f} s (configured {RATE:.0f}/s: ratio {rate / RATE:.3f};"
              f" floor {RATE_FLOOR})")
        print(f"  429s: {limited} / {sends} sends = {limited / max(sends, 1):.4%}"
              f" (broadcast sends {len(calls)}; ceiling {LIMITED_CEIL:.1%})")
        print(f"  lost: {lost}, duplicated: {duplicated} (outbox: {state}; fake recorded {len(marked)})")
        print(f"  {len(latencies)} questions during it: p99 update-to-answer {worst:.3f} s"
              f" (limit {P99_LIMIT_S} s: ratio {worst / P99_LIMIT_S:.2f}); max {max(latencies):.3f} s,"
              f" median {sorted(latencies)[len(latencies) // 2]:.3f} s")
        ok &= rate / RATE >= RATE_FLOOR and limited / max(sends, 1) <= LIMITED_CEIL
        ok &= lost == 0 and duplicated == 0 and worst <= P99_LIMIT_S and state.get("pending", 0) == 0

        # ---- 3. queueing 100,000 recipients, RSS while the service delivers it
        more = args.big - args.recipients
        populate(service.db_path, more // 5, more - more // 5, first_group=groups + 1, first_resident=residents + 1)
        from bot.audiences.localities import load_strict
        from bot.broadcasts.store import Broadcasts, Target
        from bot.store.db import open_database

        db = await open_database(service.db_path)
        try:
            t0 = time.monotonic()
            big = await Broadcasts(db, load_strict(ROOT / "content")).create(
                "Thông báo thử tải (bench).", Target("all"), created_by="bench")
            queued_s = time.monotonic() - t0
            total = await db.fetchval("SELECT total FROM broadcasts WHERE id = ?", (big,))
        finally:
            await db.close()
        cli_s, _ = await cli(service, "broadcast", "send", "--to", "all", "--text", "Lần hai (CLI).", "--yes",
                             "--at", "2099-01-01T08:00")
        peak_rss = 0.0
        t_end = time.monotonic() + 15
        while time.monotonic() < t_end:
            rss, _peak = service.rss_mb()
            peak_rss = max(peak_rss, rss)
            await asyncio.sleep(0.5)
        rss, hwm = service.rss_mb()
        sent_big = outbox(service.db_path, big).get("sent", 0)
        await cli(service, "broadcast", "cancel", str(big))
        print(f"queueing a broadcast to {total} recipients: {queued_s:.2f} s in-process"
              f" (limit {QUEUE_LIMIT_S:.0f} s: ratio {queued_s / QUEUE_LIMIT_S:.2f});"
              f" the same through `python -m bot broadcast send` (process start included): {cli_s:.2f} s"
              f" (ratio {cli_s / QUEUE_LIMIT_S:.2f})")
        print(f"service RSS while delivering it ({sent_big} sent in 15 s): {peak_rss:.1f} MB"
              f" (limit {RSS_LIMIT_MB:.0f} MB: ratio {peak_rss / RSS_LIMIT_MB:.2f}); VmHWM {hwm:.1f} MB"
              f" (ratio {hwm / RSS_LIMIT_MB:.2f})")
        ok &= queued_s <= QUEUE_LIMIT_S and hwm <= RSS_LIMIT_MB

        code, _ = await service.terminate()
        await fake.close()
        if code != 0:
            problems.append(f"exit code {code} after SIGTERM")
        problems += check_log(service.log_text())
    if not args.no_baseline:
        base = await baseline(groups, residents, args.questions)
        print("baseline, PTB's stock AIORateLimiter pacing a plain loop (same recipients, same fake limits):")
        print(f"  its rate: {base['rate']:.1f}/s (ratio to the configured {RATE:.0f}/s: {base['rate'] / RATE:.3f});"
              f" ours / its: {rate / base['rate']:.2f}; whole loop {base['took']:.1f} s")
        print(f"  its 429s: {base['limited']} / {base['sends']} sends = {base['limited'] / max(base['sends'], 1):.4%};"
              f" lost {base['lost']}, duplicated {base['duplicated']}, sends that raised {base['errors']}")
        print(f"  its p99 update-to-answer during the broadcast: {base['p99']:.3f} s (limit {P99_LIMIT_S} s:"
              f" ratio {base['p99'] / P99_LIMIT_S:.2f}; ours / its: {worst / base['p99']:.2f});"
              f" max {base['max']:.3f} s, median {base['median']:.3f} s")
    crash_ok, crash_problems = await crash(args.crash_recipients)
    return report(ok and crash_ok, problems + crash_problems)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(asyncio.run(main()))
