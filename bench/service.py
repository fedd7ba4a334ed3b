"""The running service, measured from outside, printed as ratios to the limits.

A fake Telegram Bot API server (tests/fake_telegram.py) runs in this process; the real service
runs as `python -m bot run` in a subprocess pointed at it, exactly as an operator starts it
(settings from the environment, a fresh SQLite file, the shipped content).

1. Start-up to first answer: a question is queued the moment the process is spawned; the time
   from spawn to the fake receiving the answer's sendMessage (limit 2 s). Several cold starts,
   the worst one is the figure.
2. Memory: RSS of the service process after it answered ~200 questions from
   tests/data/qa_eval.yaml over 20 private chats (limit 120 MB).
3. Shut-down: SIGTERM, then the process must exit 0, without a traceback, the token in no line.

Run: python bench/service.py [--runs 3] [--questions 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakes.telegram import FakeTelegram  # noqa: E402

TOKEN = "777001:BenchToken_secret-VALUE"
FIRST_QUESTION = "quy vi nguoi ngheo la gi"
THANKS = "Dạ, không có gì ạ"  # the start of the answer to "cảm ơn": the per-chat end marker
START_LIMIT_S = 2.0
RSS_LIMIT_MB = 120.0
TERM_TIMEOUT_S = 10.0


class Service:
    """`python -m bot run` in a subprocess, against `fake`, with its own data folder."""

    def __init__(self, fake: FakeTelegram, workdir: Path) -> None:
        self.fake = fake
        self.workdir = workdir
        self.log_path = workdir / "service.log"
        self.proc: asyncio.subprocess.Process | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TELEGRAM_", "ZALO_", "DATABASE_URL", "CONTENT_DIR", "WEBHOOK_", "HTTP_",
                                    "LOG_LEVEL", "PYTHONWARNINGS"))}
        env.update({
            "PYTHONPATH": str(ROOT),
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": self.fake.url,
            "DATABASE_URL": f"sqlite:///{self.workdir / 'data' / 'bot.sqlite3'}",
            "CONTENT_DIR": str(ROOT / "content"),
        })
        return env

    async def spawn(self) -> float:
        """Start the service (cwd: its own folder, so no stray .env is read); the spawn instant."""
        log = self.log_path.open("ab")
        t0 = time.monotonic()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=self.workdir, env=self.env(),
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
        )
        log.close()
        return t0

    def rss_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) of the service process, in MB."""
        assert self.proc is not None
        proc = psutil.Process(self.proc.pid)
        rss = proc.memory_info().rss / 2**20
        peak = rss
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = int(line.split()[1]) / 1024
        except OSError:
            pass
        return rss, peak

    async def terminate(self) -> tuple[int | None, float]:
        """SIGTERM; the exit code (None if it had to be killed) and how long it took."""
        assert self.proc is not None
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), TERM_TIMEOUT_S)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            code = None
        return code, time.monotonic() - t0

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def questions(limit: int) -> list[str]:
    data = yaml.safe_load((ROOT / "tests" / "data" / "qa_eval.yaml").read_text(encoding="utf-8"))
    pool = [item["q"] for item in data["in_scope"]] + list(data["out_of_scope"])
    return [pool[i % len(pool)] for i in range(limit)]


async def first_answer(workdir: Path) -> tuple[float, Service, FakeTelegram]:
    """One cold start: spawn, queue a question at once, time the answer. The service stays up."""
    fake = FakeTelegram(token=TOKEN)
    await fake.start()
    service = Service(fake, workdir)
    t0 = await service.spawn()
    fake.push_update(fake.text_update(1, FIRST_QUESTION))
    try:
        await fake.wait_for_call("sendMessage", lambda c: str(c.params.get("chat_id")) == "1", timeout=30)
    except TimeoutError:
        await service.terminate()
        await fake.close()
        raise SystemExit(f"no answer within 30 s; service log:\n{service.log_text()[-3000:]}") from None
    [call] = [c for c in fake.calls_to("sendMessage") if str(c.params.get("chat_id")) == "1"][:1]
    return call.time - t0, service, fake


async def answer_many(fake: FakeTelegram, count: int, chats: int = 20) -> float:
    """Push `count` questions over `chats` private chats, then a thanks marker in each; wait for all."""
    asked = questions(count)
    first_chat = 1000
    t0 = time.monotonic()
    for i, question in enumerate(asked):
        fake.push_update(fake.text_update(first_chat + i % chats, question))
    for chat in range(first_chat, first_chat + chats):
        fake.push_update(fake.text_update(chat, "cảm ơn"))

    def done() -> bool:
        return all((sent := fake.sent_to(c)) and sent[-1].text.startswith(THANKS)
                   for c in range(first_chat, first_chat + chats))

    deadline = time.monotonic() + 60
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit("the service did not answer every question within 60 s")
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


def check_log(text: str) -> list[str]:
    problems = []
    if "Traceback" in text:
        problems.append("a traceback in the service log")
    if TOKEN in text or TOKEN.split(":", 1)[1] in text:
        problems.append("the bot token in the service log")
    if "Warning" in text:
        problems.append("a warning in the service log: " + next(
            line for line in text.splitlines() if "Warning" in line))
    return problems


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold starts to time (default 3)")
    parser.add_argument("--questions", type=int, default=200, help="questions before RSS (default 200)")
    args = parser.parse_args()

    problems: list[str] = []
    starts: list[float] = []
    with tempfile.TemporaryDirectory(prefix="loaphuong-bench-") as tmp:
        for run in range(args.runs):
            workdir = Path(tmp) / f"run{run}"
            workdir.mkdir()
            elapsed, service, fake = await first_answer(workdir)
            starts.append(elapsed)
            last = run == args.runs - 1
            if last:  # the memory run continues on the last service
                took = await answer_many(fake, args.questions)
                answered = sum(1 for m in fake.sent if not m.text.startswith(THANKS))
                rss, peak = service.rss_mb()
            code, stop_s = await service.terminate()
            await fake.close()
            if code != 0:
                problems.append(f"run {run + 1}: exit code {code} after SIGTERM (expected 0)")
            problems += [f"run {run + 1}: {p}" for p in check_log(service.log_text())]

    worst = max(starts)
    print(f"start-up to first answer: {worst:.2f} s (limit {START_LIMIT_S:.0f} s: ratio {worst / START_LIMIT_S:.2f})"
          f"  [runs: {', '.join(f'{s:.2f}' for s in starts)}; median {statistics.median(starts):.2f} s]")
    print(f"RSS: {rss:.1f} MB (limit {RSS_LIMIT_MB:.0f} MB: ratio {rss / RSS_LIMIT_MB:.2f})"
          f"  [peak {peak:.1f} MB: ratio {peak / RSS_LIMIT_MB:.2f}; after {args.questions} questions,"
          f" {answered} messages sent in {took:.2f} s]")
    print(f"SIGTERM: exit code {code} in {stop_s:.2f} s")
    for problem in problems:
        print(f"PROBLEM: {problem}")
    ok = not problems and worst <= START_LIMIT_S and rss <= RSS_LIMIT_MB
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
