"""What the person on call and the load balancer read: GET /readyz and GET /metrics.

`/healthz` says the process answers, and nothing more: it is cheap enough for a probe every
second. `/readyz` asks each part the service needs, each within a short deadline:

- `database`: a `SELECT 1` on a connection of its own (not one of the pool's, which a burst
  may hold all of: a busy process is still ready), within a second;
- `redis`: a PING, when KAIFANG_REDIS_URL is set (`off` otherwise);
- `media`: a file written, read back and deleted under the media dir (a full or read-only
  disk fails here before it fails an upload).

200 `{"status": "ok"}` when all answer. Without Redis the process still serves its own viewers
(the rooms of other processes do not reach them) and registrations: 200 `degraded`, so a load
balancer keeps it. Without the database or the media store it can do neither: 503
`unavailable`, and the balancer sends its traffic to another process.

`/metrics` is this process's metrics in the Prometheus text format (server.metrics; each
metric is described in docs/observe.md), for the addresses of KAIFANG_METRICS_ALLOW only, and
only when no proxy forwarded the request: behind nginx every peer is the loopback, so a
forwarded request may come from anywhere. Anyone else gets the 404 of a path that does not
exist. The gauges that need the database are read at scrape time on a connection of their
own (never one a request waits for), with a short statement timeout.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from pydantic import BaseModel
from sqlalchemy import create_engine, func, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool
from sqlmodel import Session, col, select
from starlette.exceptions import HTTPException as StarletteHTTPException

from events.delivery import outbox_depth
from events.locking import SqliteWriteLock
from events.models import Event, EventStatus
from events.timeutil import utcnow
from server.clientaddr import TrustedProxies
from server.config import Settings
from server.db import POOL_SIZE, get_engine
from server.metrics import CONTENT_TYPE_LATEST, AppMetrics, counter, gauge
from server.threads import RequestThreads
from streaming.models import LiveMessage, Question, Recording, TranscodeJob

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


def check_database(settings: Settings, engine: Engine | None = None) -> Check:
    """`engine`: the app's probe (a connection of its own, within SCRAPE_TIMEOUT_S); else the
    pool's."""
    try:
        with (engine or get_engine(settings.sqlalchemy_url)).connect() as conn:
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


