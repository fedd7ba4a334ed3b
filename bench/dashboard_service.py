"""What the staff dashboard costs the running service: memory, and residents' answer times while a
broadcast's live progress is open. Printed as ratios to the issue's limits (issue 13: ≤ 15 MB RSS
added; nothing added to the residents' answer p99).

The service runs as `python -m bot run` in a subprocess (Zalo webhooks on a fake Zalo Bot API, a fresh
SQLite file with --groups registered groups, the shipped content). Four paced resident loads at
--rate (each its own --updates chats, real questions) are timed update → reply, as bench/webhook.py:
  1. residents alone (warms the service up),
  2. residents alone again,
  3. residents while a broadcast to every group goes out, nobody watching,
  4. residents while a second such broadcast goes out and a staff member, signed in with a one-time
     link (`web login-link`), has opened every dashboard page once and keeps its page open, polling
     /progress.json once a second as the browser's script does (--viewers such pages).
Memory the dashboard adds = the service's RSS growth from load 3 to load 4, plus what importing
the dashboard (its modules, Jinja2 and the templates compiled) takes in a fresh interpreter that
has already imported the rest of the service. The answer p99 is compared between loads 3 and 4.

Run: python bench/dashboard_service.py [--updates 1000] [--rate 300] [--groups 300] [--viewers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from webhook import SECRET, TOKEN, Process, clean_env, free_port, load, pct, questions  # noqa: E402

from tests.fakes.zalo import FakeZalo  # noqa: E402

RSS_LIMIT_MB = 15.0
STAFF = "900"
UNWATCHED, WATCHED = "Thông báo thử, không ai xem trang.", "Thông báo thử khi cán bộ đang xem trang."
PAGES = ["/admin/", "/admin/broadcasts", "/admin/tickets", "/admin/supervision", "/admin/groups",
         "/admin/knowledge", "/admin/audit"]
IMPORTS = """
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
import bot.app.wiring, bot.channels.zalo_bot.channel, bot.channels.telegram.channel, bot.knowledge.searcher
import bot.cli.main
before = rss()
import bot.dashboard.http.app as dash_app
from zoneinfo import ZoneInfo
from bot.dashboard.render import Renderer
renderer = Renderer(ZoneInfo("Asia/Ho_Chi_Minh"))
for name in renderer.env.list_templates():
    renderer.env.get_template(name)
