"""Keep the long-lived heap out of Python's cyclic garbage collector.

The knowledge index (several hundred thousand small objects with 5,000 entries), the content and
the service's wiring live as long as the process. A full collection walks all of them: 180 ms
with 5,000 entries, a pause every request in flight waits out (a dashboard page, a resident's
answer). `gc.freeze()` moves what exists now into a generation the collector never scans, so
its collections only look at objects made afterwards. Freezing is cheap (no walk); objects
frozen and later dropped are still freed by reference counting, only frozen cycles would stay.
"""

from __future__ import annotations

import gc


def freeze_long_lived(*, collect: bool = False) -> None:
    """Exempt every object alive now from later collections; with `collect`, clear the garbage
    first (a full collection: at start-up only, never on the event loop of a running service)."""
    if collect:
        gc.collect()
    gc.freeze()
