"""The composition root: routers, static files, templates, error handling."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel

from events import api as events_api
from events import (
    api_compliance,
    api_feeds,
    api_plan,
    api_registration,
    api_series,
    api_staff,
    lifecycle,
    notify,
    ratelimit,
)
from events.registration_desk import RegistrationDesk
from server import errors, ops, threads
from server.clientaddr import TrustedProxies
from server.config import Settings, get_settings
from server.db import REQUEST_THREADS, get_engine, set_lock_timeout
from server.deps import error_responses
from server.edge import Edge
from server.security import Signer
from server.worker import BackgroundWorker
from streaming import answers as _answers  # noqa: F401  (registers events.question_stats')
from streaming import api as streaming_api
from streaming import api_ingest as streaming_ingest
from streaming import api_live as streaming_live
from streaming import api_questions as streaming_questions
from streaming import api_tracks as streaming_tracks
from streaming import api_webcast as streaming_webcast
from streaming import ingest_socket, live_sockets, live_state
from streaming import plan_media as _plan_media  # noqa: F401  (registers events.plan_media's)
from streaming.audience import Audience, watch_status_changes
from streaming.broker import RedisBroker, broker_for
from streaming.live_hub import LiveHub
from streaming.rtmp import RtmpServer
from streaming.storage import LocalStorage

MAX_JSON_BODY = 1_000_000
# Recordings (and the plan's step files) are larger: these routes read their bodies under
# their own limits.
UPLOAD_PATHS = re.compile(r"^(/api/(events/[0-9]+/recording|uploads/[A-Za-z0-9_-]+"
                          r"|plan/items/[0-9]+/files)|/console/plan/(import|items/[0-9]+/files))$")


class HealthPublic(BaseModel):
    status: Literal["ok"]


def create_app(settings: Settings | None = None, *, start_worker: bool = False) -> FastAPI:
    """The app; with start_worker, the lifespan also runs the worker in a thread (serve_app)."""
    settings = settings or get_settings()
    settings.prepare_data_dir()
    set_lock_timeout(settings.lock_timeout_s)
    notify.set_public_url(settings.public_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Never more request threads than pooled connections: a thread waiting for a
        # connection must not starve the threads that would give one back. A request waits
        # for a thread at most KAIFANG_THREAD_WAIT_S (server.threads).
        app.state.request_threads = threads.install(REQUEST_THREADS)
        worker = BackgroundWorker(settings).start() if start_worker else None
        broker = app.state.broker
        if isinstance(broker, RedisBroker):
            broker.start()
        await app.state.live_hub.start()
        # Stopped by a signal: room sockets close with 1012 and a spread reconnect delay.
        hear_restart = live_sockets.close_on_restart(app)
        rtmp = await RtmpServer.listen(settings, lambda: getattr(app.state, "live_hub", None))
        counting = asyncio.create_task(app.state.audience.run())
        try:
            yield
        finally:
            hear_restart()
            counting.cancel()
            vote_counts = getattr(app.state, "vote_counts", None)
            if vote_counts is not None:
                vote_counts.flush()
            if rtmp is not None:
                await rtmp.stop()
            await app.state.live_hub.stop()
            if isinstance(broker, RedisBroker):
                broker.stop()
            if worker is not None:
                worker.stop()

    app = FastAPI(title="Kaifang 开放", lifespan=lifespan, docs_url="/api/docs",
                  openapi_url="/api/openapi.json", redoc_url=None)
    app.state.settings = settings
    app.state.signer = Signer(settings.resolved_secret_key())
    app.state.trusted_proxies = TrustedProxies(settings.trusted_proxies)
    app.state.registration_desk = RegistrationDesk(
        get_engine(settings.sqlalchemy_url), app.state.signer,
        limiter=ratelimit.limiter_for(settings, app.state.signer),
        sms_daily_cap=settings.sms_daily_cap)
    app.state.media_storage = LocalStorage(settings.media_dir)
    app.state.broker = broker_for(settings.redis_url, settings.sqlalchemy_url)
    app.state.live_hub = LiveHub(settings, get_engine(settings.sqlalchemy_url),
                                 app.state.media_storage)
    lifecycle.on_status_change(live_state.on_status_change)  # live: on air; ended: off air
    # Peak and distinct live viewers of a webcast, kept as evidence (streaming.audience).
    app.state.audience = Audience(app.state.broker, app.state.signer, settings.sqlalchemy_url,
                                  settings.redis_url)
    watch_status_changes()
    errors.install(app)
    app.state.metrics = ops.metrics_for(app)  # GET /metrics; the edge counts requests into it

    # The bench's baseline: the plain dict is answered as before; the model documents it.
    @app.get("/healthz", response_model=None,
             responses={200: {"model": HealthPublic}, **error_responses(400, "5XX")})
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(ops.router)

    # First: routes are matched in order, and a registration burst is the hottest path (its
    # paths overlap no other router's).
    app.include_router(api_registration.router)
    app.include_router(api_feeds.router)
    app.include_router(api_staff.router)
    app.include_router(events_api.router)
    app.include_router(api_compliance.router)
    app.include_router(api_plan.router)
    app.include_router(api_series.router)
    app.include_router(streaming_api.router)
    app.include_router(streaming_api.media)
    app.include_router(streaming_tracks.router)
    app.include_router(streaming_tracks.media)
    app.include_router(streaming_live.router)
    app.include_router(streaming_ingest.router)
    app.include_router(streaming_questions.router)
    app.include_router(streaming_webcast.router)
    app.include_router(streaming_webcast.media)
    app.include_router(ingest_socket.router)

    from frontend import install as install_frontend

    install_frontend(app)

    app.add_middleware(Edge, hosts=settings.known_hosts, max_body=MAX_JSON_BODY,
                       upload_paths=UPLOAD_PATHS, embed_parents=settings.embed_ancestors,
                       metrics=app.state.metrics, thread_wait_s=settings.thread_wait_s)
    return app


def serve_app() -> FastAPI:
    """What `kaifang serve` runs: the app and, unless KAIFANG_EMBEDDED_WORKER=false, the worker."""
    settings = get_settings()
    return create_app(settings, start_worker=settings.embedded_worker)
