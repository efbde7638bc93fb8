"""The composition root: routers, static files, templates, error handling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from events import api as events_api
from events import api_compliance, api_feeds, api_registration, api_staff, notify, ratelimit
from events.registration_desk import RegistrationDesk
from server import errors
from server.access_log import AccessLog
from server.caching import PrivateAnswers
from server.clientaddr import TrustedProxies
from server.config import Settings, get_settings, host_name
from server.db import REQUEST_THREADS, set_lock_timeout
from server.deps import error_responses
from server.security import Signer
from server.worker import BackgroundWorker

MAX_JSON_BODY = 1_000_000


class HealthPublic(BaseModel):
    status: Literal["ok"]


def _too_large() -> Response:
    return Response(b'{"error":"too_large","message":"the request body is too large"}',
                    status_code=413, media_type="application/json")


class BodyLimit:
    """Refuses oversized bodies (413 too_large): by Content-Length up front, else as they come."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((value for name, value in scope["headers"] if name == b"content-length"),
                      None)
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await _too_large()(scope, receive, send)
            return
        received, started, refused = 0, False, False

        async def counted_receive() -> Message:
            # A chunked body has no length to check up front: answer 413 once it grows too big,
            # and let the app see a client that went away.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    if not started:
                        await _too_large()(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if not refused:
                started = True
                await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except ClientDisconnect:
            if not refused:
                raise


class KnownHosts:
    """Refuses a request for a host name the service does not know (400 bad_host): links are
    never built from the Host header, and nothing answers a DNS-rebinding name."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = next((value for name, value in scope["headers"] if name == b"host"), b"")
        host = host_name(header.decode("latin-1"))
        if host in self.hosts:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await receive()  # the connect; closing before accepting refuses it
            await send({"type": "websocket.close", "code": 1008})
            return
        shown = host[:100]
        refused = JSONResponse({"error": "bad_host",
                                "message": f"this service does not answer to the host {shown!r}"},
                               status_code=400)
        await refused(scope, receive, send)


class SecurityHeaders:
    """Plain ASGI (no BaseHTTPMiddleware task per request): adds the headers every page needs."""

    HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"),
               (b"x-frame-options", b"SAMEORIGIN"))

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in self.HEADERS if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: Settings | None = None, *, start_worker: bool = False) -> FastAPI:
    """The app; with start_worker, the lifespan also runs the worker in a thread (serve_app)."""
    settings = settings or get_settings()
    settings.prepare_data_dir()
    set_lock_timeout(settings.lock_timeout_s)
    notify.set_public_url(settings.public_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Never more request threads than pooled connections: a thread waiting for a
        # connection must not starve the threads that would give one back.
        anyio.to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        worker = BackgroundWorker(settings).start() if start_worker else None
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()

    app = FastAPI(title="Kaifang 开放", lifespan=lifespan, docs_url="/api/docs",
                  openapi_url="/api/openapi.json", redoc_url=None)
    app.state.settings = settings
    app.state.signer = Signer(settings.resolved_secret_key())
    app.state.trusted_proxies = TrustedProxies(settings.trusted_proxies)
    app.state.registration_desk = RegistrationDesk(
        settings.sqlalchemy_url, app.state.signer,
        limiter=ratelimit.limiter_for(settings, app.state.signer),
        sms_daily_cap=settings.sms_daily_cap)
    errors.install(app)

    # The bench's baseline: the plain dict is answered as before; the model documents it.
    @app.get("/healthz", response_model=None,
             responses={200: {"model": HealthPublic}, **error_responses(400, "5XX")})
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(api_feeds.router)
    app.include_router(api_staff.router)
    app.include_router(events_api.router)
    app.include_router(api_registration.router)
    app.include_router(api_compliance.router)

    from frontend import install as install_frontend

    install_frontend(app)

    app.add_middleware(KnownHosts, hosts=settings.known_hosts)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(PrivateAnswers)

    app.add_middleware(BodyLimit, max_bytes=MAX_JSON_BODY)
    app.add_middleware(AccessLog)
    return app


def serve_app() -> FastAPI:
    """What `kaifang serve` runs: the app and, unless KAIFANG_EMBEDDED_WORKER=false, the worker."""
    settings = get_settings()
    return create_app(settings, start_worker=settings.embedded_worker)
