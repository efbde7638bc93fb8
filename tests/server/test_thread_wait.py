"""A request waits for a request thread at most KAIFANG_THREAD_WAIT_S (server.threads), then is
answered 503 busy with Retry-After, as a lock not had in time is: under a load the threads
cannot serve, a citizen's page hears "try again" within seconds, not after nginx's minute.
Only the first thread has a deadline: work a request started that goes on without it (the
registration desk's commit), and a request's endpoint once it has begun, wait on."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anyio.to_thread
import httpx
import pytest

import server.app
from events.errors import Busy
from server.app import create_app
from server.config import Settings
from server.threads import done_waiting, install, wait_at_most
from tests.conftest import serve
from tests.helpers import run_async

WAIT_S = 0.5


def test_a_request_with_every_thread_taken_is_answered_busy_and_the_service_recovers(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server.app, "REQUEST_THREADS", 1)
    app = create_app(settings.model_copy(update={"thread_wait_s": WAIT_S}))
    entered, release = threading.Event(), threading.Event()

    def slow() -> dict[str, str]:  # an endpoint that keeps the only thread (a long export)
        entered.set()
        release.wait(20)
        return {"done": "yes"}

    app.add_api_route("/slow", slow)
    with serve(app) as url, httpx.Client(base_url=url, timeout=20, trust_env=False) as client, \
            ThreadPoolExecutor(1) as background:
        holding = background.submit(client.get, "/slow")
        assert entered.wait(10)
        started = time.monotonic()
        refused = client.get("/api/events")
        waited = time.monotonic() - started
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "busy"
        assert refused.headers["retry-after"] == "1"
        assert WAIT_S - 0.05 <= waited < WAIT_S + 2  # at its deadline, not when the thread is
        release.set()
        assert holding.result(10).json() == {"done": "yes"}
        assert client.get("/api/events").status_code == 200
        metrics = client.get("/metrics").text
        assert "kaifang_thread_wait_refusals_total 1.0" in metrics
        assert "kaifang_request_threads_size 1.0" in metrics


def test_what_a_request_starts_in_a_task_of_its_own_waits_for_a_thread_unbounded() -> None:
    """The registration desk's group commit is a task a request started: refusing it would
    fail every registration of its batch, so only the request's own task has a deadline."""

    async def scenario() -> tuple[float, int]:
        install(1)
        release = threading.Event()
        holder = asyncio.create_task(anyio.to_thread.run_sync(release.wait, 10))
        await asyncio.sleep(0.05)  # the only thread is taken
        waiting = wait_at_most(0.2)  # as the Edge does for each HTTP request
        try:
            job = asyncio.create_task(anyio.to_thread.run_sync(lambda: 7))
            started = time.monotonic()
            with pytest.raises(Busy):
                await anyio.to_thread.run_sync(lambda: 1)
            refused_after = time.monotonic() - started
        finally:
            done_waiting(waiting)
        await asyncio.sleep(0.3)  # past the request's deadline: the job still waits
        assert not job.done()
        release.set()
        await holder
        return refused_after, await job

    refused_after, job_result = run_async(scenario())
    assert 0.15 <= refused_after < 1
    assert job_result == 7


def test_a_request_whose_first_thread_came_is_never_refused_after() -> None:
    """Its dependencies ran in that first thread; its endpoint and its answer may wait behind
    others past its deadline, and still run (refused there, its work would be lost)."""

    async def scenario() -> int:
        install(1)
        waiting = wait_at_most(0.1)
        try:
            assert await anyio.to_thread.run_sync(lambda: 1) == 1  # its first thread
            release = threading.Event()
            holder = asyncio.create_task(anyio.to_thread.run_sync(release.wait, 10))
            await asyncio.sleep(0.2)  # the only thread taken, the deadline past
            asyncio.get_running_loop().call_later(0.2, release.set)
            answer = await anyio.to_thread.run_sync(lambda: 2)  # its endpoint
            await holder
            return answer
        finally:
            done_waiting(waiting)

    assert run_async(scenario()) == 2
