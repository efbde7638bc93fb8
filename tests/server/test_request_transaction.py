"""One transaction per request, committed at the boundary (server.deps.get_db): what an
endpoint wrote is kept only when the commit went through, and the answer comes after it."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from events.errors import Conflict
from events.models import Unit, UnitCategory
from server.deps import SessionDep

ROOT = Path(__file__).resolve().parents[2]
# Where the web boundary lives: no handler there commits by hand. The registration desk,
# delivery and the sign-in throttle keep their own transactions, in events' domain modules.
BOUNDARY = [*sorted((ROOT / "events").glob("api*.py")), *sorted((ROOT / "frontend").glob("*.py"))]


def _unit_body(code: str) -> dict[str, Any]:
    return {"code": code, "name": "区测试局", "name_en": "Test Bureau", "category": "other"}


def test_what_an_endpoint_writes_is_committed_once_it_returns(staff, db) -> None:
    admin = staff("admin")
    assert admin.post("/api/units", json=_unit_body("boundary-ok")).status_code == 201
    assert db.exec(select(Unit).where(Unit.code == "boundary-ok")).first() is not None


def test_a_failed_commit_is_answered_as_a_failure_and_keeps_nothing(
        staff, db, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commit runs before the answer is sent: a client told 201 can rely on the row."""
    admin = staff("admin")
    real_commit = Session.commit
    failures = []

    def failing_commit(self: Session) -> None:
        if not failures:  # the request's one commit, with the unit's INSERT in it, fails
            failures.append(True)
            locked = sqlite3.OperationalError("database is locked")
            locked.sqlite_errorcode = 5  # SQLITE_BUSY: the lock was not had in time
            raise OperationalError("COMMIT", {}, locked)
        real_commit(self)

    monkeypatch.setattr(Session, "commit", failing_commit)
    response = admin.post("/api/units", json=_unit_body("boundary-lost"))
    monkeypatch.setattr(Session, "commit", real_commit)
    assert failures, "the boundary never committed the unit"
    assert response.status_code == 503
    assert response.json()["error"] == "busy"
    db.expire_all()
    assert db.exec(select(Unit).where(Unit.code == "boundary-lost")).first() is None
    codes = [unit["code"] for unit in admin.get("/api/units").json()]
    assert "boundary-lost" not in codes


def test_an_error_after_a_write_rolls_the_whole_request_back(app, client, db) -> None:
    """A refused request leaves no half of itself, even when the refusal comes after a flush."""

    def half_done(session: SessionDep) -> dict[str, str]:
        session.add(Unit(code="boundary-half", name="半途", category=UnitCategory.other))
        session.flush()
        raise Conflict("refused", "refused after the write")

    router = APIRouter()
    router.add_api_route("/half-done", half_done, methods=["POST"])
    app.include_router(router, prefix="/probe")
    response = client.post("/probe/half-done")
    assert response.status_code == 409
    assert db.exec(select(Unit).where(Unit.code == "boundary-half")).first() is None


def _commits(path: Path, base: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.relative_to(base)}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "commit"]


def test_no_handler_commits_by_hand() -> None:
    assert len(BOUNDARY) > 10
    assert [place for path in BOUNDARY for place in _commits(path)] == []


def test_the_guard_sees_a_commit(tmp_path: Path) -> None:
    handler = tmp_path / "handler.py"
    handler.write_text("def save(db):\n    db.add(1)\n    db.commit()\n", encoding="utf-8")
    assert _commits(handler, tmp_path) == ["handler.py:3"]
