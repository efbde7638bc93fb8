"""An engine's connections wait for locks as long as the app that uses it says: a second app in
the same process with another KAIFANG_LOCK_TIMEOUT_S (the suite's, a worker beside the web
app) does not get connections opened for the first."""

from __future__ import annotations

from sqlalchemy import text

from server import db as server_db
from server.app import create_app
from server.config import Settings
from server.db import get_engine


def _lock_wait_ms(url: str) -> int:
    with get_engine(url).connect() as conn:
        if conn.dialect.name == "sqlite":
            return int(conn.execute(text("PRAGMA busy_timeout")).scalar_one())
        shown = str(conn.execute(text("SHOW lock_timeout")).scalar_one())  # 2500ms, 10s, 1min
        for unit, ms in (("ms", 1), ("min", 60_000), ("s", 1000)):
            if shown.endswith(unit):
                return int(shown.removesuffix(unit)) * ms
        raise AssertionError(shown)


def test_each_lock_timeout_gets_connections_that_wait_that_long(settings: Settings) -> None:
    url = settings.sqlalchemy_url
    try:
        for seconds in (10.0, 60.0, 2.5, 10.0):
            create_app(settings.model_copy(update={"lock_timeout_s": seconds}))
            assert _lock_wait_ms(url) == round(seconds * 1000), seconds
    finally:
        server_db.set_lock_timeout(settings.lock_timeout_s)
