"""Operator commands for the assistant itself: `run` (the service), `chat` (in the terminal), `ask`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from bot.cli.common import Subparsers, add_command
from bot.kernel.config import Settings
from bot.kernel.content import load_content


def add_parser(sub: Subparsers) -> None:
    add_command(sub, "run", cmd_run, "chạy dịch vụ: các kênh đã cấu hình, lịch gửi, hàng đợi gửi tin", quiet=False)
    add_command(sub, "chat", cmd_chat, "trò chuyện với trợ lý ngay trong cửa sổ dòng lệnh (không cần token)")
    ask = add_command(sub, "ask", cmd_ask, "câu trả lời trợ lý sẽ đưa ra cho một câu hỏi (hoặc mỗi dòng từ stdin)")
    ask.add_argument("question", nargs="?", help="câu hỏi; bỏ trống để đọc từng dòng từ stdin")
    ask.add_argument("--json", action="store_true", help="mỗi dòng một đối tượng JSON")
    ask.add_argument("--explain", action="store_true",
                     help="cho cán bộ: các ứng viên, tín hiệu và lý do trả lời / đưa lựa chọn / từ chối")


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.service import run_service

    return await run_service(settings)


async def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.wiring import build_core
    from bot.channels.console import ConsoleChannel

    core = await build_core(settings)
    try:
        console = ConsoleChannel(core.dialogue.handle, pick_prompt=core.dialogue.say("console_pick"))
        interactive = sys.stdin.isatty()
        if interactive:
            print(core.dialogue.say("console_welcome") + "\n")
        await console.run(first="/start" if interactive else None)
    finally:
        await core.close()
    return 0


async def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app.wiring import build_index
    from bot.kernel.markup import to_plain

    content = load_content(settings.content_dir)
    index = build_index(content)

    def one(question: str) -> None:
        if args.explain:
            from bot.knowledge.explain import explain

            print("\n".join(explain(index, question)) + "\n", flush=True)
            return
        answer = index.search(question)
        best = answer.best
        confident = answer.decision == "answer" and best is not None
        if args.json:
            record = {
                "question": question,
                "id": best.entry.id if confident and best else None,
                "title": best.entry.title if confident and best else None,
                "score": round(best.confidence, 4) if best else 0.0,
                "answer": to_plain(best.entry.body) if confident and best else None,
                "decision": answer.decision,
                "choices": [h.entry.id for h in answer.hits] if answer.decision == "choices" else [],
            }
            print(json.dumps(record, ensure_ascii=False), flush=True)
        elif confident and best:
            print(f"[{best.entry.id}] {best.entry.title}\n{to_plain(best.entry.body)}\n", flush=True)
        elif answer.decision == "choices":
            print("(chưa chắc chắn, gợi ý) " + "; ".join(f"[{h.entry.id}] {h.entry.title}" for h in answer.hits))
        else:
            print("(từ chối) Trợ lý chưa có câu trả lời chắc chắn cho câu hỏi này.\n", flush=True)

    if args.question is not None:
        one(args.question)
        return 0
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip():
            one(line.strip())
    return 0
