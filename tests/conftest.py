"""Every test gets its own fresh database and app: SQLite by default, PostgreSQL when
KAIFANG_TEST_DATABASE_URL is set (and Redis when KAIFANG_TEST_REDIS_URL is)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlmodel import Session, SQLModel, select

from events.models import EventHost, QuotaRule, Role, StaffUser, Theme, Unit
from events.quotas import seed_rows as quota_seed_rows
from events.staff import UserCreate, create_user
from events.themes_seed import theme_seed_rows
from events.units import seed_rows
from server import security
from server.app import create_app
from server.cli import migrate
from server.config import Settings
from server.db import get_engine

# The local SMS API (the `sms_api` fixture) and SMTP server (`smtp_sink`) tests configure.
pytest_plugins = ["tests.sms_gateway", "tests.smtp_sink"]
PASSWORD = "correct-horse-42"
# At least 32 bytes, as the service requires of any key.
TEST_SECRET_KEY = "test-secret-key-of-at-least-32-bytes"
# Cheap Argon2 parameters for the suite only: still Argon2id, 100x faster to hash.
security._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
# A sign-in for nobody checks this dummy hash (equal time): made cheaply as well.
security._DUMMY_HASH = security._hasher.hash("kaifang-timing-equaliser")
# Under pytest-xdist each worker (gw0, gw1, ...) has a database and a Redis database of its own.
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def _per_worker_pg(url: str | None) -> str | None:
    return f"{url}_gw{WORKER}" if url and "PYTEST_XDIST_WORKER" in os.environ else url


def _per_worker_redis(url: str | None) -> str | None:
    """redis://host:port/N → database N - WORKER (modulo 16): pub/sub channels and keys name
    their database, so workers never hear each other's rooms."""
    if not url or "PYTEST_XDIST_WORKER" not in os.environ:
        return url
    base, _, number = url.rpartition("/")
    if not number.isdigit():
        return f"{url.rstrip('/')}/{15 - WORKER % 16}"
    return f"{base}/{(int(number) - WORKER) % 16}"


def _share_route_state() -> None:
    """FastAPI (0.165) builds an included route's state (its dependant, its pydantic fields and
    TypeAdapters) lazily, per app, on the app's first requests: 0.1-0.3 s of CPU for each
    test's fresh app, the same ~400 routes each time. Built from the module-level routers
    alone, it is the same for every app: each worker builds it once. The suite sets no
    dependency_overrides (the shared state consults none); without the private hook (another
    FastAPI) this does nothing and each app builds its own, as before."""
    from fastapi import routing

    effective = getattr(routing, "_EffectiveRouteContext", None)
    build = getattr(effective, "from_api_route", None)
    if build is None or not dataclasses.is_dataclass(getattr(routing, "_RouterIncludeContext",
                                                             None)):
        return
    built: dict[tuple[int, str], tuple[Any, Any, Any]] = {}

    def shared(cls: Any, *, original_route: Any, include_context: Any, **more: Any) -> Any:
        if more or getattr(include_context.dependency_overrides_provider,
                           "dependency_overrides", None):
            return build(original_route=original_route, include_context=include_context, **more)
        context = dataclasses.replace(include_context, dependency_overrides_provider=None)
        key = (id(original_route), repr(context))
        if key not in built:
            # Held with what the key names, so no id in it is reused by a later object.
            built[key] = (build(original_route=original_route, include_context=context),
                          original_route, context)
        return built[key][0]

    effective.from_api_route = classmethod(shared)


_share_route_state()


PG_URL = _per_worker_pg(os.environ.get("KAIFANG_TEST_DATABASE_URL"))
# The host TestClient names; browser tests reach the app on 127.0.0.1, which is always known.
PUBLIC_URL = "http://testserver"
REDIS_URL = _per_worker_redis(os.environ.get("KAIFANG_TEST_REDIS_URL"))


def _fresh_pg_database(url: str) -> None:
    """Drops and re-creates the test database, then migrates it."""
    base, name = url.rsplit("/", 1)
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:
        _fresh_pg_database(PG_URL)
        migrate(Settings(data_dir=tmp_path_factory.mktemp("pg"), database_url=PG_URL))
        return PG_URL
    folder = tmp_path_factory.mktemp("template")
    migrate(Settings(data_dir=folder, secret_key=TEST_SECRET_KEY))
    engine = get_engine(Settings(data_dir=folder).sqlalchemy_url)
    engine.dispose()
    return str(folder / "kaifang.db")


_RESET_SQL: dict[str, str] = {}


