"""The search process: `python -m bot.knowledge.search_worker CONTENT_DIR`, started by the service.

It loads the content folder, builds the same index as the service (bot/knowledge/build.py) and
answers searches read from stdin, one at a time, on stdout. Searching is pure CPU work: done here,
on the machine's other core, it no longer holds up the service's event loop, which meanwhile
receives webhooks and sends replies (bot/knowledge/searcher.py is the service's side).

Frames both ways: a 4-byte big-endian length, then a pickle (only ever between this process and
the service that started it). In: ("search", id, text, limit) or ("reload",). Out: ("ready",
entry ids in index order) after each (re)load, ("answer", id, answer) or ("failed", id, reason).
An answer names entries by id: the service maps them back to its own Entry objects.
"""

from __future__ import annotations

import logging
import pickle
import struct
import sys
from pathlib import Path
from typing import Any, BinaryIO

from bot.kernel.content import load_content
from bot.kernel.heap import freeze_long_lived
from bot.knowledge.build import build_index
from bot.knowledge.index import Answer, Hit, KnowledgeIndex

HEADER = struct.Struct("!I")
log = logging.getLogger("bot.knowledge.search_worker")


def write_frame(out: BinaryIO, message: tuple[Any, ...]) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(HEADER.pack(len(data)) + data)
    out.flush()


def read_frame(inp: BinaryIO) -> tuple[Any, ...] | None:
    head = inp.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    (size,) = HEADER.unpack(head)
    return pickle.loads(inp.read(size))


def hit_wire(hit: Hit | None) -> tuple[Any, ...] | None:
    return None if hit is None else (hit.entry.id, hit.score, hit.confidence, hit.signals)


def answer_wire(answer: Answer) -> tuple[Any, ...]:
    return (answer.decision, tuple(hit_wire(h) for h in answer.hits), answer.folded,
            answer.outside.id if answer.outside else None, hit_wire(answer.nearest_outside))


def _load(root: Path) -> KnowledgeIndex:
    index = build_index(load_content(root))
    freeze_long_lived()  # searches never wait out a collector walk over the index (bot.kernel.heap)
    return index


def serve(root: Path, inp: BinaryIO, out: BinaryIO) -> None:
    index = _load(root)
    write_frame(out, ("ready", [e.id for e in index.entries]))
    while (message := read_frame(inp)) is not None:
        if message[0] == "reload":
            try:
                index = _load(root)
            except Exception as exc:  # the service keeps its own index and searches itself
                log.error("search process: content in %s did not load (%s); keeping the old index", root, exc)
            write_frame(out, ("ready", [e.id for e in index.entries]))
            continue
        _, request, text, limit = message
        try:
            write_frame(out, ("answer", request, answer_wire(index.search(text, limit))))
        except Exception as exc:
            log.exception("search process: search failed")
            write_frame(out, ("failed", request, repr(exc)[:200]))


def main() -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(Path(sys.argv[1]), sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
