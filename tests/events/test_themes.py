"""The plan's themes: the list, a session's themes, the office's edits, the ?theme= filter."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.conftest import event_body, publish


def _create(client: TestClient, db: Session, unit: str = "education", **over: Any) -> dict:
    response = client.post("/api/events", json=event_body(db, unit, **over))
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_the_plans_themes_are_listed_in_its_order(client: TestClient) -> None:
    response = client.get("/api/themes")
    assert response.status_code == 200
    themes = response.json()
    assert [t["code"] for t in themes][:3] == ["major-projects", "environment", "culture"]
    assert {"code": "air-quality", "name": "空气质量", "name_en": "Air quality",
            "retired": False} in themes
    assert len(themes) == 11


def test_a_session_carries_its_themes_everywhere(client: TestClient, staff: Any,
                                                 db: Session) -> None:
    admin = staff("admin")
    created = _create(admin, db, themes=["education", "air-quality", "education"])
    # Duplicates dropped; the plan's order kept.
    assert created["themes"] == ["education", "air-quality"]
    assert created["series_id"] is None
    publish(admin, created["id"])
    assert client.get(f"/api/events/{created['id']}").json()["themes"] == \
        ["education", "air-quality"]
    listed = client.get("/api/events").json()
    assert listed[0]["themes"] == ["education", "air-quality"]
    # An event without themes says so (the key is always there).
    other = _create(admin, db)
    assert other["themes"] == []


def test_bad_themes_are_refused_and_nothing_changes(staff: Any, db: Session) -> None:
    editor = staff("editor", "education")
    event = _create(editor, db, themes=["education"])
    cases = [
        (["no-such-theme"], "unknown_theme"),
        (["education", "health", "housing", "culture", "employment", "environment"],
         "too_many_themes"),
        (["x" * 41], "invalid"),
        ("education", "invalid"),
    ]
    for themes, code in cases:
        response = editor.patch(f"/api/events/{event['id']}", json={"themes": themes,
                                                                     "title": "新标题"})
        assert response.status_code == 422, response.text
        assert response.json()["error"] == code
        answer = response.json()
        assert answer.get("field", answer.get("fields", [{}])[0].get("field", "")) \
            .startswith("themes")
    again = editor.get(f"/api/events/{event['id']}").json()
    assert again["themes"] == ["education"]
    assert again["title"] == event["title"]
    response = editor.post("/api/events", json=event_body(db, themes=["nope"]))
    assert response.status_code == 422 and response.json()["field"] == "themes"


def test_the_office_adds_renames_and_retires_a_theme(client: TestClient, staff: Any,
                                                      db: Session) -> None:
    admin, editor = staff("admin"), staff("editor", "education")
    body = {"code": "traffic", "name": "交通出行", "name_en": "Traffic"}
    assert editor.post("/api/themes", json=body).status_code == 403
    response = admin.post("/api/themes", json=body)
    assert response.status_code == 201, response.text
    assert response.json() == {**body, "retired": False}
    assert admin.post("/api/themes", json=body).json()["error"] == "theme_exists"
    assert admin.post("/api/themes", json={"code": "Bad Code", "name": "x"}).status_code == 422
    assert client.get("/api/themes").json()[-1]["code"] == "traffic"

    renamed = admin.patch("/api/themes/traffic", json={"name": "交通"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "交通"
    assert editor.patch("/api/themes/traffic", json={"name": "x"}).status_code == 403
    assert admin.patch("/api/themes/nope", json={"name": "x"}).status_code == 404

    event = _create(editor, db, themes=["traffic"])
    assert admin.patch("/api/themes/traffic", json={"retired": True}).json()["retired"] is True
    codes = [t["code"] for t in client.get("/api/themes").json()]
    assert "traffic" not in codes
    assert "traffic" in [t["code"] for t in
                         client.get("/api/themes?include_retired=true").json()]
    # Still shown on the old session, which keeps it when edited; no new session gets it.
    kept = editor.patch(f"/api/events/{event['id']}", json={"themes": ["traffic", "health"]})
    assert kept.status_code == 200, kept.text
    assert kept.json()["themes"] == ["health", "traffic"]
    refused = editor.post("/api/events", json=event_body(db, themes=["traffic"]))
    assert refused.status_code == 422 and refused.json()["error"] == "retired_theme"


def test_the_list_filters_by_theme(client: TestClient, staff: Any, db: Session) -> None:
    admin = staff("admin")
    air = _create(admin, db, title="空气质量通报会", themes=["air-quality"])
    school = _create(admin, db, title="入学政策会议", themes=["education"])
    draft = _create(admin, db, title="未发布的空气会议", themes=["air-quality"])
    publish(admin, air["id"])
    publish(admin, school["id"])
    found = client.get("/api/events?theme=air-quality").json()
    assert [e["id"] for e in found] == [air["id"]]
    assert [e["id"] for e in admin.get("/api/events?theme=air-quality").json()] == \
        [air["id"], draft["id"]]
    assert client.get("/api/events?theme=housing").json() == []
    unknown = client.get("/api/events?theme=no-such-theme")
    assert unknown.status_code == 422
    assert unknown.json()["error"] == "unknown_theme" and unknown.json()["field"] == "theme"
    assert client.get("/api/events?theme=" + "x" * 41).status_code == 422


def test_an_editors_theme_change_on_a_published_session_applies_at_once(
        client: TestClient, staff: Any, db: Session) -> None:
    admin, editor = staff("admin"), staff("editor", "education")
    event = _create(editor, db, themes=["education"])
    publish(admin, event["id"])
    response = editor.patch(f"/api/events/{event['id']}", json={"themes": ["housing"]})
    assert response.status_code == 200, response.text
    assert client.get(f"/api/events/{event['id']}").json()["themes"] == ["housing"]
    trail = admin.get(f"/api/events/{event['id']}/audit").json()
    assert trail[0]["changes"]["themes"] == [["education"], ["housing"]]
