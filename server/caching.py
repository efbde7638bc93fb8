"""Answers that carry personal data or a capability are never stored by any cache.

A route marks its request (keep_private, or the PrivateJSONRoute class); the edge
(server.edge) then sends `Cache-Control: private, no-store` on whatever the answer is, errors
included. Anything asked with the staff session cookie is private too, unless the route chose
its own caching.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from starlette.types import Scope

from server.deps import JSONRoute

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


def is_private(scope: Scope) -> bool:
    """Whether the route marked this answer private (server.edge sends the Cache-Control)."""
    return bool(scope.get(_FLAG))
