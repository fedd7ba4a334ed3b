"""Recurring series and quarterly summaries at scale, printed as ratios to the issue's limits.

1. Start-up: 10,000 active series in the table; `SeriesScheduler.start()` reads them, builds one
   APScheduler job a distinct schedule and looks for missed runs. Limit 2 s. Twice: sharing 8
   schedules (cron, aliases, first working day of the quarter: what committees use), and the worst
   case, 10,000 different schedules (one job each).
2. One firing to 1,000 groups, the text with per-locality placeholders (one broadcast per locality,
   supervision facts read for each): `SeriesStore.fire`, recipients read, outbox written. Limit 1 s.
3. `Summaries.quarter` for 3,321 communes (34 provinces; the whole country's communes after 2025) with
   a year of activity: 26,568 supervision plans, 3,321 groups and 33,210 subscribers, 100 broadcasts to
   every group (332,100 sends, half acknowledged), 200,000 questions, 20,000 tickets. Limit 5 s.

Run: python bench/series.py [--series 10000] [--groups 1000] [--communes 3321]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.audiences.chats import Staff  # noqa: E402
from bot.audiences.localities import load_strict  # noqa: E402
from bot.broadcasts.scheduling import SeriesScheduler  # noqa: E402
from bot.broadcasts.series import SeriesStore  # noqa: E402
from bot.broadcasts.store import Broadcasts, Target  # noqa: E402
from bot.broadcasts.templates import LocalityFacts  # noqa: E402
from bot.kernel.content import load_content  # noqa: E402
from bot.kernel.messages import Messages  # noqa: E402
from bot.store.db import open_database  # noqa: E402
from bot.summaries.quarter import Quarter, Summaries  # noqa: E402
from bot.supervision.model import no_group_admins  # noqa: E402
from bot.supervision.schedule import load_config  # noqa: E402
from bot.supervision.service import Supervision  # noqa: E402

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
START_LIMIT_S, FIRE_LIMIT_S, SUMMARY_LIMIT_S = 2.0, 1.0, 5.0
REPEATS = ["0 8 * * 1", "30 7 * * 1-5", "@weekly", "@monthly 09:00", "@quarterly", "@first-workday-quarter",
           "0 */6 * * *", "15 8 1,15 * *"]


def ratio(name: str, seconds: float, limit: float) -> None:
    print(f"{name}: {seconds:.3f} s (limit {limit:.1f} s, ratio {seconds / limit:.2f})")


def content_with(folder: Path, communes: int) -> Path:
    """The shipped content, its locality tree replaced by 34 provinces sharing `communes` communes."""
    root = folder / "content"
    shutil.copytree(ROOT / "content", root, ignore=shutil.ignore_patterns("supervision"))
    lines = []
    for p in range(34):
        lines += [f"- code: tinh-{p}", f"  name: Tỉnh {p}", ""]
    for c in range(communes):
        lines += [f"- code: xa-{c}", f"  name: Xã {c}", f"  parent: tinh-{c % 34}", ""]
    (root / "localities.yaml").write_text("\n".join(lines), encoding="utf-8")
    return root


async def bench_start(folder: Path, count: int, distinct: bool) -> None:
    path = folder / f"start-{distinct}.sqlite3"
    db = await open_database(path)
    tree = load_strict(ROOT / "content")
    now = time.time()
    await db.write_many(
        "INSERT INTO series (kind, text, audience, repeat, created_by, created_at, updated_at, next_run_at)"
        " VALUES ('broadcast', 'Tin {quy}', 'groups', ?, 'bench', ?, ?, ?)",
        [(f"{i % 60} {i // 60 % 24} {1 + i // 1440 % 28} * *" if distinct else REPEATS[i % len(REPEATS)],
          now, now, now + 86400) for i in range(count)])
    store = SeriesStore(db, Broadcasts(db, tree), tree, TZ)
    scheduler = SeriesScheduler(store, lambda: None)
    started = time.perf_counter()
    await scheduler.start()
    took = time.perf_counter() - started
    jobs = len(scheduler.scheduler.get_jobs()) if scheduler.scheduler else 0
    await scheduler.stop()
    await db.close()
    ratio(f"start with {count:,} series, {'all different' if distinct else 'sharing 8'} schedules ({jobs:,} jobs)",
          took, START_LIMIT_S)


async def bench_fire(folder: Path, groups: int) -> None:
    path = folder / "fire.sqlite3"
    db = await open_database(path)
    tree = load_strict(ROOT / "content")
    codes = [item.code for item in tree if item.parent]
    await db.write_many(
        "INSERT INTO chats (channel, chat_id, kind, locality, consent, first_seen, last_seen)"
        " VALUES ('telegram', ?, 'group', ?, 1, 0, 0)", [(str(-10_000 - i), codes[i % len(codes)])
                                                         for i in range(groups)])

    async def facts(wanted, when):
        return {code: LocalityFacts(when + 86400 * 7, 1) for code in wanted}

    clock = [datetime(2026, 12, 7, 7, 59, tzinfo=TZ).timestamp()]
    store = SeriesStore(db, Broadcasts(db, tree), tree, TZ, clock=lambda: clock[0], facts=facts)
    series = await store.create("Kính gửi {dia_ban}: {quy}, hạn {han_giam_sat}, còn {con_thieu} hoạt động.",
                                Target("groups"), "@weekly")
    clock[0] += 120
    started = time.perf_counter()
    firing = await store.fire(series)
    took = time.perf_counter() - started
    assert firing is not None and firing.recipients == groups
    await db.close()
    ratio(f"one firing to {groups:,} groups ({len(firing.broadcasts)} localities)", took, FIRE_LIMIT_S)


def fill_year(path: Path, communes: int, rng: random.Random) -> None:
    year_start = datetime(2026, 1, 1, tzinfo=TZ).timestamp()
    span = 365 * 86400
    con = sqlite3.connect(path)
    con.executemany("INSERT INTO chats (id, channel, chat_id, kind, locality, consent, first_seen, last_seen)"
                    " VALUES (?, 'telegram', ?, 'group', ?, 1, 0, 0)",
                    [(c + 1, str(-100_000 - c), f"xa-{c}") for c in range(communes)])
    residents = communes * 10
    con.executemany("INSERT INTO chats (id, channel, chat_id, kind, locality, consent, first_seen, last_seen)"
                    " VALUES (?, 'telegram', ?, 'private', ?, 1, 0, 0)",
                    [(communes + 1 + r, str(500_000 + r), f"xa-{r % communes}") for r in range(residents)])
    periods = [f"2026-Q{q}" for q in range(1, 5)]
    con.executemany("INSERT INTO supervision_plans (locality, title, kind, period, due_at, remind, status, done_at,"
                    " created_at, updated_at) VALUES (?, 'Giám sát', ?, ?, ?, '7d', ?, ?, 0, 0)",
                    [(f"xa-{c}", ("giam_sat", "phan_bien")[i % 2], periods[i // 2], year_start + (i + 1) * span / 9,
                      "done" if i % 3 else "planned", year_start + (i + 1) * span / 9)
                     for c in range(communes) for i in range(8)])
    for b in range(100):
        at = year_start + b * span / 100
        con.execute("INSERT INTO broadcasts (id, text, audience, send_at, status, created_by, created_at)"
                    " VALUES (?, 'x', 'groups', ?, 'done', 'bench', ?)", (b + 1, at, at))
        con.executemany("INSERT INTO outbox (broadcast, chat, channel, chat_id, kind, locality, next_attempt_at,"
                        " status, sent_at) VALUES (?, ?, 'telegram', ?, 'group', ?, 0, 'sent', ?)",
                        [(b + 1, c + 1, str(-100_000 - c), f"xa-{c}", at + c * 0.1) for c in range(communes)])
        con.executemany("INSERT INTO acknowledgements (broadcast, chat, user_id, at) VALUES (?, ?, 'u', ?)",
                        [(b + 1, c + 1, at) for c in range(communes) if (b + c) % 2])
    entries = [f"muc-{i}" for i in range(30)]
    con.executemany("INSERT INTO question_log (chat, channel, text, folded, entry_id, outcome, asked_at)"
                    " VALUES (?, 'telegram', 'q', 'q', ?, ?, ?)",
                    [(communes + 1 + rng.randrange(residents), rng.choice(entries),
                      rng.choice(("answered", "answered", "choices", "declined")), year_start + rng.random() * span)
                     for _ in range(200_000)])
    con.executemany("INSERT INTO tickets (kind, chat, channel, text, status, answered_at, created_at, updated_at)"
                    " VALUES (?, ?, 'telegram', 't', 'answered', ?, ?, ?)",
                    [(rng.choice(("question", "petition")), communes + 1 + rng.randrange(residents), t + 7200, t, t)
                     for t in (year_start + rng.random() * span for _ in range(20_000))])
    con.commit()
    con.close()


async def bench_summary(folder: Path, communes: int) -> None:
    root = content_with(folder, communes)
    path = folder / "summary.sqlite3"
    await (await open_database(path)).close()  # create and migrate
    fill_year(path, communes, random.Random(15))
    db = await open_database(path)
    tree = load_strict(root)
    config, _ = load_config(root)
    content = load_content(root, strict=False)
    supervision = Supervision(db, tree, Messages(content.messages), Staff(db, {}), TZ, config, notify=lambda: None,
                              is_admin=no_group_admins)
    summaries = Summaries(db, tree, supervision, TZ)
    started = time.perf_counter()
    items = await summaries.quarter(Quarter(2026, 4), datetime(2026, 12, 2, tzinfo=TZ).timestamp())
    took = time.perf_counter() - started
    await db.close()
    assert len(items) == communes and all(i["broadcasts"]["sent"] for i in items)
    ratio(f"summary quarter for {communes:,} communes, a year of activity", took, SUMMARY_LIMIT_S)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--communes", type=int, default=3_321)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        await bench_start(folder, args.series, distinct=False)
        await bench_start(folder, args.series, distinct=True)
        await bench_fire(folder, args.groups)
        await bench_summary(folder, args.communes)


if __name__ == "__main__":
    asyncio.run(main())
