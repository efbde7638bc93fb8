"""What the live room's sockets hear when their process is stopped (SIGTERM from systemd or a
deploy, Ctrl-C): each is closed with 1012 (RFC 6455 "service restart") and the reason
`{"retry_ms": N}`, how long its page waits before it reconnects (to any process: the proxy
sends it to one that runs). N is drawn at random, for each socket, over a window that grows
with the sockets this process holds (RECONNECTS_PER_S), so an audience of thousands comes
back spread over seconds instead of in one burst on the processes left. The page reconnects
from its position and misses nothing.

Uvicorn closes the sockets itself once its shutdown starts, with a bare 1012 and no reason;
the signal is heard here first (the server's own handler still runs, at once), and the
sockets are closed in the ~0.1 s before uvicorn's loop notices it should stop.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import threading
import weakref
from collections.abc import Callable
from types import FrameType
from typing import Any

SERVICE_RESTART = 1012
# Reconnections a second the processes left should take for the sockets of one stopping
# process: each costs a handshake, a token check and a read of what the page missed.
RECONNECTS_PER_S = 250
# The window the delays are drawn over: never shorter (a few hundred pages still arrive over
# a couple of seconds), never longer (a viewer waits at most this for the comments).
MIN_WINDOW_S, MAX_WINDOW_S = 2.0, 60.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def window_s(sockets: int) -> float:
    """The window a stopping process with `sockets` room sockets spreads them over."""
    return min(MAX_WINDOW_S, max(MIN_WINDOW_S, sockets / RECONNECTS_PER_S))


class RestartNotice:
    """One per app. `leaving` (on an event loop: that loop's future) is done once the process
    is being stopped; `reason()` is a socket's close reason then. An app may be served on
    several loops (a test's clients each run one)."""

    def __init__(self) -> None:
        self.window_s = MIN_WINDOW_S
        self.stopping = False
        self._leaving: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                                 asyncio.Future[None]] = \
            weakref.WeakKeyDictionary()

    @property
    def leaving(self) -> asyncio.Future[None]:
        loop = asyncio.get_running_loop()
        found = self._leaving.get(loop)
        if found is None:
            found = self._leaving[loop] = loop.create_future()
            if self.stopping:
                found.set_result(None)
        return found

    def announce(self, sockets: int) -> None:
        """The process is stopping with `sockets` room sockets open: every one closes. From
        any thread."""
        if self.stopping:
            return
        self.window_s = window_s(sockets)
        self.stopping = True
        for loop, future in list(self._leaving.items()):
            if not loop.is_closed():
                loop.call_soon_threadsafe(_settle, future)

    def reason(self) -> str:
        retry_ms = round(random.uniform(0, self.window_s) * 1000)
        return json.dumps({"retry_ms": retry_ms}, separators=(",", ":"))

    def listen(self, count: Callable[[], int]) -> Callable[[], None]:
        """Hears SIGTERM and SIGINT before the server does (its handler is called right
        after); `count` says how many room sockets are open. Returns what undoes it. Only
        where a server already handles the signal in this thread (uvicorn does, in the main
        thread): elsewhere (a test's app in a thread) it does nothing."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        installed: dict[int, tuple[Any, Any]] = {}

        def announce() -> None:
            self.announce(count())

        for signum in SIGNALS:
            previous = signal.getsignal(signum)
            if not callable(previous):
                continue  # nobody here stops gracefully on it: leave it alone

            def heard(number: int, frame: FrameType | None, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(announce)
                previous(number, frame)

            signal.signal(signum, heard)
            installed[signum] = (heard, previous)

        def undo() -> None:
            for signum, (heard, previous) in installed.items():
                if signal.getsignal(signum) is heard:
                    signal.signal(signum, previous)

        return undo
