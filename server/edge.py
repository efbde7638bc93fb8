"""The service's edge: what every HTTP request passes through before and after the routes.

One plain ASGI layer, not five: each layer costs every request a coroutine, a send wrapper and
a pass over the headers, and under a registration burst the event loop is what bounds the rate.
In the order a request meets them:

- **the access log** (server.access_log): one line per request, tokens masked, no query;
- **known hosts**: a Host the service does not answer to is refused (400 bad_host); links are
  never built from it, and nothing answers a DNS-rebinding name;
- **the body limit**: a body over `max_body` bytes is refused (413 too_large), by its
  Content-Length up front, or as it comes when it is sent chunked;
- **security headers** every page needs: nosniff, a same-origin referrer, and a
  Content-Security-Policy without inline script or style that lets nobody frame a page but the
  embeddable player (`/embed/`), whose parents are configured;
- **private answers** (server.caching): `Cache-Control: private, no-store` on what carries
  personal data or a capability, errors included;
- **metrics** (server.metrics): each request's time by its route's template (never the path:
  it may hold a token), and the websockets open by kind; a few plain increments, no lock;
- **the wait for a thread** (server.threads): a request that has had none `thread_wait_s`
  after it came is answered 503 busy.
"""

from __future__ import annotations

import logging
import re
import time

from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.access_log import log as access_log
from server.access_log import redact_path
from server.caching import PRIVATE, is_private
from server.config import host_name
from server.deps import SESSION_COOKIE
from server.metrics import UNMATCHED, AppMetrics
from server.threads import done_waiting, wait_at_most

PRIVATE_BYTES = PRIVATE.encode()
SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin"))
# No inline script or style anywhere (every script and stylesheet is a file under /static);
# media may come from blob: (hls.js feeds the video through Media Source Extensions), and so
# may a picture (the photo of a ticket the door phone reads, in the browser).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
       "base-uri 'self'; form-action 'self'; frame-ancestors ")
# A Content-Length longer than this is too large whatever it says (int() refuses 4,300 digits).
MAX_DIGITS = 18
# Pages the district portal may frame (the embeddable player); every other page no one may.
EMBED_PREFIX = "/embed/"


def csp_for(path: str, embed_parents: str) -> bytes:
    """The Content-Security-Policy of a path: framing only for the embed pages, by the parents
    configured (KAIFANG_EMBED_ANCESTORS)."""
    if path.startswith(EMBED_PREFIX):
        return (CSP + ("'self' " + embed_parents).strip()).encode()
    return (CSP + "'none'").encode()


def _too_large() -> Response:
    return Response(b'{"error":"too_large","message":"the request body is too large"}',
                    status_code=413, media_type="application/json")


def _bad_host(host: str) -> Response:
    shown = host[:100]
    return JSONResponse({"error": "bad_host",
                         "message": f"this service does not answer to the host {shown!r}"},
                        status_code=400)


def route_of(scope: Scope) -> str:
    """The template of the route that answered (`/api/events/{event_id}`), a mount's
    (`/static/{path}`), or `unmatched`."""
    route = scope.get("route")
    if route is not None:
        return str(route.path)
    if "endpoint" in scope:  # a mount (static files) matched: the path below it is free
        return f"{scope.get('root_path', '')}/{{path}}"
    return UNMATCHED


def socket_kind(path: str) -> str:
    if not path.startswith("/ws/events/"):
        return "other"
    if path.endswith("/host"):
        return "host"
    return "ingest" if path.endswith("/ingest") else "viewer"


class Edge:
    """Plain ASGI (see the module's docstring)."""

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str], max_body: int,
                 upload_paths: re.Pattern[str] | None = None, embed_parents: str = "",
                 metrics: AppMetrics | None = None, thread_wait_s: float | None = None) -> None:
        self.app = app
        self.thread_wait_s = thread_wait_s
        self.metrics = metrics
        self._csp = csp_for("/", embed_parents)
        self._embed_csp = csp_for(EMBED_PREFIX, embed_parents)
        self.hosts = hosts
        self.max_body = max_body
        # Routes that stream a large body to disk and enforce their own limit (recordings).
        self.upload_paths = upload_paths
        self._cookie = SESSION_COOKIE.encode() + b"="

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host, length, staff, chunked = b"", None, False, False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = True  # then the length is not what bounds the body
            elif name == b"cookie" and self._cookie in value:
                staff = True
        started = time.perf_counter()
        status = 500  # what the client gets when the app fails before answering
        refused = False  # a chunked body grew too big: the app sees a client that went away
        answered = False
        waiting = wait_at_most(self.thread_wait_s) if self.thread_wait_s is not None else None

        async def answer(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                answered = True
                status = message["status"]
                message["headers"] = self._headers(scope, message, staff)
            await send(message)

        async def edge_send(message: Message) -> None:
            if not refused:  # once refused, the 413 is the answer
                await answer(message)

        try:
            name = host_name(host.decode("latin-1"))
            if name not in self.hosts:
                await _bad_host(name)(scope, receive, edge_send)
            elif self.upload_paths is not None and self.upload_paths.match(scope["path"]):
                await self.app(scope, receive, edge_send)
            elif length is not None and (not length.isdigit() or len(length) > MAX_DIGITS
                                         or int(length) > self.max_body):
                await _too_large()(scope, receive, edge_send)
            elif length is not None and not chunked:
                # The server reads no more than Content-Length: nothing left to count.
                await self.app(scope, receive, edge_send)
            else:
                received = 0

                async def counted_receive() -> Message:
                    nonlocal received, refused
                    if refused:
                        return {"type": "http.disconnect"}
                    message = await receive()
                    if message["type"] == "http.request":
                        received += len(message.get("body", b""))
                        if received > self.max_body:
                            refused = True
                            if not answered:
                                await _too_large()(scope, receive, answer)
                            return {"type": "http.disconnect"}
                    return message

                try:
                    await self.app(scope, counted_receive, edge_send)
                except ClientDisconnect:
                    if not refused:
                        raise
        finally:
            if waiting is not None:
                done_waiting(waiting)
            took = time.perf_counter() - started
            if self.metrics is not None:
                self.metrics.requests.observe(route_of(scope), scope["method"], status, took)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info("%s %s %d %.0fms", scope["method"], redact_path(scope["path"]),
                                status, took * 1000)

    def _headers(self, scope: Scope, message: Message, staff: bool) -> list[tuple[bytes, bytes]]:
        headers = list(message.get("headers", []))
        present = {name.lower() for name, _ in headers}
        headers += [(name, value) for name, value in SECURITY_HEADERS if name not in present]
        if b"content-security-policy" not in present:
            embed = scope["path"].startswith(EMBED_PREFIX)
            headers.append((b"content-security-policy", self._embed_csp if embed else self._csp))
            if not embed:  # for browsers without frame-ancestors
                headers.append((b"x-frame-options", b"DENY"))
        if is_private(scope):
            headers = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
            headers.append((b"cache-control", PRIVATE_BYTES))
        elif staff and b"cache-control" not in present:
            headers.append((b"cache-control", PRIVATE_BYTES))
        return headers

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = next((value for name, value in scope["headers"] if name == b"host"), b"")
        if host_name(host.decode("latin-1")) in self.hosts:
            if self.metrics is None:
                await self.app(scope, receive, send)
                return
            kind = socket_kind(scope["path"])
            self.metrics.sockets[kind] += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.metrics.sockets[kind] -= 1
            return
        await receive()  # the connect; closing before accepting refuses it
        await send({"type": "websocket.close", "code": 1008})
