"""The Zalo OA channel under load, measured from outside, printed as ratios to the issue's figures.

The service runs as `python -m bot run` in a subprocess (settings from the environment, a fresh SQLite
file, the shipped content); this process holds the fake OA API + OAuth server (tests/fakes/zalo_oa.py),
which signs the events it POSTs to /zalo-oa/webhook as Zalo does and records every message it is sent.
TIMEZONE is set to a zone where it is midday, so the OA's 22:00–06:00 rule never holds the run back.

1. Webhook: N signed `user_send_text` events (real residents' questions, tests/data/qa_eval.yaml), each
   from its own follower. burst: all at once; throughput = events / (first POST → last reply at the fake),
   target ≥ 300/s. paced: at 300/s (open loop): event → reply p50/p99, target p99 ≤ 200 ms.
2. Broadcast: 5,000 followers pulled with `python -m bot zalo-oa sync`, a broadcast queued with
   `python -m bot broadcast send --to residents --channel zalo_oa`; achieved rate / ZALO_OA_RATE_PER_SECOND
   (≥ 0.95), lost and duplicated recipients (both 0).

Run: python bench/zalo_oa.py [--events 1000] [--rate 300] [--followers 5000] [--send-rate 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.webhook import Process, clean_env, cpu_seconds, first_messages, free_port, pct, questions  # noqa: E402
from tests.fakes.zalo_oa import FakeZaloOA  # noqa: E402

TARGET_RATE, TARGET_P99_MS, TARGET_SEND_RATIO = 300.0, 200.0, 0.95
MARKER = "Thông báo thử tải Zalo OA."


def midday_zone() -> str:
    offset = (12 - datetime.now(UTC).hour + 12) % 24 - 12
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


async def post_events(fake: FakeZaloOA, events: list[dict], rate: float | None) -> tuple[list[float], list[int]]:
    starts, statuses = [0.0] * len(events), [0] * len(events)
    raws = [json.dumps(e, ensure_ascii=False, separators=(",", ":")).encode() for e in events]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        begin = time.monotonic()

        async def one(i: int) -> None:
            if rate:
                await asyncio.sleep(max(0.0, begin + i / rate - time.monotonic()))
            headers = {"Content-Type": "application/json",
                       "X-ZEvent-Signature": fake.sign(raws[i], events[i]["timestamp"])}
            starts[i] = time.monotonic()
            async with session.post(fake.webhook_url, data=raws[i], headers=headers) as response:
                await response.read()
                statuses[i] = response.status

        await asyncio.gather(*(one(i) for i in range(len(events))))
    return starts, statuses


async def load(fake: FakeZaloOA, tag: str, n: int, rate: float | None, texts: list[str],
               pid: int | None = None) -> dict:
    cpu_before = cpu_seconds(pid) if pid else 0.0
    users = [f"{tag}{i:06d}" for i in range(n)]
    for user in users:
        fake.add_follower(user)
    events = [fake.text_event(u, texts[i % len(texts)]) for i, u in enumerate(users)]
    mark = len(fake.sent)
    begin = time.monotonic()
    starts, statuses = await post_events(fake, events, rate)
    first = await first_messages(fake.sent, mark, "user_id", set(users))
    end = max(first.values(), default=time.monotonic())
    waits = [(first[u] - starts[i]) * 1000 for i, u in enumerate(users) if u in first]
    cpu_ms = (cpu_seconds(pid) - cpu_before) * 1000 / n if pid else 0.0
    return {"n": n, "ok": statuses.count(200), "answered": len(first), "rate": n / (end - begin), "waits": waits,
            "cpu_ms": cpu_ms}


async def cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, cwd=cwd, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{args}: exit {process.returncode}: {err.decode()[-2000:]}")
    return out.decode()


async def main(events: int, rate: float, followers: int, send_rate: float) -> int:
    texts = questions()
    base = clean_env()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with FakeZaloOA() as fake:
            port = free_port()
            env = {**base, "ZALO_OA_APP_ID": fake.app_id,
                   "ZALO_OA_SECRET_KEY": fake.secret_key, "ZALO_OA_WEBHOOK_SECRET": fake.oa_secret,
                   "ZALO_OA_REFRESH_TOKEN": fake.issue_refresh_token(), "ZALO_OA_API_URL": fake.url,
                   "ZALO_OA_OAUTH_URL": fake.url, "ZALO_OA_RATE_PER_SECOND": str(send_rate),
                   "WEBHOOK_BASE_URL": "https://bench.example.vn", "HTTP_HOST": "127.0.0.1", "HTTP_PORT": str(port),
                   "DATABASE_URL": f"sqlite:///{workdir / 'bot.sqlite3'}", "CONTENT_DIR": str(ROOT / "content"),
                   "LOG_LEVEL": "WARNING", "TIMEZONE": midday_zone()}
            fake.webhook_url = f"http://127.0.0.1:{port}/zalo-oa/webhook"
            async with Process([sys.executable, "-m", "bot", "run"], env, workdir, port) as service:
                pid = service.proc.pid if service.proc else None
                await load(fake, "warm", 50, None, texts)
                burst = await load(fake, "burst", events, None, texts, pid)
                paced = await load(fake, "paced", events, rate, texts, pid)
                for b in (burst, paced):
                    ok = ok and b["ok"] == b["n"] == b["answered"]
                print(f"webhook burst: {burst['n']} signed events at once, {burst['ok']} × 200, {burst['answered']}"
                      f" answered; {burst['rate']:.0f} events/s = {burst['rate'] / TARGET_RATE:.2f} × target"
                      f" ({TARGET_RATE:.0f}/s); service CPU {burst['cpu_ms']:.1f} ms an event")
                p99 = pct(paced["waits"], 99)
                print(f"webhook paced {rate:.0f}/s: {paced['ok']} × 200, {paced['answered']} answered; event→reply"
                      f" p50 {pct(paced['waits'], 50):.0f} ms, p99 {p99:.0f} ms = {p99 / TARGET_P99_MS:.2f} × target"
                      f" ({TARGET_P99_MS:.0f} ms)")
                ok = ok and burst["rate"] >= TARGET_RATE and p99 <= TARGET_P99_MS

                fake.followers.clear()
                users = [f"{8_000_000_000 + i}" for i in range(followers)]
                for user in users:
                    fake.add_follower(user)
                synced = json.loads(await cli(env, workdir, "zalo-oa", "sync", "--json"))
                assert synced == {"followers": followers, "total": followers}, synced
                mark = len(fake.sent)
                await cli(env, workdir, "broadcast", "send", "--to", "residents", "--channel", "zalo_oa",
                          "--text", MARKER, "--yes", "--json")
                deadline = time.monotonic() + followers / send_rate * 3 + 30
                while time.monotonic() < deadline:
                    got = [m for m in fake.sent[mark:] if m.text == MARKER]
                    if len({m.user_id for m in got}) >= followers:
                        break
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.0)  # late duplicates would show up here
                got = [m for m in fake.sent[mark:] if m.text == MARKER]
                copies = Counter(m.user_id for m in got)
                lost = len(set(users) - set(copies))
                duplicated = sum(1 for n in copies.values() if n > 1)
                span = max(m.time for m in got) - min(m.time for m in got) if len(got) > 1 else 1.0
                achieved = (len(got) - 1) / span if span > 0 else 0.0
                ratio = achieved / send_rate
                print(f"broadcast: {followers} followers synced, {len(copies)} reached, {lost} lost, {duplicated}"
                      f" duplicated; {achieved:.1f} messages/s = {ratio:.3f} × ZALO_OA_RATE_PER_SECOND"
                      f" ({send_rate:.0f}/s; target ≥ {TARGET_SEND_RATIO})")
                ok = ok and not lost and not duplicated and ratio >= TARGET_SEND_RATIO
            print(f"token refreshes: {fake.refreshes}, spent refresh tokens presented: {fake.spent_presented}")
            ok = ok and fake.spent_presented == 0
    print("OK: within every target" if ok else "NOT WITHIN TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=TARGET_RATE, help="events a second in the paced load")
    parser.add_argument("--followers", type=int, default=5000)
    parser.add_argument("--send-rate", type=float, default=100.0, help="ZALO_OA_RATE_PER_SECOND for the broadcast")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.events, args.rate, args.followers, args.send_rate)))
