"""Zalo webhooks under load: 1,000 updates POSTed to the running service, measured from outside.

The service runs as `python -m bot run` in a subprocess, exactly as an operator starts it (settings
from the environment, a fresh SQLite file, the shipped content) in webhook mode: WEBHOOK_BASE_URL
set, its HTTP server (bot/app/web.py) on a free loopback port. This process holds the fake Zalo Bot API
(tests/fakes/zalo.py) the service answers through, and an aiohttp client that POSTs updates to
/zalo/webhook with the secret header, as Zalo does. Each update is a resident's real question
(tests/data/qa_eval.yaml) from its own chat, so the first message the fake receives for a chat is
that update's answer.

Two loads, the same 1,000 updates each (fresh chats):
  burst: all POSTed at once (at most --connections open): every POST answered 200, every chat
    answered, none lost; throughput = updates / (first POST → last answer at the fake). Its
    update-to-reply times are mostly queueing (the last update waits for the 999 before it).
  paced: POSTed at the target rate (300/s, open loop): update-to-reply p50/p99/max, i.e. how long
    a resident waits when the service carries that load.
The same loads go, in the same run, to a bare aiohttp handler in its own subprocess that only
answers {"ok": true}: the ratios are taken against it.

Targets (issue 10): ≥ 500 updates/s, p99 update-to-reply ≤ 200 ms at 300/s. Printed as ratios.
Only this load's chats are counted as answered (a late second message to a chat of the load
before, e.g. its menu, is not an answer here).

Run: python bench/webhook.py [--updates 1000] [--connections 100] [--rate 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.zalo import FakeZalo  # noqa: E402

TOKEN = "9876543210:bench-Zalo_token-SECRET"
SECRET = "bench-webhook-secret"
TARGET_RATE = 500.0  # updates a second, burst
PACED_RATE = 300.0  # the paced load's rate
TARGET_P99_MS = 200.0
BARE = """
import sys
from aiohttp import web
async def ack(request):
    await request.read()
    return web.json_response({"ok": True})
app = web.Application()
app.router.add_post("/zalo/webhook", ack)
app.router.add_get("/healthz", lambda r: web.json_response({"ok": True}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, backlog=1024)
"""


def questions() -> list[str]:
    data = yaml.safe_load((ROOT / "tests" / "data" / "qa_eval.yaml").read_text(encoding="utf-8"))
    out = [item if isinstance(item, str) else item["q"] for item in data.get("out_of_scope", [])]
    return [item["q"] for item in data["in_scope"]] + out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))] if ordered else 0.0


def clean_env() -> dict[str, str]:
    """This environment without the service's own settings (a developer's .env values), plus the
    project on PYTHONPATH: what a bench's service subprocess starts from."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "ZALO_", "DATABASE_URL", "CONTENT_DIR", "WEBHOOK_", "HTTP_", "LOG_"))}
    env["PYTHONPATH"] = str(ROOT)
    return env


async def first_messages(sent: list, mark: int, key: str, ours: set[str],
                         timeout: float = 60) -> dict[str, float]:  # noqa: ASYNC109
    """When each of `ours` (chat or user ids, read from each message's `key` attribute) first got a
    message among `sent[mark:]`, waiting up to `timeout` for all of them; a late second message to a
    chat of a load before is not an answer here."""
    first: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(first) < len(ours) and time.monotonic() < deadline:
        for message in sent[mark:]:
            if getattr(message, key) in ours:
                first.setdefault(getattr(message, key), message.time)
        mark = len(sent)
        await asyncio.sleep(0.01)
    return first


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A subprocess serving HTTP on `port`, ready once /healthz answers 200."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, port: int) -> None:
        self.args, self.env, self.cwd, self.port = args, env, cwd, port
        self.proc: asyncio.subprocess.Process | None = None
        self.log = cwd / f"process-{port}.log"

    async def __aenter__(self) -> Process:
        with self.log.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(*self.args, cwd=self.cwd, env=self.env,
                                                             stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                        if response.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                if self.proc.returncode is not None or time.monotonic() > deadline:
                    raise SystemExit(f"{self.args} did not come up:\n{self.log.read_text()[-3000:]}")
                await asyncio.sleep(0.05)

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def post(url: str, bodies: list[dict], connections: int, rate: float | None) -> tuple[list[float], list[int]]:
    """POST every body (all at once, or `rate` a second on schedule); (start times, statuses)."""
    starts = [0.0] * len(bodies)
    statuses = [0] * len(bodies)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        begin = time.monotonic()

        async def one(i: int) -> None:
            if rate:
                await asyncio.sleep(max(0.0, begin + i / rate - time.monotonic()))
            starts[i] = time.monotonic()
            async with session.post(url, json=bodies[i], headers={"X-Bot-Api-Secret-Token": SECRET}) as response:
                await response.read()
                statuses[i] = response.status

        await asyncio.gather(*(one(i) for i in range(len(bodies))))
    return starts, statuses


async def load(fake: FakeZalo, url: str, tag: str, n: int, connections: int, rate: float | None,
               texts: list[str], replies: bool, pid: int | None = None) -> dict:
    cpu_before = cpu_seconds(pid)
    chats = [f"{tag}-{i:05d}" for i in range(n)]
    ours = set(chats)
    bodies = [fake.text_update(chat, texts[i % len(texts)], name=f"Dân {i}") for i, chat in enumerate(chats)]
    mark = len(fake.sent)
    begin = time.monotonic()
    starts, statuses = await post(url, bodies, connections, rate)
    first: dict[str, float] = {}
    if replies:
        first = await first_messages(fake.sent, mark, "chat_id", ours)
        end = max(first.values(), default=time.monotonic())
        waits = [(first[c] - starts[i]) * 1000 for i, c in enumerate(chats) if c in first]
    else:  # the bare handler: the request's own round trip
        end = time.monotonic()
        waits = []
    return {"n": n, "ok": statuses.count(200), "answered": len(first), "rate": n / (end - begin),
            "waits": waits, "cpu_ms": (cpu_seconds(pid) - cpu_before) * 1000 / n}


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) used so far by process `pid` (this process when None) and by its
    children (the service's search process): all the CPU the service costs."""
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)] if pid else [process]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def request_times(url: str, n: int, rate: float, texts: list[str], fake: FakeZalo) -> list[float]:
    """Round-trip times (ms) of POSTs to the bare handler at `rate` a second."""
    bodies = [fake.text_update(f"bare-{i}", texts[i % len(texts)]) for i in range(n)]
    times = [0.0] * n
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as session:
        begin = time.monotonic()

        async def one(i: int) -> None:
            await asyncio.sleep(max(0.0, begin + i / rate - time.monotonic()))
            t0 = time.monotonic()
            async with session.post(url, json=bodies[i], headers={"X-Bot-Api-Secret-Token": SECRET}) as response:
                await response.read()
            times[i] = (time.monotonic() - t0) * 1000

        await asyncio.gather(*(one(i) for i in range(n)))
    return times


