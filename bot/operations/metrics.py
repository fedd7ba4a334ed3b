"""`GET /metrics`: the service's numbers in the Prometheus text format (version 0.0.4).

What the tables already hold is counted from them at scrape time, one cheap query each under a
timeout (like /healthz), so it survives restarts and needs no bookkeeping:

    loaphuong_outbox_pending{channel}                 gauge    outbox rows waiting to be sent
    loaphuong_outbox_failed{channel}                  gauge    outbox rows that failed for good
    loaphuong_messages_sent_total{channel,kind,source="broadcast"}   outbox rows sent (group/private)
    loaphuong_questions_total{decision}               counter  question_log: answered, choices, declined
    loaphuong_tickets_open{kind}                      gauge    tickets not yet answered (question/petition)
    loaphuong_supervision_overdue                     gauge    planned supervision past its due date
    loaphuong_database_up                             gauge    0 when a query failed or timed out

What no table holds is counted in this process (reset by a restart; Prometheus' rate() copes):

    loaphuong_messages_sent_total{channel,kind,source="reply"}       replies the dialogue sent
    loaphuong_rate_limited_total{channel}             counter  429s the delivery worker got (Zalo: quota)
    loaphuong_channel_paused{channel}                 gauge    1 while the worker holds a channel back
    loaphuong_channel_up{channel}                     gauge    the adapter is running
    loaphuong_reply_latency_seconds{channel}          histogram  inbound handed to the dialogue → first
                                                      reply confirmed sent by the platform

One `Metrics` is made by the composition root (bot.app.service) and handed to what records into
it: the delivery worker gets `channel_paused` as its `on_pause` callback, the dialogue handler is
wrapped with `timed`. Nothing here imports a channel or the worker. The exposition is written
here (a few lines); `prometheus_client` is used by the tests only, to parse it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)

QUERY_TIMEOUT = 2.0  # seconds, each query (as /healthz)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
DECISIONS = ("answered", "choices", "declined")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Inbound → replies, as bot.channels.base defines them (typed loosely: no channel import here).
Handler = Callable[[Any], Awaitable[list[Any]]]
Labels = tuple[tuple[str, str], ...]


class Histogram:
    """Cumulative buckets, sum and count, as Prometheus wants them."""

    def __init__(self, buckets: Iterable[float] = LATENCY_BUCKETS) -> None:
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1


class Metrics:
    def __init__(self, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock  # the delivery worker's clock (epoch seconds): paused_until is on it
        self.monotonic = monotonic
        self.rate_limited: Counter[str] = Counter()
        self.paused_until: dict[str, float] = {}
        self.replies: Counter[tuple[str, str]] = Counter()  # (channel, kind)
        self.latency: dict[str, Histogram] = {}

    # ------------------------------------------------------------------ recording

    def channel_paused(self, channel: str, kind: str, until: float) -> None:
        """The delivery worker holds `channel` back until `until` (a 429: kind "rate_limited";
        a refused token: "unauthorized")."""
        if kind == "rate_limited":
            self.rate_limited[channel] += 1
        self.paused_until[channel] = max(until, self.paused_until.get(channel, 0.0))

    def reply_sent(self, channel: str, kind: str, seconds: float | None = None) -> None:
        self.replies[(channel, kind)] += 1
        if seconds is not None:
            self.latency.setdefault(channel, Histogram()).observe(seconds)

    def timed(self, handler: Handler) -> Handler:
        """Wrap the dialogue handler: each reply counts when the adapter confirms it sent (its
        `on_sent` hook, chained before the reply's own), the first one to the person's chat also
        records the latency since the inbound arrived here."""

        async def wrapped(inbound: Any) -> list[Any]:
            started = self.monotonic()
            replies = await handler(inbound)
            first = True
            out = []
            for reply in replies:
                channel = reply.channel or inbound.channel
                chat_id = reply.chat_id or inbound.chat_id
                here = channel == inbound.channel and chat_id == inbound.chat_id
                kind = inbound.chat_kind if here else ("group" if chat_id.startswith("-") else "private")
                timed_from = started if here and first else None
                first = first and not here
                out.append(dataclasses.replace(reply, on_sent=self._hook(reply.on_sent, channel, kind, timed_from)))
            return out

        return wrapped

    def _hook(self, after: Callable[[Any], Awaitable[None]] | None, channel: str, kind: str,
              started: float | None) -> Callable[[Any], Awaitable[None]]:
        async def on_sent(sent: Any) -> None:
            self.reply_sent(channel, kind, None if started is None else self.monotonic() - started)
            if after is not None:
                await after(sent)

        return on_sent

    # ------------------------------------------------------------------ the page

    async def render(self, db: Any, channels: Mapping[str, Any]) -> str:
        """The whole exposition: the tables read now, the counters of this process."""
        known = set(channels)
        families: list[str] = []
        database_up = 1
        outbox: list[Any] = []
        questions: dict[str, int] = {}
        tickets: dict[str, int] = {}
        overdue: int | None = None
        try:
            outbox = await _query(db.fetchall(
                "SELECT channel, status, kind, COUNT(*) AS n FROM outbox GROUP BY channel, status, kind"))
            questions = {r[0]: r[1] for r in await _query(db.fetchall(
                "SELECT outcome, COUNT(*) FROM question_log GROUP BY outcome"))}
            tickets = {r[0]: r[1] for r in await _query(db.fetchall(
                "SELECT kind, COUNT(*) FROM tickets WHERE status = 'open' GROUP BY kind"))}
            overdue = int(await _query(db.fetchval(
                "SELECT COUNT(*) FROM supervision_plans WHERE status = 'planned' AND due_at < ?", (self.clock(),))))
        except Exception as exc:  # a timeout or a locked/broken file: say so, serve the rest
            database_up = 0
            log.warning("http: /metrics: database query failed: %s", exc or type(exc).__name__)
        known |= {r[0] for r in outbox}
        pending = {c: 0 for c in known}
        failed = {c: 0 for c in known}
        sent: Counter[Labels] = Counter()
        for r in outbox:
            channel, status, kind, n = r[0], r[1], r[2], r[3]
            if status == "pending":
                pending[channel] += n
            elif status == "failed":
                failed[channel] += n
            else:
                sent[(("channel", channel), ("kind", kind), ("source", "broadcast"))] += n
        for (channel, kind), n in self.replies.items():
            sent[(("channel", channel), ("kind", kind), ("source", "reply"))] += n
        now = self.clock()
        families += [
            _family("loaphuong_database_up", "gauge", "1 when every query of this scrape answered in time",
                    [((), database_up)]),
            _family("loaphuong_outbox_pending", "gauge", "Outbox rows waiting to be sent",
                    _by("channel", pending) if database_up else []),
            _family("loaphuong_outbox_failed", "gauge", "Outbox rows that failed for good",
                    _by("channel", failed) if database_up else []),
            _family("loaphuong_messages_sent_total", "counter",
                    "Messages sent: broadcast (outbox rows) and reply (dialogue answers, since start)",
                    sorted(sent.items())),
            _family("loaphuong_questions_total", "counter", "Questions asked, by the bot's decision",
                    _by("decision", {d: questions.get(d, 0) for d in DECISIONS}) if database_up else []),
            _family("loaphuong_tickets_open", "gauge", "Tickets waiting for a staff answer",
                    _by("kind", {k: tickets.get(k, 0) for k in ("question", "petition")}) if database_up else []),
            _family("loaphuong_supervision_overdue", "gauge", "Planned supervision activities past their due date",
                    [((), overdue)] if overdue is not None else []),
            _family("loaphuong_rate_limited_total", "counter", "429 answers to the delivery worker, since start",
                    _by("channel", {c: self.rate_limited.get(c, 0) for c in known | set(self.rate_limited)})),
            _family("loaphuong_channel_paused", "gauge", "1 while the delivery worker holds the channel back",
                    _by("channel", {c: int(self.paused_until.get(c, 0.0) > now)
                                    for c in known | set(self.paused_until)})),
            _family("loaphuong_channel_up", "gauge", "1 when the channel adapter is running",
                    _by("channel", {c: int(bool(getattr(ch, "running", True))) for c, ch in channels.items()})),
            self._latency_family(),
        ]
        return "".join(families)

    def _latency_family(self) -> str:
        name = "loaphuong_reply_latency_seconds"
        lines = [f"# HELP {name} From an inbound reaching the dialogue to its first reply sent\n",
                 f"# TYPE {name} histogram\n"]
        for channel in sorted(self.latency):
            h = self.latency[channel]
            label = f'channel="{_escape(channel)}"'
            for bound, count in zip(h.bounds, h.counts, strict=True):
                lines.append(f'{name}_bucket{{{label},le="{_number(bound)}"}} {count}\n')
            lines.append(f'{name}_bucket{{{label},le="+Inf"}} {h.count}\n')
            lines.append(f"{name}_sum{{{label}}} {_number(h.sum)}\n")
            lines.append(f"{name}_count{{{label}}} {h.count}\n")
        return "".join(lines)


async def _query(awaitable: Awaitable[Any]) -> Any:
    return await asyncio.wait_for(awaitable, QUERY_TIMEOUT)


def _by(label: str, values: Mapping[str, int]) -> list[tuple[Labels, int]]:
    return [(((label, key),), values[key]) for key in sorted(values)]


def _family(name: str, kind: str, help_text: str, samples: Iterable[tuple[Labels, float | int]]) -> str:
    lines = [f"# HELP {name} {help_text}\n", f"# TYPE {name} {kind}\n"]
    for labels, value in samples:
        text = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels)
        lines.append(f"{name}{{{text}}} {_number(value)}\n" if text else f"{name} {_number(value)}\n")
    return "".join(lines)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def _number(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
