"""The in-process broker's fan-out to sockets, with sockets that record what they are sent:
frames arrive in order, each comment once, also when two publishes cross; a socket whose send
has to wait holds up nobody else and loses nothing; a socket that is gone is let go."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from streaming import protocol
from streaming.broker import LocalBroker


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
