"""GET /readyz: what a load balancer and the person on call read."""

from __future__ import annotations

import shutil
import time

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.config import Settings
from server.db import POOL_SIZE, get_engine


def test_ready_when_every_part_answers(client: TestClient) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["media"] == "ok"
    assert body["checks"]["redis"] in ("ok", "off")
    assert answer.headers["cache-control"] == "no-store"


def test_a_redis_that_does_not_answer_is_degraded_not_down(settings: Settings) -> None:
    # Nothing listens on port 9 (discard): the process serves on, degraded.
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:9/0"})
    app = create_app(broken.model_copy(update={"redis_url": None}))
    app.state.settings = broken
    with TestClient(app) as client:
        body = client.get("/readyz").json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"] == "failed"


def test_a_media_store_it_cannot_write_is_unavailable(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        # The disk under the media dir goes away: a file where its folder was (root writes
        # through any mode, so no chmod would do).
        shutil.rmtree(settings.media_dir)
        settings.media_dir.write_bytes(b"not a folder")
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["media"] == "failed"
    assert answer.json()["status"] == "unavailable"


def test_a_burst_holding_every_pooled_connection_leaves_the_process_ready_at_once(
        settings: Settings) -> None:
    # Every connection of the requests' pool is in use: /readyz does not wait for one (the
    # pool's timeout is 30 s; the balancer would take every busy process out at once).
    if settings.database_url:
        pytest.skip("40 connections of a PostgreSQL other test runs share")
    with TestClient(create_app(settings)) as client:
        engine = get_engine(settings.sqlalchemy_url)
        held = [engine.connect() for _ in range(POOL_SIZE)]
        try:
            started = time.monotonic()
            answer = client.get("/readyz")
            took = time.monotonic() - started
        finally:
            for connection in held:
                connection.close()
    assert answer.status_code == 200 and answer.json()["checks"]["database"] == "ok"
    assert took < 5
