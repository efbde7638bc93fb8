"""An app process restarted while 200 viewers watch a live room: two real `kaifang serve`
processes on the test's database and Redis, 200 viewer sockets split across them, messages
approved all along; one process gets SIGTERM (as systemd stops it) and is started again. Its
viewers hear 1012 with a delay of their own, come back (to either process) spread over
seconds rather than in one burst, and every viewer ends with every message, in order, none
twice, no hole."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from streaming.restart_notice import MIN_WINDOW_S
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

VIEWERS = 200
APPROVALS_PER_S = 20
PHASES: dict[str, float] = {}


def test_a_restarted_process_s_viewers_come_back_spread_out_and_miss_nothing(
        settings, staff, db, tmp_path: Path):
    event_id = _live_session(staff, db, moderation="pre")
    host = Host(staff("admin"), held_messages(db, event_id, 400))
    redis = None
    if settings.redis_url is None:  # the SQLite pass: a Redis of the test's own
        redis = PrivateRedis(tmp_path / "redis").start()
    env = app_env(settings, settings.redis_url or (redis.url if redis else None))
    started = time.monotonic()
    a = AppProcess(env, tmp_path / "a.log").start()
    b = AppProcess(env, tmp_path / "b.log").start()
    try:
        a.wait_healthy()
        b.wait_healthy()
        PHASES["up"] = time.monotonic()
        outcome = run_async(_scenario(a, b, host, event_id))
    finally:
        a.stop(signal.SIGKILL)
        b.stop(signal.SIGKILL)
        if redis is not None:
            redis.stop()
    viewers, stopped_at, back_at, took = outcome
    phases = {name: round(at - started, 1) for name, at in PHASES.items()}
    final = len(host.approved)
    # Messages were approved while the process was down and after it was back (how many
    # depends on how loaded the machine is, not on the room).
    during = sum(1 for at in host.approved_at if stopped_at <= at < back_at)
    after = sum(1 for at in host.approved_at if at >= back_at)
    assert 500 not in host.statuses and during >= 3 and after >= 3, \
        (during, after, host.statuses)

    # Every viewer has every message, in order, once: what the page shows.
    for viewer in viewers:
        assert viewer.positions == list(range(1, final + 1)), \
            f"viewer {viewer.number}: {_holes(viewer.positions, final)}"
        assert viewer.seqs == list(range(1, final + 1))
        assert not any(reset for _, _, reset in viewer.hellos[1:]), \
            f"viewer {viewer.number} was sent the room's last page again on reconnecting"

    # The stopped process's viewers were told 1012 with a delay each, and came back spread
    # out: over seconds, never a burst (at most 15 % of them within any 50 ms).
    moved = [v for v in viewers if [where for at, where, _ in v.hellos if at < stopped_at][-1:]
             == [a.url]]
    assert len(moved) >= VIEWERS // 4, len(moved)
    named = []
    for viewer in moved:
        _, _, code, reason = next(close for close in viewer.closes if close[0] >= stopped_at)
        assert code == 1012 and "retry_ms" in json.loads(reason), viewer.closes
        named.append(json.loads(reason)["retry_ms"] / 1000)
    # What the server named (the sockets were all closed within milliseconds), and when this
    # test's viewers did reconnect (its own event loop, on a loaded machine, adds lag).
    named.sort()
    burst = max(sum(1 for t in named if start <= t < start + 0.05) for start in named)
    assert named[-1] - named[0] >= 0.5 * MIN_WINDOW_S and burst <= len(moved) * 0.15, \
        (named[-1] - named[0], burst)
    returns = sorted(next(at for at in v.tries if at > stopped_at) - stopped_at for v in moved)
    spread = returns[-1] - returns[0]
    assert spread >= 0.5 * MIN_WINDOW_S, returns
    # Nobody waited for the restarted process: the other took them while it was down. How
    # many were back before it depends on how fast it restarts (on a quiet machine, within
    # the told spread: CI saw 67 of 100), so most, not nearly all.
    assert sum(1 for v in moved if next(at for at, _, _ in v.hellos if at > stopped_at)
               < back_at) >= len(moved) * 0.5
    print(f"\n{len(moved)} viewers came back over {spread:.2f} s (told: at most {burst} in "
          f"50 ms); "
          f"{final} messages; SIGTERM to stopped {took:.2f} s; "
          f"re-read over HTTP: {sum(v.caught_up for v in viewers)} changes; phases {phases}")


async def _scenario(a: AppProcess, b: AppProcess, host: Host,
                    event_id: int) -> tuple[list[Viewer], float, float, float]:
    up = {a.url, b.url}
    stop = asyncio.Event()
    viewers = [Viewer(n, event_id) for n in range(VIEWERS)]
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=50)
    async with httpx.AsyncClient(timeout=10, trust_env=False, limits=limits) as http:
        # Half on each process at first, then wherever the proxy sends them.
        watching = [asyncio.ensure_future(v.watch(
            (lambda first=(a.url if v.number % 2 else b.url): [first] if len(up) == 2
             else sorted(up)), http, stop)) for v in viewers]
        await _until(lambda: all(v.hellos for v in viewers), 20, "every viewer's hello")
        for _ in range(5):
            await host.approve(http, sorted(up))
        await _until(lambda: all(v.last_pos == 5 for v in viewers), 10, "the first messages")
        PHASES["watching"] = time.monotonic()
        stop_approving = asyncio.Event()
        approving = asyncio.ensure_future(
            host.run(http, lambda: sorted(up), stop_approving, APPROVALS_PER_S))
        await asyncio.sleep(1.0)

        stopped_at = time.monotonic()
        up.discard(a.url)  # the proxy sends no new socket to a process that stops
        code = await asyncio.to_thread(a.stop, signal.SIGTERM)
        took = time.monotonic() - stopped_at
        # Uvicorn stops gracefully, then ends by the signal it was sent (as systemd expects).
        assert code in (0, -signal.SIGTERM), a.output()[-3000:]
        a.start()
        await asyncio.to_thread(a.wait_healthy)
        back_at = PHASES["back"] = time.monotonic()
        up.add(a.url)
        await asyncio.sleep(1.5)

        stop_approving.set()
        await approving
        final = len(host.approved)
        await _until(lambda: all(v.last_pos >= final for v in viewers), 15,
                     "every viewer to have every message")
        PHASES["all"] = time.monotonic()
        stop.set()
        await asyncio.gather(*watching)
    return viewers, stopped_at, back_at, took


async def _until(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(0.05)


def _holes(positions: list[int], final: int) -> str:
    seen = set(positions)
    missing = [p for p in range(1, final + 1) if p not in seen]
    twice = sorted({p for p in positions if positions.count(p) > 1})
    return f"missing {missing[:20]}, twice {twice[:20]}, first {positions[:10]}"



# Every WebSocket the page opens, when, and how it closed (the page's own code is untouched).
SOCKET_LOG = """(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  function Logged(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    const entry = {created: performance.now(), opened: null, closed: null, code: null,
                   reason: null};
    window.__sockets.push(entry);
    ws.addEventListener("open", () => { entry.opened = performance.now(); });
    ws.addEventListener("close", (event) => {
      entry.closed = performance.now(); entry.code = event.code; entry.reason = event.reason;
    });
    return ws;
  }
  Logged.prototype = Native.prototype;
  for (const name of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) Logged[name] = Native[name];
  window.WebSocket = Logged;
})();"""


@pytest.mark.sqlite_pass_only
def test_the_room_page_waits_the_delay_its_stopping_server_names(staff, db, app, live_server,
                                                                  browser):
    """live.js in Chromium: told 1012 `{"retry_ms": N}`, each page reconnects N ms later, N
    its own, rather than at once with every other page of the room."""
    event_id = _live_session(staff, db, moderation="post")
    context = browser.new_context(locale="zh-CN")
    pages = [context.new_page() for _ in range(3)]
    try:
        for page in pages:
            page.add_init_script(SOCKET_LOG)
            page.goto(f"{live_server}/events/{event_id}/live")
            page.wait_for_function("() => window.__sockets.some(s => s.opened !== null)")
        notice = app.state.restart_notice  # as SIGTERM does it (test_app_restart above)
        notice.announce(len(pages))
        for page in pages:
            page.wait_for_function("() => window.__sockets.length >= 2", timeout=10_000)
        waits = []
        for page in pages:
            first, second = page.evaluate("() => window.__sockets")[:2]
            assert first["code"] == 1012, first
            named = json.loads(first["reason"])["retry_ms"]
            waited = second["created"] - first["closed"]
            assert named - 20 <= waited <= named + 500, (named, waited)
            waits.append(named)
        assert len(set(waits)) == len(waits), waits  # each page a delay of its own
    finally:
        context.close()
