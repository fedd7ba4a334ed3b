"""Where the dialogue's searches run: in a search process beside the service, or right here.

A search is 1–4 ms of pure CPU (more on thousands of entries). Run on the event loop it holds up
every other resident's webhook and reply, and uses one core of the machine. `Searcher` sends each
search to a child process (bot/knowledge/search_worker.py) that holds the same index, and awaits
its answer; the loop meanwhile goes on receiving and sending.

Nothing depends on the child: until it is ready, while it reloads, if it dies (it is started again
after RESTART_AFTER seconds) or answers something unexpected, the search is run here, on the
service's own index, and a log line says why. When staff edit knowledge (bot/knowledge/live.py
swaps the live index), the next search sees the new generation, searches here and tells the child
to reload the folder; it is used again once it has loaded the same entries. `chat`, `ask` and the
tests that never start it search here too. SEARCH_PROCESS=0 turns the child off.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import pickle
import sys
from pathlib import Path
from typing import Any

from bot.knowledge.index import Answer, Hit
from bot.knowledge.live import LiveKnowledge
from bot.knowledge.search_worker import HEADER

log = logging.getLogger(__name__)

RESTART_AFTER = 5.0  # seconds before a search process that died is started again


class Searcher:
    def __init__(self, knowledge: LiveKnowledge, content_dir: Path, *, process: bool = True,
                 python: str = sys.executable, restart_after: float = RESTART_AFTER) -> None:
        self.knowledge = knowledge
        self.restart_after = restart_after
        self.content_dir = content_dir
        self.process = process
        self.python = python
        self._generation = knowledge.generation
        self._by_id = {e.id: e for e in knowledge.index.entries}
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready = False
        self._stopping = False
        self._waiting: dict[int, asyncio.Future[tuple[Any, ...]]] = {}
        self._numbers = itertools.count(1)
        self._restart: asyncio.TimerHandle | None = None
        self._restarting: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """Whether searches go to the search process now."""
        return self._ready

    async def search(self, text: str, limit: int = 3) -> Answer:
        if self.knowledge.generation != self._generation:
            self._follow_reload()
        index = self.knowledge.index
        if not self._ready or self._proc is None or self._proc.stdin is None:
            return index.search(text, limit)
        request = next(self._numbers)
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        self._waiting[request] = future
        data = pickle.dumps(("search", request, text, limit), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self._proc.stdin.write(HEADER.pack(len(data)) + data)
            wire = await future
            return self._answer(wire)
        except Exception as exc:  # the process died, or an answer we cannot read: search here
            log.warning("search process: %s; searched in the service instead", exc)
            return index.search(text, limit)
        finally:
            self._waiting.pop(request, None)

    def _answer(self, wire: tuple[Any, ...]) -> Answer:
        decision, hits, folded, outside, nearest = wire
        return Answer(decision, tuple(self._hit(h) for h in hits), folded,
                      outside=self._by_id[outside] if outside else None,
                      nearest_outside=self._hit(nearest) if nearest else None)

    def _hit(self, wire: tuple[Any, ...]) -> Hit:
        entry_id, score, confidence, signals = wire
        return Hit(self._by_id[entry_id], score, confidence, signals)

    # ------------------------------------------------------------------ the process

    async def start(self) -> None:
        if not self.process:
            return
        self._stopping = False
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self.python, "-m", "bot.knowledge.search_worker", str(self.content_dir),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        except OSError as exc:
            log.error("search process did not start (%s); searching in the service", exc)
            return
        self._reader = asyncio.create_task(self._read(self._proc), name="search-process")

    def _follow_reload(self) -> None:
        """The live index was swapped: search here until the child has loaded the folder again."""
        self._generation = self.knowledge.generation
        self._by_id = {e.id: e for e in self.knowledge.index.entries}
        self._ready = False
        if self._proc is not None and self._proc.stdin is not None and self._proc.returncode is None:
            data = pickle.dumps(("reload",), protocol=pickle.HIGHEST_PROTOCOL)
            self._proc.stdin.write(HEADER.pack(len(data)) + data)

    async def stop(self) -> None:
        self._stopping = True
        self._ready = False
        if self._restart is not None:
            self._restart.cancel()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # end of input: the process exits
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while True:
                (size,) = HEADER.unpack(await proc.stdout.readexactly(HEADER.size))
                message = pickle.loads(await proc.stdout.readexactly(size))
                kind = message[0]
                if kind == "ready":
                    if self.knowledge.generation != self._generation:
                        self._follow_reload()  # swapped meanwhile: wait for the ready of that reload
                        continue
                    ids = [e.id for e in self.knowledge.index.entries]
                    self._ready = message[1] == ids
                    if self._ready:
                        log.info("search process ready (%d entries)", len(ids))
                    else:  # the folder changed between our load and its own: search here
                        log.warning("search process loaded other content than the service; searching in the"
                                    " service until the next reload")
                    continue
                future = self._waiting.get(message[1])
                if future is None or future.done():
                    continue
                if kind == "answer":
                    future.set_result(message[2])
                else:
                    future.set_exception(RuntimeError(f"the search failed there ({message[2]})"))
        except (asyncio.IncompleteReadError, ConnectionError, pickle.UnpicklingError, ValueError) as exc:
            if not self._stopping:
                log.error("search process stopped (%s, exit code %s); searching in the service, starting it"
                          " again in %.0f s", type(exc).__name__, proc.returncode, self.restart_after)
        finally:
            self._ready = False
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("the search process stopped"))
            if not self._stopping:
                self._restart = asyncio.get_running_loop().call_later(self.restart_after, self._restart_later)

    def _restart_later(self) -> None:
        self._restarting = asyncio.create_task(self._restart_process(), name="search-process-restart")

    async def _restart_process(self) -> None:
        if self._stopping:
            return
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        await self.start()