def _reset_pg(url: str) -> None:
    """Empties every table and restarts every sequence, then seeds units, quota rules and themes as
    the migrations do. DELETE in foreign-key order is ~15x faster than TRUNCATE on tables this
    small (TRUNCATE swaps each table's files), and every test pays for it."""
    engine = get_engine(url)
    if url not in _RESET_SQL:
        with engine.connect() as conn:
            sequences = conn.execute(text(
                "SELECT quote_ident(sequence_schema) || '.' || quote_ident(sequence_name) "
                "FROM information_schema.sequences")).scalars().all()
        tables = [t.name for t in reversed(SQLModel.metadata.sorted_tables)]
        _RESET_SQL[url] = "; ".join([f'DELETE FROM "{name}"' for name in tables]
                                    + [f"ALTER SEQUENCE {name} RESTART" for name in sequences])
    with engine.begin() as conn:
        conn.exec_driver_sql(_RESET_SQL[url])
        conn.execute(Unit.__table__.insert(), seed_rows())  # type: ignore[attr-defined]
        conn.execute(QuotaRule.__table__.insert(), quota_seed_rows())  # type: ignore[attr-defined]
        conn.execute(Theme.__table__.insert(), theme_seed_rows())  # type: ignore[attr-defined]
        conn.execute(text("UPDATE unit SET press_office = true WHERE code = 'publicity'"))


# The suite registers freely from one test client; tests/events/test_ratelimit.py sets limits.
# Tests' apps listen for no RTMP publisher (parallel workers would fight for port 1935): the
# ingest tests give theirs a free port.
NO_REGISTRATION_LIMITS: dict[str, Any] = {"registration_limit_per_address": 0,
                                          "registration_limit_per_phone": 0, "rtmp_port": 0}


@pytest.fixture
def settings(tmp_path: Path, template_db: str) -> Settings:
    if REDIS_URL:  # each test starts with an empty Redis, as with a fresh database
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
    if PG_URL:
        _reset_pg(PG_URL)
        return Settings(data_dir=tmp_path, database_url=PG_URL, redis_url=REDIS_URL,
                        secret_key=TEST_SECRET_KEY, public_url=PUBLIC_URL,
                        **NO_REGISTRATION_LIMITS)
    shutil.copy(template_db, tmp_path / "kaifang.db")
    return Settings(data_dir=tmp_path, redis_url=REDIS_URL, secret_key=TEST_SECRET_KEY,
                    public_url=PUBLIC_URL, **NO_REGISTRATION_LIMITS)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def db(settings: Settings) -> Iterator[Session]:
    with Session(get_engine(settings.sqlalchemy_url), expire_on_commit=False) as session:
        yield session


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def unit_id(db: Session, code: str) -> int:
    unit = db.exec(select(Unit).where(Unit.code == code)).one()
    assert unit.id is not None
    return unit.id


def make_user(db: Session, username: str, role: str, unit_code: str | None = None) -> StaffUser:
    user = create_user(db, None, UserCreate(
        username=username, password=PASSWORD, role=Role(role),
        unit_id=unit_id(db, unit_code) if unit_code else None))
    db.commit()
    return user


def assign_hosts(db: Session, event_id: int) -> None:
    """Assigns every host account to the session: hosts run only sessions they are assigned."""
    for host in db.exec(select(StaffUser).where(StaffUser.role == Role.host)):
        if db.get(EventHost, (event_id, host.id)) is None:
            db.add(EventHost(event_id=event_id, user_id=host.id))
    db.commit()


