"""The data dir is the service's own: created 0700, and the SQLite database with its -wal and
-shm files 0600, so no other account on the machine reads registrations or the secret key."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.cli import migrate
from server.config import Settings
from server.db import get_engine
from tests.conftest import TEST_SECRET_KEY


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """What a shell usually has: new files 0644 and directories 0755 unless asked otherwise."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def test_a_new_data_dir_and_its_database_are_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var", secret_key=None)
    migrate(settings)
    app = create_app(settings)
    with TestClient(app) as client:  # a write: SQLite makes its -wal and -shm files
        client.post("/api/session", json={"username": "nobody", "password": "guess"})
        database = tmp_path / "var" / "kaifang.db"
        files = [database, Path(f"{database}-wal"), Path(f"{database}-shm"),
                 tmp_path / "var" / "secret_key"]
        assert all(path.exists() for path in files)
        assert mode(tmp_path / "var") == 0o700
        assert {path.name: mode(path) for path in files} == {path.name: 0o600 for path in files}
    get_engine(settings.sqlalchemy_url).dispose()


def test_a_database_left_readable_is_made_private_and_a_wide_data_dir_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    data_dir = tmp_path / "old"
    data_dir.mkdir(mode=0o755)
    database = data_dir / "kaifang.db"
    database.touch(mode=0o644)
    caplog.set_level(logging.WARNING)
    settings = Settings(data_dir=data_dir, secret_key=TEST_SECRET_KEY)
    migrate(settings)
    create_app(settings)
    assert mode(database) == 0o600
    assert "chmod 700" in caplog.text and str(data_dir) in caplog.text
    get_engine(settings.sqlalchemy_url).dispose()
