"""Answers that carry personal data or a capability are never stored by any cache.

A route marks its request (keep_private, or the PrivateJSONRoute class); PrivateAnswers then
sends `Cache-Control: private, no-store` on whatever the answer is, errors included. Anything
asked with the staff session cookie is private too, unless the route chose its own caching.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.deps import SESSION_COOKIE, JSONRoute

PRIVATE = "private, no-store"
_FLAG = "kaifang.private"


def keep_private(scope: Scope) -> None:
    scope[_FLAG] = True


class PrivateJSONRoute(JSONRoute):
    """A JSON route whose every answer is private (tickets, registration lists, check-in)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def private_handler(request: Request) -> Response:
            keep_private(request.scope)
            return await handler(request)

        return private_handler


class PrivateAnswers:
    """Plain ASGI: the Cache-Control of private answers (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._cookie = SESSION_COOKIE.encode() + b"="

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        staff = any(name == b"cookie" and self._cookie in value
                    for name, value in scope["headers"])

        async def with_cache_control(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if scope.get(_FLAG):
                    headers["Cache-Control"] = PRIVATE
                elif staff:
                    headers.setdefault("Cache-Control", PRIVATE)
            await send(message)

        await self.app(scope, receive, with_cache_control)
