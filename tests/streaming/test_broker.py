"""The in-process broker's fan-out to sockets, with sockets that record what they are sent:
frames arrive in order, each comment once, also when two publishes cross; a socket whose send
has to wait holds up nobody else and loses nothing; a socket that is gone is let go."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from streaming import fanout, protocol
from streaming.broker import LocalBroker, RedisBroker
from tests.conftest import REDIS_URL


def _comment(seq: int) -> str:
    return protocol.encode(protocol.COMMENT, seq=seq, id=seq, kind="comment", author="甲",
                           text=f"第{seq}条", video_time=None, created_at="", pos=seq)


def _run(scenario: Any) -> Any:
    """The scenario on an event loop of its own, in a thread (the browser tests' Playwright
    keeps one running in this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, scenario).result()


def _seqs(frames: list[str]) -> list[int | None]:
    return [protocol.seq_of(frame) for frame in frames]


def test_crossed_publishes_are_both_delivered_once():
    async def scenario() -> list[str]:
        broker, got = LocalBroker(), []

        async def send(frame: str) -> None:
            got.append(frame)

        subscription = broker.subscribe(1, send)
        await subscription.go_live(0)
        broker.publish(1, [_comment(2)])  # its publisher was quicker than seq 1's
        broker.publish(1, [_comment(1)])
        broker.publish(1, [_comment(2), _comment(3)])  # a process's copy of what it had
        return got

    assert _seqs(_run(scenario())) == [2, 1, 3]


def test_frames_that_come_while_the_backlog_is_sent_follow_it_once():
    async def scenario() -> list[str]:
        broker, got = LocalBroker(), []

        async def send(frame: str) -> None:
            got.append(frame)

        subscription = broker.subscribe(1, send)
        broker.publish(1, [_comment(3), _comment(5), _comment(4)])
        got.extend([_comment(1), _comment(2), _comment(3)])  # the backlog, up to seq 3
        await subscription.go_live(3)
        broker.publish(1, [_comment(6)])
        return got

    assert _seqs(_run(scenario())) == [1, 2, 3, 5, 4, 6]


def test_a_send_that_waits_holds_up_nobody_and_loses_nothing():
    async def scenario() -> tuple[list[str], list[str]]:
        broker, slow_got, quick_got = LocalBroker(), [], []
        gate = asyncio.get_running_loop().create_future()

        async def slow(frame: str) -> None:
            if not gate.done():
                await gate  # its buffer is full: this send waits
            slow_got.append(frame)

        async def quick(frame: str) -> None:
            quick_got.append(frame)

        for send in (slow, quick):
            await broker.subscribe(1, send).go_live(0)
        broker.publish(1, [_comment(1), _comment(2), _comment(3)])
        assert _seqs(quick_got) == [1, 2, 3] and slow_got == []
        gate.set_result(None)
        for _ in range(5):
            await asyncio.sleep(0)
        broker.publish(1, [_comment(4)])
        return slow_got, quick_got

    slow_got, quick_got = _run(scenario())
    assert _seqs(slow_got) == [1, 2, 3, 4] and _seqs(quick_got) == [1, 2, 3, 4]


def test_a_socket_that_is_gone_is_let_go_and_the_others_still_get_every_frame():
    async def scenario() -> tuple[bool, list[str]]:
        broker, got = LocalBroker(), []

        async def gone(frame: str) -> None:
            raise RuntimeError("the client went away")

        async def here(frame: str) -> None:
            got.append(frame)

        dead = broker.subscribe(1, gone)
        await dead.go_live(0)
        await broker.subscribe(1, here).go_live(0)
        broker.publish(1, [_comment(1), _comment(2)])
        return dead.ended.done(), got

    ended, got = _run(scenario())
    assert ended and _seqs(got) == [1, 2]


def test_the_queue_limit_counts_bytes_not_frames():
    """A socket whose send waits: 2,000 small frames queue (well under the limit), a few large
    ones past QUEUE_LIMIT_BYTES cut it off (1013); the send that waits is kept by the
    subscription (a task nobody holds may be collected mid-send)."""
    async def scenario() -> tuple[bool, Any, int | None]:
        broker, release = LocalBroker(), asyncio.Event()

        async def send(frame: str) -> None:
            await release.wait()

        subscription = broker.subscribe(1, send)
        await subscription.go_live(0)
        broker.publish(1, [_comment(1)])
        waiting = subscription._task
        broker.publish(1, [_comment(n) for n in range(2, 2002)])
        small_ok = not subscription.ended.done()
        big = "x" * (fanout.QUEUE_LIMIT_BYTES // 8)
        broker.publish(1, [protocol.encode("room", note=big) for _ in range(9)])
        code = subscription.ended.result() if subscription.ended.done() else None
        release.set()
        subscription.close()
        return small_ok, waiting, code

    small_ok, waiting, code = _run(scenario())
    assert small_ok
    assert isinstance(waiting, asyncio.Task)
    assert code == fanout.TOO_SLOW


def test_viewers_are_counted_once_whatever_their_sockets():
    async def scenario() -> list[int]:
        broker = LocalBroker()

        async def send(frame: str) -> None:
            pass

        tabs = [broker.subscribe(1, send, who="v7") for _ in range(3)]
        watcher = broker.subscribe(1, send)
        counts = [broker.viewers(1)]
        for tab in tabs:
            tab.close()
        counts.append(broker.viewers(1))
        watcher.close()
        counts.append(broker.viewers(1))
        return counts

    assert _run(scenario()) == [2, 1, 0]


@pytest.mark.skipif(not REDIS_URL, reason="needs KAIFANG_TEST_REDIS_URL")
def test_redis_listens_only_to_the_rooms_watched_here():
    """A process subscribes to a room's channel when the room gains its first socket there and
    unsubscribes when it loses its last (no pattern for every room)."""
    async def scenario() -> tuple[list[str], list[str], list[str]]:
        broker, publisher, got = RedisBroker(REDIS_URL), RedisBroker(REDIS_URL), []

        async def send(frame: str) -> None:
            got.append(frame)

        room_channel = broker.channels(424242)[0]
        broker.start()
        try:
            before = [c.decode() for c in broker._redis.pubsub_channels(room_channel)]
            subscription = broker.subscribe(424242, send)
            await broker.ready(424242)
            await subscription.go_live(0)
            during = [c.decode() for c in broker._redis.pubsub_channels(room_channel)]
            publisher.publish(424242, [_comment(1)])
            for _ in range(100):
                if got:
                    break
                await asyncio.sleep(0.02)
            subscription.close()
            after = during
            for _ in range(100):
                after = [c.decode() for c in broker._redis.pubsub_channels(room_channel)]
                if not after:
                    break
                await asyncio.sleep(0.02)
            return before, during + [str(len(got))], after
        finally:
            broker.stop()

    before, during, after = _run(scenario())
    assert before == [] and after == []
    assert during == [RedisBroker(REDIS_URL).channels(424242)[0], "1"]
