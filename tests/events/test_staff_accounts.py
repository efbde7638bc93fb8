"""Staff accounts over the API: an admin changes roles and units, deactivates accounts and resets
passwords; each change that matters signs the account out everywhere and lands in the audit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from events.models import AuditEntry, StaffUser
from tests.conftest import PASSWORD, login, make_user, unit_id

NEW_PASSWORD = "another-horse-77"


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> int:
    return client.post("/api/session",
                       json={"username": username, "password": password}).status_code


def signed_in_editor(app: Any, db: Session) -> tuple[TestClient, int]:
    user = make_user(db, "jiaowei.editor", "editor", "education")
    client = TestClient(app)
    login(client, "jiaowei.editor")
    assert user.id is not None
    return client, user.id


def accounts(admin: TestClient) -> dict[str, dict[str, Any]]:
    response = admin.get("/api/users")
    assert response.status_code == 200, response.text
    return {u["username"]: u for u in response.json()}


def test_an_admin_changes_an_accounts_name_role_and_unit(app, staff, db):
    admin = staff("admin")
    editor, editor_id = signed_in_editor(app, db)
    civil = unit_id(db, "civil-affairs")
    moved = admin.patch(f"/api/users/{editor_id}",
                        json={"display_name": "王丽", "unit_id": civil})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["display_name"], moved.json()["unit_id"]) == ("王丽", civil)
    assert editor.get("/api/session").status_code == 401  # a new unit signs them out
    host = admin.patch(f"/api/users/{editor_id}", json={"role": "host", "unit_id": None})
    assert host.status_code == 200, host.text
    listed = accounts(admin)["jiaowei.editor"]
    assert (listed["role"], listed["unit_id"], listed["active"]) == ("host", None, True)


def test_a_name_change_alone_keeps_the_account_signed_in(app, staff, db):
    admin = staff("admin")
    editor, editor_id = signed_in_editor(app, db)
    assert admin.patch(f"/api/users/{editor_id}",
                       json={"display_name": "王丽"}).status_code == 200
    assert editor.get("/api/session").json()["user"]["display_name"] == "王丽"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"unit_id": None}, 422, "unit_required"),
    ({"role": "editor", "unit_id": None}, 422, "unit_required"),
    ({"unit_id": 999_999}, 422, "unknown_unit"),
    ({"unit_id": 2**40}, 422, "unknown_unit"),
    ({"password": "short"}, 422, None),
    ({"role": "superuser"}, 422, None),
    ({"active": "perhaps"}, 422, None),
])
def test_bad_changes_are_refused_and_leave_the_account_as_it_was(app, staff, db, body, status,
                                                                   code):
    admin = staff("admin")
    _, editor_id = signed_in_editor(app, db)
    response = admin.patch(f"/api/users/{editor_id}", json=body)
    assert response.status_code == status, response.text
    if code:
        assert response.json()["error"] == code
    listed = accounts(admin)["jiaowei.editor"]
    assert (listed["role"], listed["unit_id"]) == ("editor", unit_id(db, "education"))


def test_an_unknown_account_is_404(staff):
    admin = staff("admin")
    for user_id in (999_999, 2**40):
        response = admin.patch(f"/api/users/{user_id}", json={"display_name": "x"})
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "user_not_found"


@pytest.mark.parametrize(("role", "unit_code"), [("editor", "education"), ("host", None)])
def test_only_admins_change_accounts(app, staff, db, role, unit_code):
    other = make_user(db, "xinjiekou.editor", "editor", "xinjiekou")
    someone = staff(role, unit_code)
    me = someone.get("/api/session").json()["user"]["id"]
    for target in (other.id, me):
        response = someone.patch(f"/api/users/{target}", json={"role": "admin"})
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"
    assert someone.get("/api/users").status_code == 403
    assert someone.get("/api/session").json()["user"]["role"] == role


def test_writes_need_login_and_the_csrf_header(app, staff, db):
    admin = staff("admin")
    _, editor_id = signed_in_editor(app, db)
    with TestClient(app) as anonymous:
        assert anonymous.patch(f"/api/users/{editor_id}",
                               json={"active": False}).status_code == 401
    response = admin.patch(f"/api/users/{editor_id}", json={"active": False},
                           headers={"X-CSRF-Token": ""})
    assert response.status_code == 403
    assert accounts(admin)["jiaowei.editor"]["active"] is True


def test_a_deactivated_account_cannot_sign_in_and_its_cookie_stops_working(app, staff, db):
    admin = staff("admin")
    editor, editor_id = signed_in_editor(app, db)
    assert editor.get("/api/session").status_code == 200
    response = admin.patch(f"/api/users/{editor_id}", json={"active": False})
    assert response.status_code == 200 and response.json()["active"] is False
    assert editor.get("/api/session").status_code == 401
    assert editor.get("/api/events").status_code == 200  # still the public
    assert editor.post("/api/events", json={}).status_code == 401
    with TestClient(app) as fresh:
        assert sign_in(fresh, "jiaowei.editor") == 401
    assert admin.patch(f"/api/users/{editor_id}", json={"active": True}).status_code == 200
    with TestClient(app) as fresh:
        assert sign_in(fresh, "jiaowei.editor") == 200


def test_a_password_reset_replaces_the_old_password(app, staff, db):
    admin = staff("admin")
    editor, editor_id = signed_in_editor(app, db)
    response = admin.patch(f"/api/users/{editor_id}", json={"password": NEW_PASSWORD})
    assert response.status_code == 200, response.text
    assert NEW_PASSWORD not in response.text and "password" not in response.text
    assert editor.get("/api/session").status_code == 401
    with TestClient(app) as fresh:
        assert sign_in(fresh, "jiaowei.editor", PASSWORD) == 401
        assert sign_in(fresh, "jiaowei.editor", NEW_PASSWORD) == 200


def test_an_admin_cannot_deactivate_or_demote_themselves(app, staff, db):
    admin = staff("admin")
    me = admin.get("/api/session").json()["user"]["id"]
    for body in ({"active": False}, {"role": "editor", "unit_id": unit_id(db, "education")},
                 {"role": "host"}):
        response = admin.patch(f"/api/users/{me}", json=body)
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "cannot_change_self"
    whoami = admin.get("/api/session")
    assert whoami.status_code == 200
    assert (whoami.json()["user"]["role"], whoami.json()["user"]["active"]) == ("admin", True)
    other_admin = staff("admin")
    assert other_admin.patch(f"/api/users/{me}", json={"role": "host"}).status_code == 200
    assert admin.get("/api/session").status_code == 401


def test_every_change_is_audited_without_the_password(app, staff, db):
    admin = staff("admin")
    _, editor_id = signed_in_editor(app, db)
    civil = unit_id(db, "civil-affairs")
    assert admin.patch(f"/api/users/{editor_id}", json={
        "password": NEW_PASSWORD, "unit_id": civil, "display_name": "王丽"}).status_code == 200
    assert admin.patch(f"/api/users/{editor_id}", json={"active": False}).status_code == 200
    db.expire_all()
    password_hash = db.get(StaffUser, editor_id).password_hash
    entries = db.exec(select(AuditEntry).where(AuditEntry.action == "user.update",
                                               AuditEntry.entity_id == editor_id)
                      .order_by(AuditEntry.id)).all()
    assert len(entries) == 2
    first, second = (json.loads(e.changes) for e in entries)
    assert first == {"display_name": ["", "王丽"], "unit_id": [unit_id(db, "education"), civil],
                     "password_changed": True}
    assert second == {"active": [True, False]}
    assert all(e.username.startswith("admin-") for e in entries)
    raw = " ".join(e.changes for e in db.exec(select(AuditEntry)).all())
    assert NEW_PASSWORD not in raw and PASSWORD not in raw
    assert password_hash not in raw and "$argon2" not in raw
    listed = admin.get("/api/audit").text
    assert NEW_PASSWORD not in listed and "$argon2" not in listed
