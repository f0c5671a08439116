"""Prompt caches per model, simulated in time order (pure): what a re-routed call pays for its prefix.

Prompt caches are per model (and per conversation prefix). A recorded call's buckets say what its
model's cache held: `read` tokens of the prompt prefix were in cache, `write` tokens were added, and
the cache then held read + write tokens of the conversation's prefix, alive for its TTL (5 minutes,
or 1 hour when the call wrote with the 1-hour TTL; a read refreshes it).

Replayed on another model, the same call reads only what THAT model's cache holds for the stream
(a session's main conversation, or one sub-agent or side conversation): the part of the recorded
read it does not hold, or all of it once the TTL has passed, is written instead (priced as a cache
write, 5-minute or 1-hour like the stream's recorded writes). Recorded writes stay writes.

A call that stays on its recorded model reads as recorded (the recording is the truth about that
model's cache, including what was cached before the replayed window), unless the replay moved
away a call of the same stream that wrote to that model's cache: then its cache is simulated too.
So a run that keeps a stream on its models pays exactly the recorded pattern, and moving calls
between models pays the rebuilds. No credit is given for a cache the recording did not have.
"""

from __future__ import annotations

from dataclasses import dataclass

FIVE_MINUTES = 300.0
ONE_HOUR = 3600.0


@dataclass
class _Held:
    prefix: int  # tokens of the stream's prefix in this model's cache
    expires: float  # epoch seconds
    ttl: float


class PromptCaches:
    """The caches of every (stream, model) pair seen so far."""

    def __init__(self) -> None:
        self._held: dict[tuple[object, str | None], _Held] = {}
        self._ttl: dict[object, float] = {}  # stream -> TTL of its recorded writes
        self._lost: set[tuple[object, str | None]] = set()  # (stream, model) whose recorded writes went elsewhere

    def call(self, stream: object, model: str | None, at: float, read: int, write: int, write_1h: int,
             recorded: str | None = None) -> tuple[int, int, int]:
        """(read, write, write_1h) of a call recorded on `recorded` (same naming as `model`), replayed
        on `model` at time `at`."""
        if write:
            self._ttl[stream] = ONE_HOUR if write_1h else FIVE_MINUTES
        ttl = self._ttl.get(stream, FIVE_MINUTES)
        key = (stream, model)
        held = self._held.get(key)
        if model == recorded and key not in self._lost:
            warm = read  # as recorded
        else:
            warm = held.prefix if held is not None and at <= held.expires else 0
            if recorded is not None and write and model != recorded:
                self._lost.add((stream, recorded))
        new_read = min(read, warm)
        missing = read - new_read
        new_write = write + missing
        new_w1h = write_1h + (missing if ttl == ONE_HOUR else 0)
        prefix = read + write
        if held is None:
            self._held[key] = _Held(prefix, at + ttl, ttl)
        else:
            held.prefix, held.expires, held.ttl = prefix, at + ttl, ttl
        return new_read, new_write, new_w1h


def switch_pays(cached_prefix: int, calls_left: int, per_call: tuple[int, int, int, int, int], old, new) -> tuple[bool, float, float]:
    """Whether moving a conversation to `new` mid-task pays: (pays, expected saving, rebuild cost).

    `per_call` is a typical remaining call's buckets (input, cache read, cache write, 1h write,
    output) as they would be on a warm cache; `old`/`new` have .cost(inp, read, write, w1h, out) in
    dollars (replay.FloatPrice). The rebuild is the first call on `new` writing the `cached_prefix`
    it would otherwise read. The gateway's stickiness and replay use the same rule."""
    inp, read, write, w1h, out = per_call
    saving = calls_left * (old.cost(inp, read, write, w1h, out) - new.cost(inp, read, write, w1h, out))
    rebuild = new.cost(0, 0, cached_prefix, 0, 0) - new.cost(0, cached_prefix, 0, 0, 0)
    return saving > rebuild, saving, rebuild
