"""Fan-out of a room's frames to the sockets that watch it: the broker interface, the
in-process broker of the embedded default (streaming.fanout), and Redis pub/sub when
KAIFANG_REDIS_URL is set, so that every app process's viewers get every frame, whichever
process published it.

`publish` may be called from any thread (a request's thread commits, then publishes); frames
reach each socket on the event loop, in the order they were published. Nothing is published
before it is committed (`publish_after_commit`).

Redis may go away (stopped, restarted, the network): each process then keeps serving its own
viewers (a process's own frames reach its sockets first, never through Redis), its listener
tries again with a growing pause, and when Redis is back each room it watches is read again
from the database from where its sockets are, so the frames other processes published
meanwhile reach them in order (pub/sub delivers at most once and keeps nothing).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any, Protocol

import anyio.to_thread
from sqlalchemy import event as sa_event
from sqlmodel import Session

from streaming import protocol
from streaming.fanout import (  # noqa: F401 (the broker's API)
    COUNT_EVERY_S,
    QUEUE_LIMIT_BYTES,
    TOO_SLOW,
    LocalBroker,
    Send,
    Subscription,
    viewers_frame,
)
from streaming.protocol import Frames

log = logging.getLogger("kaifang.broker")
# How long a socket waits for Redis to confirm its room's channel before it reads what it
# missed (past that it goes on: the page's position check finds anything lost).
READY_WAIT_S = 2.0
# The listener's pause after it lost Redis: doubling from the first to the last, with jitter
# (every process of a deployment lost it at the same moment).
RETRY_FIRST_S, RETRY_LAST_S = 0.1, 2.0
# A Redis call that cannot connect gives up after this long (the machine is gone, not just
# the server: a refused connection fails at once), and tries once more (a pooled connection
# that died with a restarted Redis is replaced once).
CONNECT_TIMEOUT_S = 1.0


class Broker(Protocol):
    def publish(self, event_id: int, frames: Iterable[str]) -> None:
        """To everyone in the room: viewers and hosts."""

    def publish_hosts(self, event_id: int, frames: Iterable[str]) -> None:
        """To the room's hosts only (the moderation queue's changes)."""

    def subscribe(self, event_id: int, send: Send, hosts: bool = False,
                  who: str | None = None) -> Subscription: ...

    async def ready(self, event_id: int) -> None:
        """Frames published from now on reach this process's sockets of the room."""

    def viewers(self, event_id: int) -> int:
        """How many viewers watch the room, over every process."""

    def announce_viewers(self, event_id: int) -> None:
        """Tells the room how many watch it (a `viewers` frame)."""




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
    hears there the rooms someone on this process watches (it subscribes to a room's channels
    when the room gains its first socket here and unsubscribes when it loses its last, as
    encode/broadcaster does), in a thread of its own; what it hears goes to its own sockets
    through a LocalBroker. Redis keeps nothing: a frame is a notice, the message itself is a
    committed row that a reconnecting page reads again."""

    ALIVE_S = 30

    def __init__(self, url: str, database_url: str | None = None) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.url = url
        # Where a room is read again after Redis came back (None: it is not; the pages' own
        # position checks find what was lost).
        self.database_url = database_url
        # Not redis-py's default of 10 tries with backoff: a publish waits in a request's
        # thread, and a process's own sockets have the frame already.
        self._redis = redis.Redis.from_url(url, socket_timeout=5,
                                           socket_connect_timeout=CONNECT_TIMEOUT_S,
                                           retry=Retry(NoBackoff(), 1))
        namespace = f"kaifang:{self._redis.connection_pool.connection_kwargs.get('db', 0)}:"
        self.room_prefix = f"{namespace}room:"
        self.hosts_prefix = f"{namespace}hosts:"
        self.viewers_prefix = f"{namespace}viewers:"
        self.alive_prefix = f"{namespace}alive:"
        self.process = uuid.uuid4().hex
        self.local = LocalBroker(self._watching)
        self._guard = threading.Lock()
        # Rooms to (un)subscribe, in order, for the listening thread; and each watched room's
        # flag, set once Redis confirmed its channel.
        self._changes: list[tuple[int, bool]] = []
        self._ready: dict[int, threading.Event] = {}
        self._users = 0
        self._counted_at: dict[int, float] = {}  # monotonic time of each room's last count
        self._timers: dict[int, threading.Timer] = {}  # rooms whose next count is scheduled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost = False  # the listener has lost Redis and not heard it again yet
        # Read by /metrics (server.ops): whether the listening thread's last look at Redis
        # answered, and how often publishing or listening failed.
        self.listening = False
        self.redis_failures = 0

    def subscribe(self, event_id: int, send: Send, hosts: bool = False,
                  who: str | None = None) -> Subscription:
        return self.local.subscribe(event_id, send, hosts, who)

    def _watching(self, event_id: int, watched: bool) -> None:
        with self._guard:
            self._changes.append((event_id, watched))
            if watched:
                self._ready[event_id] = threading.Event()
            else:
                self._ready.pop(event_id, None)

    async def ready(self, event_id: int) -> None:
        """Waits (at most READY_WAIT_S) until Redis has confirmed the room's channel: a frame
        published from then on reaches this process."""
        with self._guard:
            waiter = self._ready.get(event_id) if self._thread is not None else None
        if waiter is not None and not waiter.is_set() and not self.lost:
            await anyio.to_thread.run_sync(waiter.wait, READY_WAIT_S)

    def channels(self, event_id: int) -> tuple[str, str]:
        return f"{self.room_prefix}{event_id}", f"{self.hosts_prefix}{event_id}"

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

    def _recount(self, event_id: int) -> None:
        """After Redis returned (it may have lost every count): this process's count into
        Redis now, and the room's sum announced a second later, when the processes that came
        back with it have written theirs (each counted at once, each would miss the others)."""
        self.viewers(event_id)
        with self._guard:
            self._counted_at[event_id] = time.monotonic()
        self.announce_viewers(event_id)

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
        """To this process's sockets at once, then to the others through Redis (the listener
        drops this process's own notice when Redis echoes it). Without Redis only this
        process's sockets hear it; the others read it again when Redis is back."""
        if not frames:
            return
        self.local.fan_out(event_id, frames, prefix == self.hosts_prefix)
        try:
            self._redis.publish(f"{prefix}{event_id}",
                                json.dumps({"from": self.process, "frames": frames}))
        except Exception as exc:  # Redis away: this process's sockets already have it
            self.redis_failures += 1
            log.warning("room fan-out through Redis failed (%s)", type(exc).__name__)

    def start(self) -> None:
        """Listens for the rooms watched here (once per broker, however many apps start it)
        until the last of them stops."""
        with self._guard:
            self._users += 1
            if self._thread is not None:
                return
            pubsub = self._redis.pubsub()
            self._changes = [(event_id, True) for event_id in self._ready]
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
        pause = RETRY_FIRST_S
        try:
            while not stop.is_set():
                if time.monotonic() - renewed > self.ALIVE_S / 3:
                    with contextlib.suppress(Exception):  # Redis away: the loop below says so
                        self._redis.set(self.alive_prefix + self.process, 1, ex=self.ALIVE_S)
                        renewed = time.monotonic()
                try:
                    self._follow(pubsub)
                    message = pubsub.get_message(timeout=0.05)
                    self.listening = True
                except Exception as exc:  # Redis away: try again after a pause
                    self.listening = False
                    self.redis_failures += 1
                    # Say this process is alive as soon as Redis is back: a Redis that
                    # restarted forgot it, and the others' viewer counts would leave it out.
                    renewed = -math.inf
                    if not self.lost:
                        self.lost = True
                        log.warning("room fan-out lost Redis (%s): each process serves its "
                                    "own viewers until it is back", type(exc).__name__)
                    stop.wait(pause * (0.5 + random.random() / 2))
                    pause = min(RETRY_LAST_S, pause * 2)
                    continue
                pause = RETRY_FIRST_S
                if message is None or message.get("type") not in ("message", "subscribe"):
                    continue
                try:
                    self._heard(message)
                except Exception as exc:  # one bad notice must not end the listening
                    log.warning("room fan-out skipped a notice (%s)", type(exc).__name__)
        finally:
            self.listening = False
            with contextlib.suppress(Exception):
                pubsub.close()

    def _heard(self, message: dict[str, Any]) -> None:
        channel = message["channel"].decode()
        hosts = channel.startswith(self.hosts_prefix)
        event_id = int(channel.rsplit(":", 1)[1])
        if message["type"] == "subscribe":  # confirmed: the room is heard
            if not hosts:
                self._confirmed(event_id)
            return
        notice = json.loads(message["data"])
        if isinstance(notice, dict):
            if notice.get("from") == self.process:
                return  # our own: this process's sockets had it when it was published
            notice = notice["frames"]
        self.local.fan_out(event_id, notice, hosts)

    def _follow(self, pubsub: Any) -> None:
        """(Un)subscribes the rooms that gained their first or lost their last socket here; a
        change Redis did not take is tried again."""
        with self._guard:
            changes, self._changes = self._changes, []
        for done, (event_id, watched) in enumerate(changes):
            try:
                if watched:
                    pubsub.subscribe(*self.channels(event_id))
                else:
                    pubsub.unsubscribe(*self.channels(event_id))
            except Exception:
                with self._guard:
                    self._changes[:0] = changes[done:]
                raise

    def _confirmed(self, event_id: int) -> None:
        """Redis confirmed the room's channel: the first time, sockets waiting for it go on;
        again (the listener reconnected, and redis-py subscribed anew), what was published
        while it was away is read again."""
        if self.lost:
            self.lost = False
            log.warning("room fan-out has Redis again: reading back what it missed")
        with self._guard:
            waiter = self._ready.get(event_id)
        if waiter is None:
            return
        if waiter.is_set():
            self._read_back(event_id)
        waiter.set()

    def _read_back(self, event_id: int) -> None:
        """What other processes published while Redis was away, to this process's sockets of
        the room. The room's changes after the position its sockets have reached, from the
        database, in order (each socket skips what it was sent). The hosts' queue frames have
        no position: the consoles are told to read their queue again (`resync`). The viewer
        count, summed again over the processes. In a thread: the listener goes on."""
        self.local.fan_out(event_id, [protocol.encode(protocol.RESYNC)], True)
        after = self.local.shown_up_to(event_id)
        database_url = self.database_url

        def read() -> None:
            from server.db import get_engine
            from streaming import stream

            with contextlib.suppress(Exception):  # Redis away again: its next return counts
                self._recount(event_id)
            if database_url is None or after is None:
                return
            try:
                with Session(get_engine(database_url)) as db:
                    frames = stream.changes_after(db, event_id, after, stream.REPLAY_MAX)
            except Exception as exc:  # the pages' own position checks still find it
                log.warning("room %d not read back after Redis returned (%s)", event_id,
                            type(exc).__name__)
                return
            self.local.fan_out(event_id, frames, False)

        threading.Thread(target=read, name="kaifang-room-readback", daemon=True).start()


def broker_for(redis_url: str | None, database_url: str | None = None
               ) -> LocalBroker | RedisBroker:
    return RedisBroker(redis_url, database_url) if redis_url else LocalBroker()
