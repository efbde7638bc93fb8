"""Redis stopped while a live room runs: two real `kaifang serve` processes on a Redis of the
test's own (the machine's shared one is never touched), viewers on each. With Redis gone each
process keeps serving its own viewers (a message approved on one reaches that one's viewers at
once), pages, joins and registrations still answer (registration limits counted in the
database meanwhile), /readyz says `degraded`, nothing answers 500 and no process spins. Redis
started again on the same port: without restarting anything, the other process's viewers get
what they missed, in order, frames cross between the processes again, and the other process's
host consoles are told to read their queue again (`resync`: the queue's frames of that while
have no position to read back by) and hear the viewer count of every process."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.faults.net_procs import (
    AppProcess,
    Host,
    PrivateRedis,
    Viewer,
    app_env,
    held_messages,
)
from tests.helpers import run_async
from tests.streaming.live import _live_session

PER_PROCESS = 10


def test_without_redis_each_process_serves_its_own_and_the_rest_comes_when_it_returns(
        settings, staff, db, tmp_path: Path):
    event_id = _live_session(staff, db, moderation="pre")
    other_webcast = _live_session(staff, db, moderation="pre")
    host = Host(staff("admin"), held_messages(db, event_id, 20))
    redis = PrivateRedis(tmp_path / "redis").start()
    # Registration limits on, as a district runs them: counted in Redis while it answers.
    env = app_env(settings, redis.url, KAIFANG_REGISTRATION_LIMIT_PER_ADDRESS="60",
                  KAIFANG_REGISTRATION_LIMIT_PER_PHONE="5")
    a = AppProcess(env, tmp_path / "a.log").start()
    b = AppProcess(env, tmp_path / "b.log").start()
    try:
        a.wait_healthy()
        b.wait_healthy()
        measured = run_async(_scenario(a, b, redis, host, event_id, other_webcast))
    finally:
        a.stop(signal.SIGKILL)
        b.stop(signal.SIGKILL)
        redis.stop()
    for process in (a, b):
        assert "Traceback" not in process.output(), process.output()[-3000:]
    print(f"\n{measured}")


async def _scenario(a: AppProcess, b: AppProcess, redis: PrivateRedis, host: Host,
                    event_id: int, other_webcast: int) -> dict[str, Any]:
    stop = asyncio.Event()
    on_a = [Viewer(n, event_id) for n in range(PER_PROCESS)]
    on_b = [Viewer(n, event_id) for n in range(PER_PROCESS, 2 * PER_PROCESS)]
    measured: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        watching = [asyncio.ensure_future(v.watch(lambda: [a.url], http, stop)) for v in on_a]
        watching += [asyncio.ensure_future(v.watch(lambda: [b.url], http, stop)) for v in on_b]
        everyone = on_a + on_b
        console: list[tuple[float, dict[str, Any]]] = []  # a host's console on B: its frames
        watching.append(asyncio.ensure_future(_console(b, host, event_id, console, stop)))
        elsewhere = Viewer(99, other_webcast)  # someone watches the other webcast on B
        watching.append(asyncio.ensure_future(elsewhere.watch(lambda: [b.url], http, stop)))
        await _until(lambda: all(v.hellos for v in everyone + [elsewhere]), 20,
                     "every viewer's hello")
        for via in (a, b):  # across processes, through Redis
            await host.approve(http, [via.url])
        await _until(lambda: all(v.last_pos == 2 for v in everyone), 10, "the first messages")

        redis.stop(signal.SIGKILL)
        cpu = {p.url: (p.cpu_s(), time.monotonic()) for p in (a, b)}
        # A's own viewers get what is approved on A, at once; B's cannot know of it yet.
        for _ in range(3):
            started = time.monotonic()
            await host.approve(http, [a.url])
            await _until(lambda: all(v.last_pos == len(host.approved) for v in on_a), 5,
                         "A's viewers to get A's message without Redis")
            measured.setdefault("A's own viewers without Redis, s", []).append(
                round(time.monotonic() - started, 3))
        assert host.statuses[-3:] == [200, 200, 200], host.statuses
        for process in (a, b):
            await _still_serves(http, process, event_id, measured)
        # Another webcast is called off meanwhile (its viewer counts are kept as evidence).
        ended = await http.post(f"{b.url}/api/events/{other_webcast}/status",
                                json={"status": "cancelled", "reason": "信号故障，改期举行"},
                                headers=host.headers)
        assert ended.status_code == 200, ended.text
        # A page that opens meanwhile is let in at once, not after Redis's confirmation.
        late = Viewer(2 * PER_PROCESS, event_id)
        watching.append(asyncio.ensure_future(late.watch(lambda: [b.url], http, stop)))
        await _until(lambda: late.hellos, 3, "a new page's hello on B without Redis")
        await asyncio.sleep(max(0.0, 2.0 - (time.monotonic() - min(
            at for _, at in cpu.values()))))
        for process in (a, b):  # no listener spinning while Redis is away
            used, since = cpu[process.url]
            share = (process.cpu_s() - used) / (time.monotonic() - since)
            measured.setdefault("CPU share without Redis", []).append(round(share, 2))
            assert share < 0.5, (process.url, share)
        assert all(v.last_pos == 2 for v in on_b), [v.last_pos for v in on_b]

        redis.start()  # the same port
        back = time.monotonic()
        # B's viewers get the three they missed without a new message or a reconnect: B
        # read its room again when Redis came back.
        last = len(host.approved)
        await _until(lambda: all(v.last_pos == last for v in on_b + [late]), 10,
                     "B's viewers to get what was approved on A while Redis was away")
        measured["B's holes filled after Redis returned, s"] = round(time.monotonic() - back, 2)
        assert sum(v.caught_up for v in on_b) == 0  # the server sent them, in order
        # B's console missed A's three `decided`: it is told to read its queue again, and
        # hears how many watch on both processes (20 and the late page), though nobody came
        # or went since.
        await _until(lambda: any(f["type"] == "resync" for at, f in console if at > back), 10,
                     "B's console to be told to read its queue again")
        await _until(lambda: [f["count"] for at, f in console if at > back
                              and f["type"] == "viewers"][-1:] == [len(everyone) + 1], 10,
                     "B's console to hear the viewers of both processes")
        for via in (b, a):  # and frames cross again, both ways
            await host.approve(http, [via.url])
        last = len(host.approved)
        await _until(lambda: all(v.last_pos == last for v in everyone + [late]), 10,
                     "frames across processes after Redis returned")
        for process in (a, b):
            ready = (await http.get(process.url + "/readyz")).json()
            assert ready["status"] == "ok", ready
        stop.set()
        await asyncio.gather(*watching)
    for viewer in everyone:
        assert viewer.positions == list(range(1, last + 1)), (viewer.number, viewer.positions)
        assert len(viewer.hellos) == 1, viewer.closes  # nobody was cut off
    assert 500 not in host.statuses, host.statuses
    return measured


async def _still_serves(http: httpx.AsyncClient, process: AppProcess, event_id: int,
                        measured: dict[str, Any]) -> None:
    """Readiness says degraded; the room's page, a join and a registration answer."""
    ready = await http.get(process.url + "/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "degraded" and ready.json()["checks"]["redis"] == "failed"
    page = await http.get(f"{process.url}/events/{event_id}/live",
                          headers={"Accept": "text/html"})
    assert page.status_code == 200
    joined = await http.post(f"{process.url}/api/events/{event_id}/viewers",
                             json={"nickname": "停电观众"})
    assert joined.status_code == 201, joined.text
    started = time.monotonic()
    phone = f"139{process.port % 10000:04d}{len(measured):04d}"
    registered = await http.post(f"{process.url}/api/events/{event_id}/registrations",
                                 json={"name": "王小明", "phone": phone, "consent": True})
    assert registered.status_code == 201, registered.text
    measured.setdefault("registration without Redis, s", []).append(
        round(time.monotonic() - started, 3))


async def _console(process: AppProcess, host: Host, event_id: int,
                   frames: list[tuple[float, dict[str, Any]]], stop: asyncio.Event) -> None:
    """A host's console on `process`: its socket's frames, as they come, until `stop`."""
    url = process.url.replace("http://", "ws://") + f"/ws/events/{event_id}/host"
    async with websockets.connect(url, additional_headers={"Cookie": host.headers["Cookie"]},
                                  open_timeout=15) as ws:

        async def read() -> None:
            async for raw in ws:
                frames.append((time.monotonic(), json.loads(raw)))

        reading = asyncio.ensure_future(read())
        await stop.wait()
        reading.cancel()


async def _until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.02)
