"""Fan-out of a room's frames to the sockets that watch it: the broker interface, the
in-process broker of the embedded default, and Redis pub/sub when KAIFANG_REDIS_URL is set, so
that every app process's viewers get every frame, whichever process published it.

`publish` may be called from any thread (a request's thread commits, then publishes); frames
reach each socket on the event loop, in the order they were published. Nothing is published
before it is committed (`publish_after_commit`).

A frame is written to every socket of the room from one callback on the loop, as the websockets
library's own broadcast does: no task is woken per socket (that cost more than the writing;
bench/live_fanout.py). Each socket's send coroutine is run at once to its end, which the
server's websocket send reaches without waiting (uvicorn writes to the transport and returns).
Should one have to wait, the rest of it goes on in a task and the socket's next frames queue
behind it, so a slow socket holds up nobody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Coroutine, Generator, Iterable
from typing import Any, Protocol

from sqlalchemy import event as sa_event
from sqlmodel import Session

from streaming.protocol import Frames, seq_of

log = logging.getLogger("kaifang.broker")
# A socket whose frames queue (while it catches up, or while a send waits) past this is cut off
# (1013) rather than let the queue grow without bound; the page reconnects with `after=` and
# misses nothing.
QUEUE_LIMIT = 1000
TOO_SLOW = 1013
# At most one viewer count a second per room: a count per join, sent to everyone already in,
# is N² frames when a session starts (4.5 million for 3,000 viewers; bench/live_fanout.py).
COUNT_EVERY_S = 1.0
Send = Callable[[str], Coroutine[Any, Any, None]]


class Subscription:
    """One socket's frames of one room (a host's socket hears the hosts' frames too).

    Until `go_live` the frames wait (the socket is still sending its backlog); from then on each
    is written as it comes, a comment only when its `seq` is past the last one sent, so nothing
    arrives twice. `ended` is done, with a close code, when the broker gave up on the socket."""

    def __init__(self, broker: LocalBroker, event_id: int, send: Send,
                 hosts: bool = False) -> None:
        self.broker = broker
        self.event_id = event_id
        self.hosts = hosts
        self._send = send
        self._waiting: list[tuple[str, int | None]] | None = []  # None: written at once
        # Every comment up to sent_up_to was sent, and those in _sent_past beyond it: two
        # publishes (two hosts, two processes) may arrive out of seq order, and neither may be
        # taken for the other's duplicate.
        self.sent_up_to = 0
        self._sent_past: set[int] = set()
        self.ended: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def go_live(self, sent_up_to: int) -> None:
        """The backlog up to `sent_up_to` is sent: the frames that came meanwhile follow, then
        every frame as it comes."""
        self.sent_up_to = max(self.sent_up_to, sent_up_to)
        self._sent_past = {seq for seq in self._sent_past if seq > self.sent_up_to}
        await self._drain()

    async def _drain(self) -> None:
        while self._waiting:  # frames may join while a send waits: the loop takes them too
            frame, seq = self._waiting.pop(0)
            if self._is_new(seq):
                await self._send(frame)
        self._waiting = None  # no await since the check: nothing is left behind

    def _is_new(self, seq: int | None) -> bool:
        if seq is None:
            return True
        if seq <= self.sent_up_to or seq in self._sent_past:
            return False
        self._sent_past.add(seq)
        while self.sent_up_to + 1 in self._sent_past:
            self.sent_up_to += 1
            self._sent_past.discard(self.sent_up_to)
        if len(self._sent_past) > QUEUE_LIMIT:  # a frame that never came: stop waiting for it
            self.sent_up_to = min(self._sent_past) - 1
        return True

    def offer(self, frame: str, seq: int | None) -> None:
        """On the loop: writes the frame now, or queues it behind what waits."""
        if self.ended.done():
            return
        if self._waiting is not None:
            if len(self._waiting) >= QUEUE_LIMIT:
                self._end(TOO_SLOW)
            else:
                self._waiting.append((frame, seq))
            return
        if not self._is_new(seq):
            return
        sending = self._send(frame)
        try:
            blocked_on = sending.send(None)
        except StopIteration:
            return  # written
        except Exception:  # the socket is gone; its handler notices and leaves the room
            self._end(0)
            return
        self._waiting = []
        asyncio.ensure_future(self._finish(sending, blocked_on))

    async def _finish(self, sending: Coroutine[Any, Any, None], blocked_on: Any) -> None:
        try:
            await _Rest(sending, blocked_on)
            await self._drain()
        except Exception:
            self._end(0)

    def _end(self, code: int) -> None:
        if not self.ended.done():
            self.ended.set_result(code)

    def close(self) -> None:
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


class Broker(Protocol):
    def publish(self, event_id: int, frames: Iterable[str]) -> None:
        """To everyone in the room: viewers and hosts."""

    def publish_hosts(self, event_id: int, frames: Iterable[str]) -> None:
        """To the room's hosts only (the moderation queue's changes)."""

    def subscribe(self, event_id: int, send: Send, hosts: bool = False) -> Subscription: ...

    def viewers(self, event_id: int) -> int:
        """How many sockets watch the room, over every process."""

    def announce_viewers(self, event_id: int) -> None:
        """Tells the room how many watch it (a `viewers` frame)."""


class LocalBroker:
    """Subscribers of this process, fed on its event loop."""

    def __init__(self) -> None:
        self._rooms: dict[int, set[Subscription]] = defaultdict(set)
        self._hosts: dict[int, set[Subscription]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard = threading.Lock()
        self._counted_at: dict[int, float] = {}  # loop time of each room's last count
        self._count_due: set[int] = set()  # rooms whose next count is scheduled

    def subscribe(self, event_id: int, send: Send, hosts: bool = False) -> Subscription:
        """On the loop: `send` writes one frame to the socket."""
        self._loop = asyncio.get_running_loop()
        subscription = Subscription(self, event_id, send, hosts)
        with self._guard:
            (self._hosts if hosts else self._rooms)[event_id].add(subscription)
        return subscription

    def _drop(self, subscription: Subscription) -> None:
        with self._guard:
            rooms = self._hosts if subscription.hosts else self._rooms
            rooms[subscription.event_id].discard(subscription)
            if not rooms[subscription.event_id]:
                del rooms[subscription.event_id]
                if not subscription.hosts:
                    self._counted_at.pop(subscription.event_id, None)

    def viewers(self, event_id: int) -> int:
        with self._guard:
            return len(self._rooms.get(event_id, ()))

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

    def publish(self, event_id: int, frames: Iterable[str]) -> None:
        self.fan_out(event_id, list(frames), False)

    def publish_hosts(self, event_id: int, frames: Iterable[str]) -> None:
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
        for frame in frames:
            seq = seq_of(frame)
            for subscription in subscribers:
                subscription.offer(frame, seq)


def viewers_frame(count: int) -> str:
    return json.dumps({"type": "viewers", "count": count}, separators=(",", ":"))


def publish_after_commit(db: Session, broker: Broker, event_id: int,
                         frames: Iterable[str] | Frames) -> None:
    """Publishes `frames` (to the room; a Frames to the room and to its hosts) once `db`
    commits, never if it rolls back."""
    shown = frames if isinstance(frames, Frames) else Frames(room=list(frames))
    if not shown.room and not shown.hosts:
        return

    def published(_session: Session) -> None:
        broker.publish(event_id, shown.room)
        broker.publish_hosts(event_id, shown.hosts)

    sa_event.listen(db, "after_commit", published, once=True)


class RedisBroker:
    """Every process publishes to Redis (`kaifang:{db}:room:{id}`, and `kaifang:{db}:hosts:{id}`
    for the hosts' frames: pub/sub ignores database numbers, so the channel names its own) and
    hears every room there, in a thread of its own; what it hears goes to its own sockets
    through a LocalBroker. Redis keeps nothing: a frame is a notice, the message itself is a
    committed row that a reconnecting page reads again."""

    ALIVE_S = 30

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self._redis = redis.Redis.from_url(url, socket_timeout=5)
        namespace = f"kaifang:{self._redis.connection_pool.connection_kwargs.get('db', 0)}:"
        self.room_prefix = f"{namespace}room:"
        self.hosts_prefix = f"{namespace}hosts:"
        self.viewers_prefix = f"{namespace}viewers:"
        self.alive_prefix = f"{namespace}alive:"
        self.process = uuid.uuid4().hex
        self.local = LocalBroker()
        self._guard = threading.Lock()
        self._users = 0
        self._counted_at: dict[int, float] = {}  # monotonic time of each room's last count
        self._timers: dict[int, threading.Timer] = {}  # rooms whose next count is scheduled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, event_id: int, send: Send, hosts: bool = False) -> Subscription:
        return self.local.subscribe(event_id, send, hosts)

    def viewers(self, event_id: int) -> int:
        """This process's count goes to a Redis hash beside the others'; the room's count is
        the sum over the processes that are alive (each renews `kaifang:alive:{process}` while
        it listens: a process that died stops counting within ALIVE_S)."""
        key = f"{self.viewers_prefix}{event_id}"
        here = self.local.viewers(event_id)
        try:
            with self._redis.pipeline() as pipe:
                if here:
                    pipe.hset(key, self.process, here)
                    pipe.expire(key, 3600)
                else:  # none left here: this process no longer counts
                    pipe.hdel(key, self.process)
                pipe.hgetall(key)
                counts = pipe.execute()[-1]
            processes = [process.decode() for process in counts]
            keys = [self.alive_prefix + p for p in processes]
            alive = self._redis.mget(keys) if processes else []
            living = {p for p, up in zip(processes, alive, strict=True) if up is not None}
            return sum(int(count) for process, count in counts.items()
                       if process.decode() in living or process.decode() == self.process)
        except Exception as exc:
            log.warning("viewer counts in Redis unavailable (%s)", type(exc).__name__)
            return self.local.viewers(event_id)

    def announce_viewers(self, event_id: int) -> None:
        """At most once a second per room from this process (a burst of joins makes one
        count, at the end of that second); called from a thread, as it asks Redis."""
        with self._guard:
            if event_id in self._timers:
                return
            wait = self._counted_at.get(event_id, -math.inf) + COUNT_EVERY_S - time.monotonic()
            if wait > 0:
                timer = threading.Timer(wait, self._count_now, (event_id,))
                timer.daemon = True
                self._timers[event_id] = timer
                timer.start()
                return
            self._counted_at[event_id] = time.monotonic()
        self.publish(event_id, [viewers_frame(self.viewers(event_id))])

    def _count_now(self, event_id: int) -> None:
        with self._guard:
            if self._timers.pop(event_id, None) is None:
                return  # stopped meanwhile
            self._counted_at[event_id] = time.monotonic()
        self.publish(event_id, [viewers_frame(self.viewers(event_id))])

    def publish(self, event_id: int, frames: Iterable[str]) -> None:
        self._publish(self.room_prefix, event_id, list(frames))

    def publish_hosts(self, event_id: int, frames: Iterable[str]) -> None:
        self._publish(self.hosts_prefix, event_id, list(frames))

    def _publish(self, prefix: str, event_id: int, frames: list[str]) -> None:
        if not frames:
            return
        try:
            self._redis.publish(f"{prefix}{event_id}", json.dumps(frames))
        except Exception as exc:  # Redis away: this process's sockets still get it
            log.warning("room fan-out through Redis failed (%s)", type(exc).__name__)
            self.local.fan_out(event_id, frames, prefix == self.hosts_prefix)

    def start(self) -> None:
        """Listens for every room (once per broker, however many apps start it) until the last
        of them stops."""
        with self._guard:
            self._users += 1
            if self._thread is not None:
                return
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            pubsub.psubscribe(f"{self.room_prefix}*", f"{self.hosts_prefix}*")
            self._thread = threading.Thread(target=self._listen, args=(pubsub, self._stop),
                                            name="kaifang-room-fanout", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """The last app to stop ends the listening; the thread notices within a second (it is
        not waited for: a shutdown should not wait on Redis)."""
        with self._guard:
            self._users -= 1
            if self._users > 0 or self._thread is None:
                return
            self._thread = None
            for timer in self._timers.values():  # no count from an app that stopped
                timer.cancel()
            self._timers.clear()
            self._stop.set()
            self._stop = threading.Event()  # for a start() after this stop

    def _listen(self, pubsub: Any, stop: threading.Event) -> None:
        renewed = -math.inf
        try:
            while not stop.is_set():
                if time.monotonic() - renewed > self.ALIVE_S / 3:
                    with contextlib.suppress(Exception):  # Redis away: the loop below says so
                        self._redis.set(self.alive_prefix + self.process, 1, ex=self.ALIVE_S)
                        renewed = time.monotonic()
                try:
                    message = pubsub.get_message(timeout=1.0)
                except Exception as exc:  # Redis away: try again in a moment
                    log.warning("room fan-out lost Redis (%s)", type(exc).__name__)
                    stop.wait(1.0)
                    continue
                if message is None or message.get("type") != "pmessage":
                    continue
                try:
                    channel = message["channel"].decode()
                    hosts = channel.startswith(self.hosts_prefix)
                    self.local.fan_out(int(channel.rsplit(":", 1)[1]),
                                       json.loads(message["data"]), hosts)
                except Exception as exc:  # one bad notice must not end the listening
                    log.warning("room fan-out skipped a notice (%s)", type(exc).__name__)
        finally:
            with contextlib.suppress(Exception):
                pubsub.close()


def broker_for(redis_url: str | None) -> LocalBroker | RedisBroker:
    return RedisBroker(redis_url) if redis_url else LocalBroker()