def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Signs the client in; later requests carry the CSRF header by default."""
    response = client.post("/api/session", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    csrf: str = response.json()["csrf_token"]
    client.headers["X-CSRF-Token"] = csrf
    return csrf


@pytest.fixture
def staff(app: FastAPI, db: Session) -> Any:
    """staff("admin") / staff("editor", "education") / staff("host"): a signed-in client."""
    made: list[TestClient] = []

    def factory(role: str, unit_code: str | None = None) -> TestClient:
        name = f"{role}-{unit_code or 'x'}-{len(made)}"
        make_user(db, name, role, unit_code)
        test_client = TestClient(app)
        test_client.__enter__()
        login(test_client, name)
        made.append(test_client)
        return test_client

    yield factory
    for test_client in made:
        test_client.__exit__(None, None, None)


def event_body(db: Session, unit_code: str = "education", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "open_meeting",
        "unit_id": unit_id(db, unit_code),
        "title": "区教委2027年招生政策会议开放",
        "summary": "邀请家长代表列席，听取义务教育阶段入学政策的制定过程。",
        "starts_at": "2027-03-10T09:30:00+08:00",
        "ends_at": "2027-03-10T11:30:00+08:00",
        "mode": "in_person",
        "venue": "区教委三层会议室",
        "address": "北京市西城区西直门南小街国英一号",
        "capacity": 30,
        "registration_opens_at": "2027-02-20T09:00:00+08:00",
        "registration_closes_at": "2027-03-09T18:00:00+08:00",
        "moderation": "pre",
        "premiere_at": None,
    }
    body.update(overrides)
    return body


def door_open(minutes_to_start: int = 30) -> dict[str, str]:
    """Times for a session whose door is open now (check-in opens 2 hours before the start),
    registration open from yesterday until the start: overrides for event_body."""
    now = datetime.now(UTC).replace(microsecond=0)
    starts = now + timedelta(minutes=minutes_to_start)
    return {"starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=2)).isoformat(),
            "registration_opens_at": (now - timedelta(days=1)).isoformat(),
            "registration_closes_at": starts.isoformat()}


def publish(admin: TestClient, event_id: int) -> dict[str, Any]:
    assert admin.post(f"/api/events/{event_id}/status",
                      json={"status": "pending_review"}).status_code == 200
    response = admin.post(f"/api/events/{event_id}/status", json={"status": "published"})
    assert response.status_code == 200, response.text
    return dict(response.json())


APP_PACKAGES = ("server", "events", "streaming", "frontend")


class Clock:
    """The app's clock held still at `now`; `advance` moves it on, as time would."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Replaces the app's utcnow in every module that holds it (`from … import utcnow`), so a
    test moves time on instead of sleeping. Signed tokens keep their own clock (time.time)."""
    clock = Clock(datetime.now(UTC))
    replace_utcnow(monkeypatch, clock)
    return clock


def replace_utcnow(monkeypatch: pytest.MonkeyPatch, clock: Any) -> None:
    """Every app module's `utcnow` (each holds its own: `from … import utcnow`) becomes `clock`."""
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] not in APP_PACKAGES:
            continue
        found = getattr(module, "utcnow", None)
        if callable(found) and getattr(found, "__module__", "").split(".")[0] in APP_PACKAGES:
            monkeypatch.setattr(module, "utcnow", clock)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """The app on a real port of 127.0.0.1 (uvicorn in a thread), until the block ends."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(app: FastAPI) -> Iterator[str]:
    """The app on a real port, for browser and websocket tests."""
    with serve(app) as url:
        yield url


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `make test`, which installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


# What the PostgreSQL + Redis pass (KAIFANG_TEST_BACKEND_ONLY=1, .ci/run) runs: the tests that
# reach the database or the broker. The browser tests and the pure logic already ran on SQLite
# in the first pass; the pages they drive read the same rows through the same code.
# Tests marked `sqlite_pass_only` stay out of it too: a media protocol's parsing and refusals
# (their database part, the key's check, runs on PostgreSQL in its own tests), and what is
# decided before any query (the authorization matrix, pages' headers, the OpenAPI document's
# shape, which the fuzzing checks answers against on PostgreSQL).
BACKEND_FIXTURES = {"settings", "template_db", "database_url"}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: a worker more than the cores, as a third of the suite waits on real-time
    media (publishers sending at their own pace, players at the live edge), not on a core."""
    return len(os.sched_getaffinity(0)) + 1


# The files of the longest tests (10-45 s each: real-time media, a browser), longest first.
# Under pytest-xdist they are handed out first, so none of them starts last and runs alone
# while the other workers are done (the run's tail); one missing here only runs later.
# Run with --maxschedchunk=1 (Makefile, .ci/run): each worker then takes the next test as it
# finishes one, instead of a slice of the collection in order.
LONGEST_FIRST = ("test_app_restart.py", "test_worker_killed.py", "test_sqlite_busy.py",
                 "test_redis_outage.py", "test_pg_restart.py", "test_nginx_site.py",
                 "test_plan_browser.py", "test_golive_browser.py", "test_player_live_browser.py",
                 "test_accessibility_browser.py", "test_jobs_runs.py", "test_player_browser.py",
                 "test_compliance_browser.py", "test_live_hlsjs_browser.py",
                 "test_archive_browser.py", "test_live_hub.py", "test_checkin_browser.py",
                 "test_media_attacks.py", "test_live_done_browser.py", "test_live_runs.py",
                 "test_premiere_browser.py", "test_golive_page_browser.py",
                 "test_theme_to_answer_browser.py", "test_themes_browser.py",
                 "test_answers_browser.py", "test_session_promises_browser.py",
                 "test_portal_browser.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "PYTEST_XDIST_WORKER" in os.environ:  # each worker collects: the same order in each
        rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
    if os.environ.get("KAIFANG_TEST_BACKEND_ONLY") != "1":
        return
    kept, dropped = [], []
    for item in items:
        uses_backend = BACKEND_FIXTURES & set(getattr(item, "fixturenames", ()))
        in_browser = item.path.name.endswith("_browser.py")
        elsewhere = item.get_closest_marker("sqlite_pass_only") is not None
        (kept if uses_backend and not in_browser and not elsewhere else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
