"""This process's side of the broker: the sockets of each room and how a frame reaches them.

A frame is written to every socket of the room from one callback on the loop, as the websockets
library's own broadcast does: no task is woken per socket (that cost more than the writing;
bench/live_fanout.py). Each socket's send coroutine is run at once to its end, which the
server's websocket send reaches without waiting (uvicorn writes to the transport and returns).
Should one have to wait, the rest of it goes on in a task (kept, so it is not collected
mid-send) and the socket's next frames queue behind it, so a slow socket holds up nobody else;
past QUEUE_LIMIT_BYTES queued the socket is cut off (1013) and its page reconnects from its
position.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Coroutine, Generator
from typing import Any

from streaming.protocol import pos_of

# What may queue for one socket (while it catches up, or while a send waits), in bytes of
# frames, before it is cut off (1013) rather than let the queue grow without bound; the page
# reconnects from its position and misses nothing.
QUEUE_LIMIT_BYTES = 1 << 20
TOO_SLOW = 1013
# Positions a socket sends ahead of one that has not come, before it stops waiting for it.
AHEAD_LIMIT = 1000
# At most one viewer count a second per room: a count per join, sent to everyone already in,
# is N² frames when a session starts (4.5 million for 3,000 viewers; bench/live_fanout.py).
COUNT_EVERY_S = 1.0
Send = Callable[[str], Coroutine[Any, Any, None]]


class Subscription:
    """One socket's frames of one room (a host's socket hears the hosts' frames too).

    Until `go_live` the frames wait (the socket is still sending its backlog); from then on each
    is written as it comes, a positioned one (comment, removed, pinned) only when its `pos` is
    past what was sent, so nothing arrives twice. `ended` is done, with a close code, when the
    broker gave up on the socket. `who` is the viewer behind it (None: a socket of its own)."""

    def __init__(self, broker: LocalBroker, event_id: int, send: Send,
                 hosts: bool = False, who: str | None = None) -> None:
        self.broker = broker
        self.event_id = event_id
        self.hosts = hosts
        self.who: str = who if who is not None else f"s{id(self)}"
        self._send = send
        self._waiting: deque[tuple[str, int | None]] | None = deque()  # None: written at once
        self._waiting_bytes = 0
        # Every change up to sent_up_to was sent, and those in _sent_past beyond it: two
        # publishes (two hosts, two processes) may arrive out of order, and neither may be
        # taken for the other's duplicate.
        self.sent_up_to = 0
        self._sent_past: set[int] = set()
        self.live = False  # past its backlog (go_live)
        self._task: asyncio.Task[None] | None = None
        self.ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def go_live(self, sent_up_to: int) -> None:
        """The backlog up to `sent_up_to` is sent: the frames that came meanwhile follow, then
        every frame as it comes."""
        self.sent_up_to = max(self.sent_up_to, sent_up_to)
        self.live = True
        self._sent_past = {pos for pos in self._sent_past if pos > self.sent_up_to}
        await self._drain()

    async def _drain(self) -> None:
        while self._waiting:  # frames may join while a send waits: the loop takes them too
            frame, pos = self._waiting.popleft()
            self._waiting_bytes -= len(frame)
            if self._is_new(pos):
                await self._send(frame)
        self._waiting = None  # no await since the check: nothing is left behind
        self._waiting_bytes = 0

    def _is_new(self, pos: int | None) -> bool:
        if pos is None:
            return True
        if pos <= self.sent_up_to or pos in self._sent_past:
            return False
        self._sent_past.add(pos)
        while self.sent_up_to + 1 in self._sent_past:
            self.sent_up_to += 1
            self._sent_past.discard(self.sent_up_to)
        if len(self._sent_past) > AHEAD_LIMIT:  # a frame that never came: stop waiting for it
            self.sent_up_to = min(self._sent_past) - 1
        return True

    def offer(self, frame: str, pos: int | None) -> None:
        """On the loop: writes the frame now, or queues it behind what waits."""
        if self.ended.done():
            self.broker.frames_dropped += 1
            return
        if self._waiting is not None:
            if self._waiting_bytes + len(frame) > QUEUE_LIMIT_BYTES:
                self.broker.frames_dropped += len(self._waiting) + 1
                self.broker.sockets_cut_slow += 1
                self._end(TOO_SLOW)
            else:
                self._waiting.append((frame, pos))
                self._waiting_bytes += len(frame)
            return
        if not self._is_new(pos):
            return
        sending = self._send(frame)
        try:
            blocked_on = sending.send(None)
        except StopIteration:
            return  # written
        except Exception:  # the socket is gone; its handler notices and leaves the room
            self._end(0)
            return
        self._waiting = deque()
        self._task = asyncio.ensure_future(self._finish(sending, blocked_on))

    async def _finish(self, sending: Coroutine[Any, Any, None], blocked_on: Any) -> None:
        try:
            await _Rest(sending, blocked_on)
            await self._drain()
        except Exception:
            self._end(0)
        finally:
            self._task = None

    def _end(self, code: int) -> None:
        if not self.ended.done():
            self.ended.set_result(code)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.broker._drop(self)


class _Rest:
    """The rest of a coroutine started by hand (Subscription.offer) that is now waiting on
    `blocked_on`: awaiting this runs it to its end in the awaiting task (asyncio's eager tasks,
    Python 3.12, start a coroutine the same way)."""

    def __init__(self, coroutine: Coroutine[Any, Any, None], blocked_on: Any) -> None:
        self.coroutine = coroutine
        self.blocked_on = blocked_on

    def __await__(self) -> Generator[Any, Any, None]:
        blocked_on = self.blocked_on
        while True:
            try:
                answer = yield blocked_on
            except BaseException as exc:  # cancelled: the coroutine hears it where it waits
                try:
                    blocked_on = self.coroutine.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    blocked_on = self.coroutine.send(answer)
                except StopIteration:
                    return


class LocalBroker:
    """Subscribers of this process, fed on its event loop. `watching(event_id, True)` is
    called when a room gains its first socket here, `(event_id, False)` when it loses its last
    (the Redis broker listens to a room only while someone here watches it)."""

    def __init__(self, watching: Callable[[int, bool], None] | None = None) -> None:
        self._rooms: dict[int, set[Subscription]] = defaultdict(set)
        self._hosts: dict[int, set[Subscription]] = defaultdict(set)
        self._who: dict[int, Counter[str]] = defaultdict(Counter)  # viewers' sockets per room
        self._watching = watching
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard = threading.Lock()
        self._counted_at: dict[int, float] = {}  # loop time of each room's last count
        self._count_due: set[int] = set()  # rooms whose next count is scheduled
        # Read by /metrics (server.ops): frames handed to sockets (a frame once per socket),
        # frames a socket will not get live (cut off as too slow, or gone), sockets cut off.
        self.frames_sent = self.frames_dropped = self.sockets_cut_slow = 0

    def subscribe(self, event_id: int, send: Send, hosts: bool = False,
                  who: str | None = None) -> Subscription:
        """On the loop: `send` writes one frame to the socket."""
        self._loop = asyncio.get_running_loop()
        subscription = Subscription(self, event_id, send, hosts, who)
        with self._guard:
            first = event_id not in self._rooms and event_id not in self._hosts
            (self._hosts if hosts else self._rooms)[event_id].add(subscription)
            if not hosts:
                self._who[event_id][subscription.who] += 1
        if first and self._watching is not None:
            self._watching(event_id, True)
        return subscription

    async def ready(self, event_id: int) -> None:
        """Frames published from now on reach this process's sockets of the room."""

    def _drop(self, subscription: Subscription) -> None:
        event_id = subscription.event_id
        with self._guard:
            rooms = self._hosts if subscription.hosts else self._rooms
            if subscription not in rooms.get(event_id, ()):
                return
            rooms[event_id].discard(subscription)
            if not subscription.hosts:
                who = self._who[event_id]
                who[subscription.who] -= 1
                if who[subscription.who] <= 0:
                    del who[subscription.who]
            if not rooms[event_id]:
                del rooms[event_id]
                if not subscription.hosts:
                    self._counted_at.pop(event_id, None)
                    self._who.pop(event_id, None)
            last = event_id not in self._rooms and event_id not in self._hosts
        if last and self._watching is not None:
            self._watching(event_id, False)

    def shown_up_to(self, event_id: int) -> int | None:
        """The room's position every socket here past its backlog has been sent up to (None:
        none is): where a re-read of what Redis may have lost starts."""
        with self._guard:
            subscriptions = list(self._rooms.get(event_id, ())) + \
                list(self._hosts.get(event_id, ()))
        sent = [s.sent_up_to for s in subscriptions if s.live and not s.ended.done()]
        return min(sent) if sent else None

    def viewers(self, event_id: int) -> int:
        """How many watch the room here: viewers, not sockets (one viewer's tabs count once;
        each socket without a token counts)."""
        with self._guard:
            return len(self._who.get(event_id, ()))

    def announce_viewers(self, event_id: int) -> None:
        """At once when the room's last count is a second old, else once at the end of that
        second, with the count of that moment."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._count_soon, event_id)

    def _count_soon(self, event_id: int) -> None:
        assert self._loop is not None
        if event_id in self._count_due:
            return
        wait = self._counted_at.get(event_id, -math.inf) + COUNT_EVERY_S - self._loop.time()
        if wait <= 0:
            self._count_now(event_id)
        else:
            self._count_due.add(event_id)
            self._loop.call_later(wait, self._count_now, event_id)

    def _count_now(self, event_id: int) -> None:
        assert self._loop is not None
        self._count_due.discard(event_id)
        count = self.viewers(event_id)
        if count:  # else nobody is left to tell
            self._counted_at[event_id] = self._loop.time()
            self._deliver(event_id, [viewers_frame(count)])

    def publish(self, event_id: int, frames: Any) -> None:
        self.fan_out(event_id, list(frames), False)

    def publish_hosts(self, event_id: int, frames: Any) -> None:
        self.fan_out(event_id, list(frames), True)

    def fan_out(self, event_id: int, frames: list[str], hosts_only: bool) -> None:
        """To this process's sockets of the room (hosts' only, or everyone's)."""
        loop = self._loop
        if not frames or loop is None or loop.is_closed():
            return  # nobody here has ever watched a room
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(event_id, frames, hosts_only)
        else:
            loop.call_soon_threadsafe(self._deliver, event_id, frames, hosts_only)

    def _deliver(self, event_id: int, frames: list[str], hosts_only: bool = False) -> None:
        with self._guard:
            subscribers = list(self._hosts.get(event_id, ()))
            if not hosts_only:
                subscribers += self._rooms.get(event_id, ())
        self.frames_sent += len(frames) * len(subscribers)
        for frame in frames:
            pos = pos_of(frame)
            for subscription in subscribers:
                subscription.offer(frame, pos)


def viewers_frame(count: int) -> str:
    return json.dumps({"type": "viewers", "count": count}, separators=(",", ":"))
