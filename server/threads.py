"""Request threads, and how long a request may wait for one.

Every plain `def` endpoint (and dependency) runs in a thread of the event loop's pool, of which
there are REQUEST_THREADS (server.db: never more than the pooled connections). When slow work
holds the threads (writers waiting for a lock, a database that answers slowly), requests used
to queue for them without end, until nginx gave up at 60 s with the work still queued. Now an
HTTP request that has waited KAIFANG_THREAD_WAIT_S since it arrived, and still has no thread,
is answered 503 `busy` with Retry-After, as a lock or a connection that does not come in time
is: the citizen's page says 系统繁忙，请稍后再试.

It does not shorten the queue of a process short of CPU: there requests wait before the app
sees them (the kernel's accept queue, the event loop's), and few wait for a thread
(bench/overload.py: at twice a process's capacity, answers after 30 s with or without this
bound, at most 130 requests waiting for a thread at once). That takes another process.

Only a request's first thread has a deadline, and only the request's own task (the Edge
names both): nothing of the request has run before it. Its endpoint and its answer then wait
as long as they must, and so does work a request started that goes on without it (the
registration desk's group commit): refused then, work would be done and its answer lost.
The upload endpoints take their first thread (their admission check) before they read the
body, so a refusal never comes after an upload.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time

import anyio
from anyio._backends import _asyncio as anyio_asyncio

from events.errors import Busy

log = logging.getLogger("kaifang.threads")

# (the request's task, the monotonic time by which it must have a thread)
_DEADLINE: contextvars.ContextVar[tuple[asyncio.Task[object], float] | None] = \
    contextvars.ContextVar("kaifang_thread_deadline", default=None)


def wait_at_most(seconds: float) -> contextvars.Token[tuple[asyncio.Task[object], float] | None]:
    """From now on the current task (an HTTP request) waits at most `seconds` for a thread."""
    task = asyncio.current_task()
    assert task is not None
    return _DEADLINE.set((task, time.monotonic() + seconds))


def done_waiting(token: contextvars.Token[tuple[asyncio.Task[object], float] | None]) -> None:
    _DEADLINE.reset(token)


class RequestThreads(anyio_asyncio.CapacityLimiter):
    """anyio's limiter of the pool's threads, whose wait ends at the request's deadline.
    Its base class and the loop's default-limiter variable (install) are anyio's private
    parts, as no public API replaces the default limiter: anyio is pinned (constraints.txt),
    and tests/server/test_thread_wait.py fails if either moves."""

    __slots__ = ("refused",)

    def __init__(self, total_tokens: int) -> None:
        super().__init__(total_tokens)
        self.refused = 0  # requests answered busy for want of a thread (GET /metrics)

    async def acquire_on_behalf_of(self, borrower: object) -> None:
        bounded = _DEADLINE.get()
        if bounded is None or bounded[0] is not borrower:
            await super().acquire_on_behalf_of(borrower)
            return
        _DEADLINE.set(None)  # the first thread only (the module's docstring)
        with anyio.move_on_after(max(0.0, bounded[1] - time.monotonic())) as waited:
            await super().acquire_on_behalf_of(borrower)
        if waited.cancelled_caught:
            self.refused += 1
            raise Busy("busy", "the service is busy: please try again in a moment",
                       retry_after_s=1)


def install(total: int) -> RequestThreads:
    """Makes a RequestThreads of `total` threads the running event loop's default limiter
    (what Starlette's and anyio's `to_thread` take)."""
    threads = RequestThreads(total)
    anyio_asyncio._default_thread_limiter.set(threads)
    assert anyio.to_thread.current_default_thread_limiter() is threads
    return threads
