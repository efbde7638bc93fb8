"""What the person on call and the load balancer read: GET /readyz (and GET /metrics).

`/healthz` says the process answers, and nothing more: it is cheap enough for a probe every
second. `/readyz` asks each part the service needs, each within a short deadline:

- `database`: a `SELECT 1` on a pooled connection;
- `redis`: a PING, when KAIFANG_REDIS_URL is set (`off` otherwise);
- `media`: a file written, read back and deleted under the media dir (a full or read-only
  disk fails here before it fails an upload).

200 `{"status": "ok"}` when all answer. Without Redis the process still serves its own viewers
(the rooms of other processes do not reach them) and registrations: 200 `degraded`, so a load
balancer keeps it. Without the database or the media store it can do neither: 503
`unavailable`, and the balancer sends its traffic to another process.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from server.config import Settings
from server.db import get_engine

router = APIRouter()
# Seconds each check may take before it counts as failed.
CHECK_TIMEOUT_S = 2.0

Check = Literal["ok", "failed", "off"]


class ReadyChecks(BaseModel):
    database: Check
    redis: Check
    media: Check


class ReadyPublic(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    checks: ReadyChecks
    # Milliseconds the checks took, all together.
    took_ms: int


def check_database(settings: Settings) -> Check:
    try:
        with get_engine(settings.sqlalchemy_url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        return "failed"
    return "ok"


def check_redis(settings: Settings) -> Check:
    if not settings.redis_url:
        return "off"
    import redis

    try:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=CHECK_TIMEOUT_S,
                                      socket_connect_timeout=CHECK_TIMEOUT_S)
        try:
            client.ping()
        finally:
            client.close()
    except Exception:
        return "failed"
    return "ok"


def check_media(settings: Settings) -> Check:
    probe = settings.media_dir / f".readyz-{secrets.token_hex(6)}"
    payload = b"kaifang readyz"
    try:
        settings.media_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        try:
            os.write(fd, payload)
        finally:
            os.close(fd)
        ok = probe.read_bytes() == payload
    except OSError:
        return "failed"
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return "ok" if ok else "failed"


def readiness(settings: Settings) -> ReadyPublic:
    started = time.monotonic()
    checks = ReadyChecks(database=check_database(settings), redis=check_redis(settings),
                         media=check_media(settings))
    if "failed" in (checks.database, checks.media):
        status: Literal["ok", "degraded", "unavailable"] = "unavailable"
    elif checks.redis == "failed":
        status = "degraded"
    else:
        status = "ok"
    return ReadyPublic(status=status, checks=checks,
                       took_ms=round((time.monotonic() - started) * 1000))


# Out of the API's document, as /metrics: its 503 is this shape, not an error's (docs/deploy.md
# describes both).
@router.get("/readyz", include_in_schema=False)
def readyz(request: Request) -> JSONResponse:
    answer = readiness(request.app.state.settings)
    return JSONResponse(answer.model_dump(), status_code=503 if answer.status == "unavailable"
                        else 200, headers={"Cache-Control": "no-store"})
