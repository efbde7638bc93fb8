"""This process's side of the broker: the sockets of each room and how a frame reaches them.

A frame is written to every socket of the room from one callback on the loop, as the websockets
library's own broadcast does: no task is woken per socket (that cost more than the writing;
bench/live_fanout.py). Under uvicorn's websockets (Sans-I/O) protocol, the frame is encoded
once, as the bytes a server's text frame is on the wire, and those same bytes are written to
each socket's transport (DirectSocket): no coroutine, no ASGI message and no encoding per
socket (bench/scaleout.py). A socket whose transport already holds QUEUE_LIMIT_BYTES unsent
(its viewer reads too slowly) is cut off (1013) and its page reconnects from its position.

Under any other server (the test client, another protocol) each socket's send coroutine is run
at once to its end (streaming.subscription), which the server's websocket send reaches without
waiting. Should one have to wait, the rest of it goes on in a task (kept, so it is not
collected mid-send) and the socket's next frames queue behind it, so a slow socket holds up
nobody else; past QUEUE_LIMIT_BYTES queued the socket is cut off (1013) as well.

What other threads publish (a request's commit, the Redis listener) reaches the loop in
flushes, at least FLUSH_GAP_S apart: a socket gets all its frames of a flush in one write, and
the room's positioned frames go out in position order, one that came past a gap waiting up to
REORDER_WAIT_S for it to fill (two approvals may publish the other way round from how they
committed).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from streaming.direct_socket import (  # noqa: F401 (what the broker hands on)
    QUEUE_LIMIT_BYTES,
    TOO_SLOW,
    Send,
    wire_text,
)
from streaming.protocol import pos_of
from streaming.subscription import AHEAD_LIMIT, Subscription

# How long a frame that came past a gap in the room's positions waits for the gap to fill.
REORDER_WAIT_S = 0.2
# At most one viewer count a second per room: a count per join, sent to everyone already in,
# is N² frames when a session starts (4.5 million for 3,000 viewers; bench/live_fanout.py).
COUNT_EVERY_S = 1.0
# The least time between two flushes of what other threads published (a commit, the Redis
# listener): frames that come closer together wait for the next flush, at most this long, and
# go to each socket in one write (bench/scaleout.py: one write per frame and socket is what
# a process's fan-out spends its time on).
FLUSH_GAP_S = 0.025


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
        # Frames published from other threads, waiting for the loop's next flush.
        self._batch: list[tuple[int, list[str], bool]] = []
        self._batch_guard = threading.Lock()
        self._flushed_at = -math.inf  # loop time the last flush ended
        # Per room, on the loop: the next position the flushes expect, the frames that came
        # ahead of it (by position), and when those stop waiting for the gap to fill.
        self._next_pos: dict[int, int] = {}
        self._ahead: dict[int, dict[int, tuple[str, bool]]] = {}
        self._ahead_timers: dict[int, asyncio.TimerHandle] = {}

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
            if event_id not in self._rooms and event_id not in self._hosts:
                self._next_pos.pop(event_id, None)
                self._ahead.pop(event_id, None)
                timer = self._ahead_timers.pop(event_id, None)
                if timer is not None:
                    timer.cancel()
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
            return
        with self._batch_guard:
            self._batch.append((event_id, frames, hosts_only))
            if len(self._batch) > 1:
                return  # a flush is due on the loop already: it takes these too
        loop.call_soon_threadsafe(self._flush_soon)

    def _flush_soon(self) -> None:
        """At once when the last flush ended FLUSH_GAP_S ago or more; else when that gap is
        over, with what else came meanwhile. Frames that come faster than that (a busy room:
        each flush of one frame to 3,000 sockets is 3,000 writes) then go out several to a
        write, instead of the loop falling behind one write per frame and socket."""
        assert self._loop is not None
        wait = self._flushed_at + FLUSH_GAP_S - self._loop.time()
        if wait > 0:
            self._loop.call_later(wait, self._flush)
        else:
            self._flush()

    def _flush(self) -> None:
        """What other threads (a request's commit, the Redis listener) published since the
        last flush, room by room in the order it came: a socket gets all of its frames of the
        flush in one write, so the more the loop lags behind, the fewer writes it makes."""
        with self._batch_guard:
            batch, self._batch = self._batch, []
        rooms: dict[int, list[tuple[str, bool]]] = {}
        for event_id, frames, hosts_only in batch:
            rooms.setdefault(event_id, []).extend((frame, hosts_only) for frame in frames)
        for event_id, items in rooms.items():
            self._deliver_items(event_id, self._in_order(event_id, items))
        if self._loop is not None:
            self._flushed_at = self._loop.time()

    def _deliver_items(self, event_id: int, items: list[tuple[str, bool]]) -> None:
        if len(items) == 1:
            self._deliver(event_id, [items[0][0]], items[0][1])
        elif items:
            self._deliver_together(event_id, items)

    def _in_order(self, event_id: int, items: list[tuple[str, bool]]
                  ) -> list[tuple[str, bool]]:
        """What of a flush goes out now: the frames without a position, and the positioned
        ones up to the first gap; those past a gap wait (at most REORDER_WAIT_S) for it to
        fill. Two approvals that commit one after the other may publish the other way round,
        and a page that got the later one first would re-read the room from its position: for
        3,000 viewers, 3,000 requests at once."""
        if event_id not in self._rooms and event_id not in self._hosts:
            return items  # nobody watches it here: nothing to keep
        expected = self._next_pos.get(event_id)
        ahead = self._ahead.setdefault(event_id, {})
        ready: list[tuple[str, bool]] = []
        for frame, hosts_only in items:
            pos = pos_of(frame)
            if pos is None:
                ready.append((frame, hosts_only))
            elif expected is None or pos <= expected:
                ready.append((frame, hosts_only))
                if expected is None or pos == expected:
                    expected = pos + 1
                    while expected in ahead:
                        ready.append(ahead.pop(expected))
                        expected += 1
            else:
                ahead[pos] = (frame, hosts_only)
        if expected is not None:
            self._next_pos[event_id] = expected
        if len(ahead) > AHEAD_LIMIT:
            ready += self._give_up(event_id)
        elif ahead and event_id not in self._ahead_timers and self._loop is not None:
            self._ahead_timers[event_id] = self._loop.call_later(
                REORDER_WAIT_S, self._stop_waiting, event_id)
        elif not ahead and event_id in self._ahead_timers:
            self._ahead_timers.pop(event_id).cancel()
        return ready

    def _give_up(self, event_id: int) -> list[tuple[str, bool]]:
        """The frames waiting past a gap, in position order: the gap did not fill (Redis
        delivers at most once); each page finds the hole by its position and re-reads it."""
        timer = self._ahead_timers.pop(event_id, None)
        if timer is not None:
            timer.cancel()
        ahead = self._ahead.pop(event_id, {})
        if ahead:
            self._next_pos[event_id] = max(ahead) + 1
        return [ahead[pos] for pos in sorted(ahead)]

    def _stop_waiting(self, event_id: int) -> None:
        self._ahead_timers.pop(event_id, None)
        self._deliver_items(event_id, self._give_up(event_id))

    def _deliver_together(self, event_id: int, items: list[tuple[str, bool]]) -> None:
        with self._guard:
            hosts = list(self._hosts.get(event_id, ()))
            viewers = list(self._rooms.get(event_id, ()))
        encoded = in_position_order(
            [(frame, pos_of(frame), wire_text(frame), hosts_only) for frame, hosts_only in items])
        everyone = [(frame, pos, wire) for frame, pos, wire, _hosts_only in encoded]
        public = [(frame, pos, wire) for frame, pos, wire, hosts_only in encoded
                  if not hosts_only]
        self.frames_sent += len(everyone) * len(hosts) + len(public) * len(viewers)
        for subscription in hosts:
            subscription.offer_all(everyone)
        if public:
            for subscription in viewers:
                subscription.offer_all(public)

    def _deliver(self, event_id: int, frames: list[str], hosts_only: bool = False) -> None:
        with self._guard:
            subscribers = list(self._hosts.get(event_id, ()))
            if not hosts_only:
                subscribers += self._rooms.get(event_id, ())
        self.frames_sent += len(frames) * len(subscribers)
        for frame in frames:
            pos, wire = pos_of(frame), wire_text(frame)
            for subscription in subscribers:
                subscription.offer(frame, pos, wire)


Encoded = tuple[str, int | None, bytes, bool]  # a frame, its pos, its wire bytes, hosts only


def in_position_order(items: list[Encoded]) -> list[Encoded]:
    """The positioned frames of a flush in the order of their positions (two approvals that
    committed one after the other may publish the other way round: a page that got the later
    first would re-read from its position), each in a slot a positioned frame had."""
    slots = [index for index, item in enumerate(items) if item[1] is not None]
    if len(slots) < 2:
        return items
    ordered = sorted((items[index] for index in slots), key=lambda item: item[1] or 0)
    found = list(items)
    for index, item in zip(slots, ordered, strict=True):
        found[index] = item
    return found


def viewers_frame(count: int) -> str:
    return json.dumps({"type": "viewers", "count": count}, separators=(",", ":"))
