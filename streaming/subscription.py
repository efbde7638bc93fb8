"""One socket's frames of one room (`Subscription`): held while the socket sends its backlog,
then written as they come, each positioned frame once (streaming.fanout decides which sockets
get a frame; streaming.direct_socket writes it)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Coroutine, Generator
from typing import TYPE_CHECKING, Any

from streaming.direct_socket import QUEUE_LIMIT_BYTES, TOO_SLOW, DirectSocket, Send, wire_text

if TYPE_CHECKING:
    from streaming.fanout import LocalBroker

# Positions a socket sends ahead of one that has not come, before it stops waiting for it.
AHEAD_LIMIT = 1000


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
        self._direct = DirectSocket.under(send)

    @property
    def direct(self) -> bool:
        """Whether the room's frames go straight to the socket's transport (DirectSocket)."""
        return self._direct is not None

    async def send_backlog(self, frames: list[str]) -> None:
        """What the page missed (before `go_live`): on the direct path in one write (a new
        page's last 200 comments) when it fits under QUEUE_LIMIT_BYTES, else frame by frame
        through the socket's send, which waits while the socket's buffer is full."""
        if self._direct is not None and len(frames) > 1:
            wire = b"".join([wire_text(frame) for frame in frames])
            if self._direct.write(wire) is None:
                return
        for frame in frames:
            await self._send(frame)

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
        if pos == self.sent_up_to + 1 and not self._sent_past:  # the usual case: the next one
            self.sent_up_to = pos
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

    def offer(self, frame: str, pos: int | None, wire: bytes | None = None) -> None:
        """On the loop: writes the frame now, or queues it behind what waits. `wire` is the
        frame as wire_text encodes it, when the caller has it (once for every socket)."""
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
        if self._direct is not None:
            why = self._direct.write(wire if wire is not None else wire_text(frame))
            if why is not None:
                self._cut(why, 1)
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

    def offer_all(self, items: list[tuple[str, int | None, bytes]]) -> None:
        """Several frames (frame, pos, wire) at once: on the direct path the new ones in one
        write, else each as `offer` takes it."""
        if self._direct is None or self._waiting is not None or self.ended.done():
            for frame, pos, wire in items:
                self.offer(frame, pos, wire)
            return
        new = [wire for _frame, pos, wire in items if self._is_new(pos)]
        if new:
            why = self._direct.write(b"".join(new))
            if why is not None:
                self._cut(why, len(new))

    def _cut(self, why: int, frames: int) -> None:
        """The direct path refused `frames` frames: the socket is gone, or too slow (counted
        for /metrics as the queued path counts it)."""
        self.broker.frames_dropped += frames
        if why == TOO_SLOW:
            self.broker.sockets_cut_slow += 1
        self._end(why)

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
