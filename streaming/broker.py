"""Fan-out of a room's frames to the sockets that watch it: the broker interface, and the
in-process broker that the embedded default uses (Redis pub/sub joins it when
KAIFANG_REDIS_URL is set, so that every app process's viewers get every frame).

`publish` may be called from any thread (a request's thread commits, then publishes); frames
reach each subscriber's queue on the event loop, in the order they were published. Nothing is
published before it is committed (`publish_after_commit`).
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy import event as sa_event
from sqlmodel import Session

# A socket that does not keep up is cut off rather than let its queue grow without bound; the
# page reconnects with `after=` and misses nothing.
QUEUE_LIMIT = 1000


class Subscription:
    """One socket's frames of one room."""

    def __init__(self, broker: LocalBroker, event_id: int) -> None:
        self.broker = broker
        self.event_id = event_id
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(QUEUE_LIMIT)

    async def next(self) -> str | None:
        """The next frame; None when the subscription was cut off (too slow)."""
        return await self.queue.get()

    def close(self) -> None:
        self.broker._drop(self)


class Broker(Protocol):
    def publish(self, event_id: int, frames: Iterable[str]) -> None: ...

    def subscribe(self, event_id: int) -> Subscription: ...

    def viewers(self, event_id: int) -> int: ...


class LocalBroker:
    """Subscribers of this process, fed on its event loop."""

    def __init__(self) -> None:
        self._rooms: dict[int, set[Subscription]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard = threading.Lock()

    def subscribe(self, event_id: int) -> Subscription:
        self._loop = asyncio.get_running_loop()
        subscription = Subscription(self, event_id)
        with self._guard:
            self._rooms[event_id].add(subscription)
        return subscription

    def _drop(self, subscription: Subscription) -> None:
        with self._guard:
            self._rooms[subscription.event_id].discard(subscription)
            if not self._rooms[subscription.event_id]:
                del self._rooms[subscription.event_id]

    def viewers(self, event_id: int) -> int:
        with self._guard:
            return len(self._rooms.get(event_id, ()))

    def publish(self, event_id: int, frames: Iterable[str]) -> None:
        frames = list(frames)
        loop = self._loop
        if not frames or loop is None or loop.is_closed():
            return  # nobody here has ever watched a room
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(event_id, frames)
        else:
            loop.call_soon_threadsafe(self._deliver, event_id, frames)

    def _deliver(self, event_id: int, frames: list[str]) -> None:
        with self._guard:
            subscribers = list(self._rooms.get(event_id, ()))
        for subscription in subscribers:
            for frame in frames:
                try:
                    subscription.queue.put_nowait(frame)
                except asyncio.QueueFull:
                    self._drop(subscription)
                    subscription.queue = asyncio.Queue(1)
                    subscription.queue.put_nowait(None)
                    break


def publish_after_commit(db: Session, broker: Broker, event_id: int,
                         frames: Iterable[str]) -> None:
    """Publishes `frames` once `db` commits (never if it rolls back)."""
    frames = list(frames)
    if not frames:
        return

    def published(_session: Session) -> None:
        broker.publish(event_id, frames)

    sa_event.listen(db, "after_commit", published, once=True)
