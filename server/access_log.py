"""The access log, without capabilities or personal data in it.

Uvicorn's access log writes every path and query string as sent, and a manage link
(`/tickets/<token>`, `/api/registrations/<token>`) is a key to a citizen's ticket: whoever reads
the log could cancel it or erase it. This log writes the method, the path with every long
segment (a token) replaced by `…`, never the query string (searches, names), the status and
the time taken.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("kaifang.access")
# Ids, unit codes and route words are shorter; signed tokens are far longer.
TOKEN_MIN_LENGTH = 16


def redact_path(path: str) -> str:
    return "/".join("…" if len(part) >= TOKEN_MIN_LENGTH and not part.isdigit() else part
                    for part in path.split("/"))


class AccessLog:
    """Plain ASGI: one line per HTTP request once its answer has started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not log.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app fails before answering

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            log.info("%s %s %d %.0fms", scope["method"], redact_path(scope["path"]), status,
                     (time.perf_counter() - started) * 1000)