print(rss() - before)
"""


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1_048_576


def import_footprint() -> float | None:
    """MB the dashboard's modules and compiled templates take, the rest of the service already imported."""
    try:
        out = subprocess.run([sys.executable, "-c", IMPORTS], capture_output=True, text=True, cwd=ROOT, check=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    except subprocess.CalledProcessError as exc:
        print(f"(import footprint not measured: {exc.stderr.strip().splitlines()[-1]})")
        return None
    return float(out.stdout.strip().splitlines()[-1])


def cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"{args}: exit {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


async def staff_watching(base: str, link: str, broadcast: int, viewers: int, stop: asyncio.Event) -> int:
    """Sign in, open every page once, then poll the broadcast's progress once a second per viewer."""
    polls = 0
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        token = link.rsplit("t=", 1)[1]
        async with session.post(f"{base}/admin/login", data={"t": token}, headers={"Origin": base}) as response:
            await response.read()
        for page in [*PAGES, f"/admin/broadcasts/{broadcast}"]:
            async with session.get(base + page) as response:
                assert response.status == 200, (page, response.status)
                await response.read()

        async def viewer() -> None:
            nonlocal polls
            while not stop.is_set():
                async with session.get(f"{base}/admin/broadcasts/{broadcast}/progress.json") as response:
                    assert response.status == 200, response.status
                    await response.json()
                polls += 1
                try:
                    await asyncio.wait_for(stop.wait(), 1.0)
                except TimeoutError:
                    pass

        await asyncio.gather(*(viewer() for _ in range(viewers)))
    return polls


async def main(updates: int, rate: float, groups: int, viewers: int) -> int:
    texts = questions()
    base_env = clean_env()
    footprint = import_footprint()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with FakeZalo(token=TOKEN) as fake:
            port = free_port()
            env = {**base_env, "ZALO_BOT_TOKEN": TOKEN, "ZALO_API_URL": fake.url,
                   "ZALO_WEBHOOK_SECRET": SECRET, "WEBHOOK_BASE_URL": "https://bench.example.vn",
                   "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(port), "TELEGRAM_STAFF_IDS": STAFF,
                   "ZALO_RATE_PER_SECOND": "100",  # the broadcast goes out within the residents' load
                   "PUBLIC_URL": f"http://127.0.0.1:{port}",
                   "DATABASE_URL": f"sqlite:///{workdir / 'bot.sqlite3'}", "CONTENT_DIR": str(ROOT / "content"),
                   "LOG_LEVEL": "WARNING"}
            roster = workdir / "groups.csv"
            roster.write_text("channel,chat_id,locality,title\n" + "".join(
                f"zalo,g{g:05d},phan-rang,Tổ {g}\n" for g in range(groups)), encoding="utf-8")
            cli(env, workdir, "groups", "import", str(roster))
            async with Process([sys.executable, "-m", "bot", "run"], env, workdir, port) as service:
                assert service.proc is not None
                pid, url = service.proc.pid, f"http://127.0.0.1:{port}/zalo/webhook"

                def copies(marker: str) -> int:
                    return sum(1 for m in fake.sent if m.chat_id.startswith("g") and marker in m.text)

                async def broadcast(marker: str) -> int:
                    sent = cli(env, workdir, "broadcast", "send", "--to", "groups", "--text", marker, "--yes", "--json")
                    return int(re.search(r'"id":\s*(\d+)', sent).group(1))  # type: ignore[union-attr]

                async def delivered(marker: str) -> int:
                    for _ in range(300):  # up to a minute
                        if copies(marker) >= groups:
                            break
                        await asyncio.sleep(0.2)
                    return copies(marker)

                await load(fake, url, "warm", 50, 100, None, texts, True)
                warm = await load(fake, url, "alone1", updates, 100, rate, texts, True)
                await delivered("Mặt trận")  # supervision's calendar nudge to the groups, if today has one
                alone = await load(fake, url, "alone2", updates, 100, rate, texts, True)
                await broadcast(UNWATCHED)
                await asyncio.sleep(1.0)  # picked up by the delivery worker
                unwatched = await load(fake, url, "unwatched", updates, 100, rate, texts, True)
                reached = [await delivered(UNWATCHED)]
                rss_before = rss_mb(pid)
                link = cli(env, workdir, "web", "login-link", "--channel", "telegram", "--user-id", STAFF)
                link = link.strip().splitlines()[-1]
                watched_id = await broadcast(WATCHED)
                stop = asyncio.Event()
                watching = asyncio.create_task(staff_watching(f"http://127.0.0.1:{port}", link, watched_id, viewers,
                                                              stop))
                await asyncio.sleep(1.0)  # signed in, pages opened, polling, the broadcast going out
                watched = await load(fake, url, "watched", updates, 100, rate, texts, True)
                stop.set()
                polls = await watching
                rss_after = rss_mb(pid)
                reached.append(await delivered(WATCHED))
    for name, run in (("residents alone (warm-up)", warm), ("residents alone", alone),
                      ("residents + a broadcast to every group going out", unwatched),
                      (f"residents + the same, its page open in {viewers} browsers", watched)):
        print(f"{name}: {run['answered']}/{run['n']} answered; update→reply p50 {pct(run['waits'], 50):.0f} ms,"
              f" p99 {pct(run['waits'], 99):.0f} ms")
    base_p99, watched_p99 = pct(unwatched["waits"], 99), pct(watched["waits"], 99)
    print(f"the broadcasts reached {reached[0]}/{groups} and {reached[1]}/{groups} groups;"
          f" {polls} progress polls while watched")
    print(f"answer p99 with the progress open: {watched_p99:.0f} ms against {base_p99:.0f} ms with the same broadcast"
          f" unwatched (ratio {watched_p99 / base_p99 if base_p99 else float('nan'):.2f};"
          f" {watched_p99 - base_p99:+.0f} ms); residents alone {pct(alone['waits'], 99):.0f} ms")
    grown = rss_after - rss_before
    added = grown + (footprint or 0.0)
    print(f"service RSS {rss_before:.1f} → {rss_after:.1f} MB while staff watched (+{grown:.1f} MB);"
          f" importing the dashboard: {footprint if footprint is not None else float('nan'):.1f} MB")
    print(f"memory the dashboard adds: {added:.1f} MB (limit {RSS_LIMIT_MB:.0f} MB: ratio {added / RSS_LIMIT_MB:.2f})")
    answered = all(r["answered"] == r["n"] for r in (warm, alone, unwatched, watched))
    ok = answered and added <= RSS_LIMIT_MB and reached == [groups, groups]
    print("OK" if ok else "NOT WITHIN TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--viewers", type=int, default=2)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.updates, args.rate, args.groups, args.viewers)))
