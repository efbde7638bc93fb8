"""Who may do what, as a matrix: each role, each action, the session's own unit and another."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode
from sqlmodel import Session

from server.deps import SESSION_COOKIE, SESSION_PURPOSE
from tests.conftest import event_body, unit_id
from tests.helpers import FUTURE, PAST, reach

# Who may do what is decided before any query: the matrix holds on any database, so the
# PostgreSQL pass leaves it to the first (tests/conftest.py).
pytestmark = pytest.mark.sqlite_pass_only

# host: any host account; host_assigned: a host the session's unit assigned to run it.
ROLES = ("admin", "editor_own", "editor_other", "host", "host_assigned", "anonymous")
STAFF = frozenset(ROLES) - {"anonymous"}
Body = Callable[[Session], dict[str, Any]]


@dataclass(frozen=True)
class Action:
    """One request against a session of 区教委 (education) in `state`, or against no session."""

    method: str
    path: str
    body: Body | None = None
    state: str | None = None
    past: bool = False
    allowed: frozenset[str] = frozenset({"admin"})
    ok: int = 200
    # What the public (no cookie) gets instead of 401.
    anonymous: int = 401
    # What a signed-in user without the right gets: 404 where need-to-know hides the session.
    refused: int = 403
    after: dict[str, Any] = field(default_factory=dict)


def own(*roles: str) -> frozenset[str]:
    return frozenset(roles)


ACTIONS: dict[str, Action] = {
    "create for own unit": Action("POST", "/api/events", lambda db: event_body(db, **FUTURE),
                                  allowed=own("admin", "editor_own"), ok=201),
    "create for another unit": Action("POST", "/api/events",
                                      lambda db: event_body(db, "health", **FUTURE),
                                      allowed=own("admin", "editor_other"), ok=201),
    "edit": Action("PATCH", "/api/events/{id}", lambda db: {"title": "改过的标题"}, "draft",
                   allowed=own("admin", "editor_own"), after={"title": "改过的标题"}),
    "move to another unit": Action("PATCH", "/api/events/{id}",
                                   lambda db: {"unit_id": unit_id(db, "health")}, "draft"),
    "submit for review": Action("POST", "/api/events/{id}/status",
                                lambda db: {"status": "pending_review"}, "draft",
                                allowed=own("admin", "editor_own"),
                                after={"status": "pending_review"}),
    "publish": Action("POST", "/api/events/{id}/status", lambda db: {"status": "published"},
                      "pending_review", after={"status": "published"}),
    "send back to draft": Action("POST", "/api/events/{id}/status",
                                 lambda db: {"status": "draft", "reason": "请补充议程"},
                                 "pending_review", allowed=own("admin", "editor_own"),
                                 after={"status": "draft"}),
    "cancel": Action("POST", "/api/events/{id}/status",
                     lambda db: {"status": "cancelled", "reason": "场地维修"}, "published",
                     allowed=own("admin", "editor_own"), after={"status": "cancelled"}),
    "postpone": Action("POST", "/api/events/{id}/postpone",
                       lambda db: {"starts_at": "2035-05-15T09:30:00+08:00",
                                   "ends_at": "2035-05-15T11:30:00+08:00", "reason": "顺延"},
                       "published", allowed=own("admin", "editor_own"),
                       after={"postponed_from": FUTURE["starts_at"]}),
    "close": Action("POST", "/api/events/{id}/close", lambda db: {"minutes": "会议纪要"},
                    "published", past=True, allowed=own("admin", "editor_own"),
                    after={"status": "ended", "minutes": "会议纪要"}),
    "go live": Action("POST", "/api/events/{id}/status", lambda db: {"status": "live"},
                      "published", past=True, allowed=own("admin", "editor_own", "host_assigned"),
                      after={"status": "live"}),
    "end": Action("POST", "/api/events/{id}/status", lambda db: {"status": "ended"}, "live",
                  past=True, allowed=own("admin", "editor_own", "host_assigned"),
                  after={"status": "ended"}),
    "archive": Action("POST", "/api/events/{id}/status", lambda db: {"status": "archived"},
                      "ended", past=True, allowed=own("admin", "editor_own"),
                      after={"status": "archived"}),
    "read a draft": Action("GET", "/api/events/{id}", state="draft",
                           allowed=own("admin", "editor_own", "host_assigned"), anonymous=404,
                           refused=404),
    "read the session's audit": Action("GET", "/api/events/{id}/audit", state="draft",
                                       allowed=own("admin", "editor_own")),
    "read the audit log": Action("GET", "/api/audit"),
    "list accounts": Action("GET", "/api/users"),
    "create a unit": Action("POST", "/api/units",
                            lambda db: {"code": "new-office", "name": "区新设办公室",
                                        "category": "other"}, ok=201),
    "rename a unit": Action("PATCH", "/api/units/{education}",
                            lambda db: {"name": "区教育委员会"}),
    "retire a unit": Action("PATCH", "/api/units/{sports}", lambda db: {"retired": True}),
    "create an account": Action("POST", "/api/users",
                                lambda db: {"username": "new.editor", "password": "long-pass-42",
                                            "role": "editor",
                                            "unit_id": unit_id(db, "education")}, ok=201),
}
MATRIX = [(name, role) for name in ACTIONS for role in ROLES]


# Who reads a session before it is published (need-to-know): anyone else is told it does not
# exist, whatever they asked to do with it, so refusals reveal no draft.
READERS_BEFORE_PUBLICATION = frozenset({"admin", "editor_own", "host_assigned"})


def expected_status(action: Action, role: str) -> int:
    if role == "anonymous":
        return action.anonymous
    if role in action.allowed:
        return action.ok
    if action.state in ("draft", "pending_review") and role not in READERS_BEFORE_PUBLICATION:
        return 404
    return action.refused


def world(admin: TestClient) -> dict[str, Any]:
    """Everything a refused request might have changed, as an admin sees it."""
    return {path: admin.get(path).json() for path in (
        "/api/events", "/api/units?include_retired=true", "/api/users", "/api/audit")}


@pytest.fixture
def actor(client, staff) -> Callable[[str], TestClient]:
    clients = {"editor_own": ("editor", "education"), "editor_other": ("editor", "health"),
               "host": ("host", None), "host_assigned": ("host", None)}

    def make(role: str) -> TestClient:
        if role == "anonymous":
            return client
        kind, unit = clients[role]
        return staff(kind, unit)

    return make


@pytest.mark.parametrize(("name", "role"), MATRIX)
def test_matrix(staff, actor, db, name, role):
    action = ACTIONS[name]
    admin = staff("admin")
    who = admin if role == "admin" else actor(role)
    ids: dict[str, Any] = {"education": unit_id(db, "education"), "sports": unit_id(db, "sports")}
    if action.state:
        ids["id"] = reach(admin, db, action.state, **(PAST if action.past else FUTURE))
        if role == "host_assigned":
            [host] = admin.get("/api/hosts").json()
            assigned = admin.post(f"/api/events/{ids['id']}/hosts", json={"user_id": host["id"]})
            assert assigned.status_code == 201, assigned.text
    before = world(admin)
    body = action.body(db) if action.body else None
    response = who.request(action.method, action.path.format(**ids), json=body)
    wanted = expected_status(action, role)
    assert response.status_code == wanted, response.text
    if wanted >= 400:
        error = response.json()["error"]
        assert error == {401: "login_required", 403: "forbidden",
                         404: "event_not_found"}[wanted]
    if wanted >= 400 or action.method == "GET":
        assert world(admin) == before
        return
    assert world(admin)["/api/audit"] != before["/api/audit"]
    if action.after:
        shown = admin.get(f"/api/events/{ids['id']}").json()
        assert {key: shown[key] for key in action.after} == action.after


def test_a_body_cannot_smuggle_status_or_publication(staff, db):
    editor = staff("editor", "education")
    created = editor.post("/api/events", json=event_body(
        db, status="published", published_at="2026-01-01T00:00:00+08:00", **FUTURE))
    assert created.status_code == 201, created.text
    assert (created.json()["status"], created.json()["published_at"]) == ("draft", None)
    event_id = created.json()["id"]
    patched = editor.patch(f"/api/events/{event_id}", json={"status": "published",
                                                            "published_at": "2026-01-01"})
    assert patched.status_code == 200
    assert (patched.json()["status"], patched.json()["published_at"]) == ("draft", None)


def test_an_editor_cannot_publish_even_own_session(client, staff, db):
    editor = staff("editor", "education")
    event_id = reach(editor, db, "pending_review", **FUTURE)
    refused = editor.post(f"/api/events/{event_id}/status", json={"status": "published"})
    assert refused.status_code == 403
    assert client.get(f"/api/events/{event_id}").status_code == 404


def _write(db: Session, event_id: int) -> list[tuple[str, str, Any]]:
    return [
        ("POST", "/api/events", event_body(db, **FUTURE)),
        ("PATCH", f"/api/events/{event_id}", {"title": "偷改"}),
        ("POST", f"/api/events/{event_id}/status", {"status": "pending_review"}),
        ("POST", "/api/units", {"code": "csrf-unit", "name": "伪造", "category": "other"}),
    ]


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize("token", [None, "", "wrong-token"])
def test_a_write_without_its_csrf_token_is_403(staff, db, index, token):
    admin = staff("admin")
    event_id = reach(admin, db, "draft", **FUTURE)
    before = world(admin)
    method, path, body = _write(db, event_id)[index]
    good = admin.headers.pop("X-CSRF-Token")
    headers = {} if token is None else {"X-CSRF-Token": token}
    response = admin.request(method, path, json=body, headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "csrf_failed"
    admin.headers["X-CSRF-Token"] = good
    assert world(admin) == before


def test_another_sessions_csrf_token_does_not_open_this_one(staff, db):
    admin = staff("admin")
    other = staff("admin")
    response = admin.post("/api/events", json=event_body(db, **FUTURE),
                          headers={"X-CSRF-Token": other.headers["X-CSRF-Token"]})
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"


def _tampered(token: str, payload: dict[str, Any], uid: int) -> str:
    """The same signature over a payload that claims another user."""
    _, timestamp, signature = token.rsplit(".", 2)
    claimed = json.dumps({**payload, "uid": uid}, separators=(",", ":"))
    return ".".join([base64_encode(claimed).decode(), timestamp, signature])


@pytest.mark.parametrize("forge", ["tampered", "other key", "other purpose", "garbage"])
def test_a_forged_cookie_is_401(app, staff, db, forge):
    editor = staff("editor", "education")
    admin = staff("admin")
    before = world(admin)
    real = editor.cookies[SESSION_COOKIE]
    payload = app.state.signer.loads(SESSION_PURPOSE, real)
    admin_id = admin.get("/api/session").json()["user"]["id"]
    forged = {
        "tampered": lambda: _tampered(real, payload, admin_id),
        "other key": lambda: URLSafeTimedSerializer("not-the-key", salt=SESSION_PURPOSE)
        .dumps(payload),
        "other purpose": lambda: app.state.signer.dumps("viewer", payload),
        "garbage": lambda: "not.a.token",
    }[forge]()
    intruder = TestClient(app)
    intruder.cookies.set(SESSION_COOKIE, forged)
    intruder.headers["X-CSRF-Token"] = payload["csrf"]
    response = intruder.post("/api/events", json=event_body(db, **FUTURE))
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "login_required"
    assert intruder.get("/api/audit").status_code == 401
    assert world(admin) == before


def test_another_units_draft_answers_as_if_it_did_not_exist(staff, db) -> None:
    """Refusals reveal no draft: every staff route answers another unit's draft exactly as it
    answers an id that was never given."""
    draft = staff("editor", "education").post("/api/events", json=event_body(db, **FUTURE))
    draft_id = draft.json()["id"]
    other = staff("editor", "health")
    routes = [("GET", "/api/events/{}/hosts", None), ("POST", "/api/events/{}/hosts",
                                                       {"user_id": 1}),
              ("DELETE", "/api/events/{}/hosts/1", None), ("GET", "/api/events/{}/audit", None),
              ("GET", "/api/events/{}/checkins", None),
              ("GET", "/api/events/{}/registrations", None),
              ("GET", "/api/events/{}/registrations.csv", None),
              ("POST", "/api/events/{}/checkins", {"code": "ABCDEFGH"}),
              ("PATCH", "/api/events/{}", {"title": "试探"}),
              ("POST", "/api/events/{}/postpone", {"starts_at": FUTURE["starts_at"],
                                                   "ends_at": FUTURE["ends_at"], "reason": "x"})]
    for method, path, body in routes:
        real = other.request(method, path.format(draft_id), json=body)
        never = other.request(method, path.format(999_999), json=body)
        assert (real.status_code, real.json()["error"]) == \
            (never.status_code, never.json()["error"]) == (404, "event_not_found"), path