def readiness(settings: Settings, engine: Engine | None = None) -> ReadyPublic:
    started = time.monotonic()
    checks = ReadyChecks(database=check_database(settings, engine), redis=check_redis(settings),
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
    probe: _Probe | None = getattr(request.app.state, "database_probe", None)
    answer = readiness(request.app.state.settings, probe.engine() if probe else None)
    return JSONResponse(answer.model_dump(), status_code=503 if answer.status == "unavailable"
                        else 200, headers={"Cache-Control": "no-store"})


# ---- GET /metrics

# Seconds a scrape's database statement, Redis ping or connection may take.
SCRAPE_TIMEOUT_S = 1.0
# Headers a proxy adds: a request that carries one came through it, from anywhere.
FORWARDED = (b"x-forwarded-for", b"forwarded", b"x-real-ip")


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    app = request.app
    allowed: TrustedProxies | None = getattr(app.state, "metrics_allow", None)
    if allowed is None:
        allowed = app.state.metrics_allow = TrustedProxies(app.state.settings.metrics_allow)
    peer = request.client.host if request.client else ""
    forwarded = any(name in FORWARDED for name, _ in request.scope["headers"])
    if forwarded or not peer or peer not in allowed:
        raise StarletteHTTPException(404, "Not Found")  # as any path that does not exist
    return Response(app.state.metrics.text(), media_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


def metrics_for(app: Any) -> AppMetrics:
    """The app's metrics (server.metrics), with what /metrics asks at scrape time: the rooms
    and publishers of this process, the database (its health and its queues), Redis, the
    media store. The app's state is read at each scrape (the broker and hub are set later)."""
    found = AppMetrics()
    probe = app.state.database_probe = _Probe(app.state.settings)  # /readyz's too
    found.add_source("rooms", lambda: room_metrics(app.state))
    found.add_source("database", probe.health)
    found.add_source("queues", probe.queues)
    found.add_source("redis", lambda: redis_metrics(app.state.settings,
                                                    getattr(app.state, "broker", None)))
    found.add_source("threads", lambda: thread_metrics(getattr(app.state, "request_threads",
                                                                None)))
    found.add_source("media", lambda: [gauge(
        "kaifang_media_store_up", "1 when a file can be written and read back under the "
        "media dir (as /readyz checks)", check_media(app.state.settings) == "ok")])
    return found


def thread_metrics(threads: RequestThreads | None) -> Iterator[Metric]:
    """The request threads (server.threads): in use, waited for, and refused."""
    if threads is None:
        return
    stats = threads.statistics()
    yield gauge("kaifang_request_threads_busy", "Request threads running an endpoint now",
                stats.borrowed_tokens)
    yield gauge("kaifang_request_threads_size", "Request threads of this process",
                stats.total_tokens)
    yield gauge("kaifang_request_threads_waiting", "Requests and jobs waiting for a request "
                "thread now", stats.tasks_waiting)
    yield counter("kaifang_thread_wait_refusals", "Requests answered 503 busy because they "
                  "had no request thread within KAIFANG_THREAD_WAIT_S", threads.refused)


def room_metrics(state: Any) -> Iterator[Metric]:
    """This process's live rooms, from what the broker and the hub count anyway."""
    broker = getattr(state, "broker", None)
    local = getattr(broker, "local", broker)  # a Redis broker feeds a LocalBroker
    if local is not None:
        yield counter("kaifang_room_frames_sent", "Frames handed to the live rooms' sockets "
                      "on this process (a frame counts once per socket)", local.frames_sent)
        yield counter("kaifang_room_frames_dropped", "Frames a socket did not get live: it "
                      "was cut off as too slow (its queue) or was gone; its page reads them "
                      "again when it reconnects", local.frames_dropped)
        yield counter("kaifang_room_sockets_cut_slow", "Sockets cut off (1013) because "
                      "their queue passed its limit: a viewer's connection too slow",
                      local.sockets_cut_slow)
    hub = getattr(state, "live_hub", None)
    if hub is not None:
        yield gauge("kaifang_live_publishers", "Live publishers (RTMP or browser) whose "
                    "encoder runs on this process",
                    sum(1 for run in list(hub.runs.values()) if not run.closed))


def redis_metrics(settings: Settings, broker: Any) -> Iterator[Metric]:
    if not settings.redis_url:
        return
    import redis

    took, up = 0.0, False
    try:
        client = redis.Redis.from_url(settings.redis_url, socket_timeout=SCRAPE_TIMEOUT_S,
                                      socket_connect_timeout=SCRAPE_TIMEOUT_S)
        try:
            started = time.perf_counter()
            client.ping()
            took, up = time.perf_counter() - started, True
        finally:
            client.close()
    except Exception:
        pass
    yield gauge("kaifang_redis_up", "1 when Redis answered a PING within a second", up)
    if up:
        yield gauge("kaifang_redis_ping_seconds", "How long Redis took to answer a PING", took)
    if hasattr(broker, "listening"):
        yield gauge("kaifang_broker_listening", "1 when the room fan-out's listening thread "
                    "last heard Redis (0: this process's viewers miss other processes' "
                    "frames)", broker.listening)
        yield counter("kaifang_broker_redis_failures", "Times the room fan-out could not "
                      "publish to or listen on Redis", broker.redis_failures)


class _Probe:
    """The database, asked at scrape time on connections of its own (NullPool: none kept),
    each statement within SCRAPE_TIMEOUT_S: a scrape never waits for the pool the requests
    use, nor for long on a lock."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.sqlalchemy_url
        self._engine: Engine | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            milliseconds = round(SCRAPE_TIMEOUT_S * 1000)
            connect_args: dict[str, Any] = (
                {"timeout": SCRAPE_TIMEOUT_S, "check_same_thread": False}
                if self.url.startswith("sqlite") else
                {"connect_timeout": 2, "options": f"-c statement_timeout={milliseconds} "
                 f"-c lock_timeout={milliseconds}"})
            self._engine = create_engine(self.url, poolclass=NullPool, hide_parameters=True,
                                         connect_args=connect_args)
        return self._engine

    def health(self) -> Iterator[Metric]:
        took, up, waiting = 0.0, False, None
        try:
            with self.engine().connect() as conn:
                started = time.perf_counter()
                conn.execute(text("SELECT 1"))
                took, up = time.perf_counter() - started, True
                if conn.dialect.name == "postgresql":
                    waiting = conn.execute(text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND wait_event_type = 'Lock'")).scalar_one()
        except Exception:
            pass
        yield gauge("kaifang_database_up", "1 when the database answered SELECT 1", up)
        if up:
            yield gauge("kaifang_database_ping_seconds", "How long SELECT 1 took", took)
        pool = get_engine(self.url).pool
        checked_out = getattr(pool, "checkedout", None)
        if checked_out is not None:
            yield gauge("kaifang_database_pool_checked_out", "Connections of this process's "
                        "pool in use by requests and jobs now", checked_out())
            yield gauge("kaifang_database_pool_size", "The most connections this process's "
                        "pool opens", POOL_SIZE)
        if waiting is not None:
            yield gauge("kaifang_database_lock_waiting", "PostgreSQL sessions of this "
                        "database waiting for a lock now", waiting)
        if self.url.startswith("sqlite"):  # no writer yet: no lock yet, nothing waited
            lock = SqliteWriteLock._registry.get(get_engine(self.url).url.database or "")
            yield counter("kaifang_lock_waits", "Writers of this process that waited for "
                          "SQLite's write lock", lock.waits if lock else 0)
            yield counter("kaifang_lock_wait_seconds", "Seconds writers of this process "
                          "waited for SQLite's write lock, in all", lock.waited_s if lock else 0)
            yield counter("kaifang_lock_timeouts", "Writers that gave up waiting for SQLite's "
                          "write lock (503 busy)", lock.timeouts if lock else 0)

    def queues(self) -> Iterator[Metric]:
        now = utcnow()
        with Session(self.engine()) as db:
            found = list(_queues(db, now))
        return iter(found)


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0


def _queues(db: Session, now: datetime) -> Iterator[Metric]:
    """What waits: messages held for a host, transcode jobs, notifications due. Indexed
    counts; held messages only of sessions live now (a question held before a session waits
    for it by design)."""
    live = select(Event.id).where(Event.status == EventStatus.live)
    held: dict[str, list[Any]] = {"comment": [0, None], "question": [0, None]}
    rows = db.exec(select(LiveMessage.kind, func.count(), func.min(LiveMessage.created_at))
                   .where(LiveMessage.state == "held", col(LiveMessage.event_id).in_(live))
                   .group_by(LiveMessage.kind)).all()
    asked = db.exec(select(func.count(), func.min(Question.created_at))
                    .where(Question.state == "held", col(Question.message_id).is_(None),
                           col(Question.event_id).in_(live))).one()
    for kind, count, oldest in [*rows, ("question", *asked)]:
        entry = held.setdefault(kind, [0, None])
        entry[0] += count
        if oldest is not None and (entry[1] is None or oldest < entry[1]):
            entry[1] = oldest
    counts = GaugeMetricFamily("kaifang_messages_held", "Comments and questions held for a "
                               "host's decision in sessions live now", labels=["kind"])
    ages = GaugeMetricFamily("kaifang_messages_held_oldest_age_seconds", "How long the oldest "
                             "held message of a live session has waited (0: none)",
                             labels=["kind"])
    for kind, (count, oldest) in held.items():
        counts.add_metric([kind], count)
        ages.add_metric([kind], _age(now, oldest))
    yield counts
    yield ages

    jobs = GaugeMetricFamily("kaifang_jobs", "Transcode jobs by state (queued includes those "
                             "waiting for a retry)", labels=["state"])
    by_state = dict(db.exec(select(TranscodeJob.state, func.count())
                            .where(col(TranscodeJob.state).in_(("queued", "running")))
                            .group_by(TranscodeJob.state)).all())
    for state in ("queued", "running"):
        jobs.add_metric([state], by_state.get(state, 0))
    yield jobs
    oldest_job = db.exec(select(func.min(TranscodeJob.created_at))
                         .where(TranscodeJob.state == "queued")).one()
    yield gauge("kaifang_jobs_oldest_queued_age_seconds", "How long the oldest queued "
                "transcode job has waited (0: none)", _age(now, oldest_job))
    speed = GaugeMetricFamily("kaifang_transcode_speed", "Media seconds transcoded per wall "
                              "second: of the jobs running now, and of the last job finished "
                              "(below 1: the queue grows faster than it empties)",
                              labels=["of"])
    running = db.exec(select(TranscodeJob.started_at, TranscodeJob.progress,
                             Recording.duration_s)
                      .join(Recording, col(Recording.id) == TranscodeJob.recording_id)
                      .where(TranscodeJob.state == "running")).all()
    done_s = sum(progress * duration for started, progress, duration in running if started)
    spent_s = sum(_age(now, started) for started, _, _ in running if started)
    if spent_s > 0:
        speed.add_metric(["running"], done_s / spent_s)
    last = db.exec(select(TranscodeJob.started_at, TranscodeJob.finished_at,
                          Recording.duration_s)
                   .join(Recording, col(Recording.id) == TranscodeJob.recording_id)
                   .where(TranscodeJob.state == "succeeded")
                   .order_by(col(TranscodeJob.finished_at).desc()).limit(1)).first()
    if last is not None and last[0] is not None and last[1] is not None \
            and last[1] > last[0]:
        speed.add_metric(["last"], last[2] / (last[1] - last[0]).total_seconds())
    yield speed

    due, oldest_due = outbox_depth(db, now)
    yield gauge("kaifang_outbox_due", "Notifications (SMS, mail) due and not yet sent", due)
    yield gauge("kaifang_outbox_oldest_due_age_seconds", "How long the oldest notification "
                "due has waited (0: none)", _age(now, oldest_due))