async def main(n: int, connections: int, rate: float, rounds: int) -> int:
    texts = questions()
    base_env = clean_env()
    bursts, paced, bare_bursts, bare_paced = [], [], [], []
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        async with FakeZalo(token=TOKEN) as fake:
            for r in range(rounds):
                port = free_port()
                env = {**base_env, "ZALO_BOT_TOKEN": TOKEN, "ZALO_API_URL": fake.url, "ZALO_WEBHOOK_SECRET": SECRET,
                       "WEBHOOK_BASE_URL": "https://bench.example.vn", "HTTP_HOST": "127.0.0.1",
                       "HTTP_PORT": str(port), "DATABASE_URL": f"sqlite:///{workdir / f'bot-{r}.sqlite3'}",
                       "CONTENT_DIR": str(ROOT / "content"), "LOG_LEVEL": "WARNING"}
                async with Process([sys.executable, "-m", "bot", "run"], env, workdir, port) as service:
                    assert fake.webhook_url == "https://bench.example.vn/zalo/webhook", fake.webhook_url
                    url = f"http://127.0.0.1:{port}/zalo/webhook"
                    await load(fake, url, f"warm{r}", 50, connections, None, texts, True)
                    pid = service.proc.pid if service.proc else None
                    bursts.append(await load(fake, url, f"burst{r}", n, connections, None, texts, True, pid))
                    paced.append(await load(fake, url, f"paced{r}", n, connections, rate, texts, True, pid))
                bare_port = free_port()
                async with Process([sys.executable, "-c", BARE, str(bare_port)], base_env, workdir, bare_port):
                    url = f"http://127.0.0.1:{bare_port}/zalo/webhook"
                    await load(fake, url, "bare-warm", 50, connections, None, texts, False)
                    bare_bursts.append(await load(fake, url, f"bare-burst{r}", n, connections, None, texts, False))
                    bare_paced.append(await request_times(url, n, rate, texts, fake))
                b, p, bb = bursts[-1], paced[-1], bare_bursts[-1]
                lost_b, lost_p = b["n"] - b["answered"], p["n"] - p["answered"]
                ok = ok and not lost_b and not lost_p and b["ok"] == b["n"] and p["ok"] == p["n"]
                print(f"round {r + 1}:")
                print(f"  burst: {b['n']} POSTed at once, {b['ok']} × 200, {b['answered']} answered, {lost_b} lost; "
                      f"{b['rate']:.0f} updates/s end to end; update→reply p50 {pct(b['waits'], 50):.0f} ms, "
                      f"p99 {pct(b['waits'], 99):.0f} ms (queueing); service CPU {b['cpu_ms']:.1f} ms an update")
                print(f"  paced {rate:.0f}/s: {p['ok']} × 200, {p['answered']} answered, {lost_p} lost; update→reply "
                      f"p50 {pct(p['waits'], 50):.0f} ms, p99 {pct(p['waits'], 99):.0f} ms, "
                      f"max {max(p['waits'], default=0):.0f} ms")
                print(f"  bare ack handler: burst {bb['rate']:.0f} requests/s; paced {rate:.0f}/s round trip "
                      f"p99 {pct(bare_paced[-1], 99):.1f} ms")
    rate_med = statistics.median(b["rate"] for b in bursts)
    bare_rate = statistics.median(b["rate"] for b in bare_bursts)
    p99_med = statistics.median(pct(p["waits"], 99) for p in paced)
    bare_p99 = statistics.median(pct(t, 99) for t in bare_paced)
    print(f"median of {rounds} rounds:")
    print(f"  throughput {rate_med:.0f} updates/s = {rate_med / TARGET_RATE:.2f} × target ({TARGET_RATE:.0f}/s) = "
          f"{rate_med / bare_rate:.2f} × the bare ack handler ({bare_rate:.0f}/s)")
    print(f"  p99 update→reply at {rate:.0f}/s: {p99_med:.0f} ms = {p99_med / TARGET_P99_MS:.2f} × target "
          f"({TARGET_P99_MS:.0f} ms); the bare handler's p99 round trip is {bare_p99:.1f} ms "
          f"({p99_med / max(bare_p99, 0.001):.0f} ×)")
    ok = ok and rate_med >= TARGET_RATE and p99_med <= TARGET_P99_MS
    print("OK: all answered, none lost, within target" if ok else "NOT WITHIN TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--rate", type=float, default=PACED_RATE, help="updates a second in the paced load")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.updates, args.connections, args.rate, args.rounds)))
