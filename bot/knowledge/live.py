"""The knowledge the running service answers from, swappable without a restart.

The dialogue, the handoff's "does the bot know this?" and the dashboard read `content` and `index`
from here on every question. `reload` loads and indexes `content/` again in a worker thread (a few
seconds for thousands of entries: the event loop keeps answering with the old index meanwhile), then
swaps both in one assignment, so a question sees the old pair or the new one, never a mix. When the
content is invalid the load raises ContentError and the live pair stays as it was. Messages
(`content/messages.yaml`) are read once at start: a change there still needs a restart.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

from bot.kernel.content import Content
from bot.kernel.heap import freeze_long_lived
from bot.knowledge.index import KnowledgeIndex

log = logging.getLogger(__name__)

# While a reload's thread indexes (seconds of pure Python with 5,000 entries), the event loop and the
# database thread wait for the GIL at each hand-over, 5 ms by default: a page took 0.4 s instead of
# 5 ms. The thread is asked to hand it back this much sooner, for the reload only.
RELOAD_SWITCH_INTERVAL = 0.0005
Loader = Callable[[], tuple[Content, KnowledgeIndex]]  # raises ContentError with every problem


class LiveKnowledge:
    def __init__(self, content: Content, index: KnowledgeIndex, load: Loader) -> None:
        self._pair = (content, index)
        self._load = load
        self._lock = asyncio.Lock()  # one reload at a time: the last edit's load is the one kept
        self.generation = 0  # counts swaps (the dashboard's caches key on it)

    @property
    def content(self) -> Content:
        return self._pair[0]

    @property
    def index(self) -> KnowledgeIndex:
        return self._pair[1]

    async def reload(self) -> Content:
        """Load and index again off the event loop, then swap; ContentError leaves the live pair."""
        async with self._lock:
            switch = sys.getswitchinterval()
            sys.setswitchinterval(RELOAD_SWITCH_INTERVAL)
            try:
                pair = await asyncio.get_running_loop().run_in_executor(None, self._load)
            finally:
                sys.setswitchinterval(switch)
            self._pair = pair
            self.generation += 1
            freeze_long_lived()  # the new index, as the first one at start (bot.kernel.heap)
        log.info("knowledge reloaded: %d entries (swap %d)", len(pair[0].entries), self.generation)
        return pair[0]
