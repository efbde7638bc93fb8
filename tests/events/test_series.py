"""Series: a unit's series, who may put which session in it, what the public sees of it."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.conftest import event_body, publish, unit_id


def _series(client: TestClient, db: Session, unit: str = "education", **over: Any) -> dict:
    body = {"title": "教育开放日系列", "unit_id": unit_id(db, unit),
            "summary": "走进学校，看招生、看课堂。", **over}
    response = client.post("/api/series", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _event(client: TestClient, db: Session, unit: str = "education", **over: Any) -> dict:
    response = client.post("/api/events", json=event_body(db, unit, **over))
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_an_editor_creates_a_series_of_their_own_unit_only(staff: Any, db: Session) -> None:
    editor, host = staff("editor", "education"), staff("host")
    created = _series(editor, db)
    assert created["title"] == "教育开放日系列" and created["unit"]["code"] == "education"
    assert created["session_count"] == 0 and created["page_url"] == f"/series/{created['id']}"
    other = editor.post("/api/series", json={"title": "x", "unit_id": unit_id(db, "health"),
                                             "summary": ""})
    assert other.status_code == 403
    assert host.post("/api/series", json={"title": "x", "unit_id": unit_id(db, "education"),
                                          "summary": ""}).status_code == 403
    for body, field in (({"title": "", "unit_id": unit_id(db, "education")}, "title"),
                        ({"title": "x", "unit_id": 999_999}, "unit_id"),
                        ({"title": "x" * 201, "unit_id": unit_id(db, "education")}, "title")):
        response = editor.post("/api/series", json=body)
        assert response.status_code in (403, 422), response.text
        if response.status_code == 422:
            answer = response.json()
            assert answer.get("field", answer.get("fields", [{}])[0].get("field")) == field


def test_a_session_joins_its_units_series(client: TestClient, staff: Any, db: Session) -> None:
    admin, editor = staff("admin"), staff("editor", "education")
    series = _series(editor, db)
    event = _event(editor, db, series_id=series["id"])
    assert event["series_id"] == series["id"]
    # Not public yet: the series is invisible to the public, visible to its unit.
    assert client.get(f"/api/series/{series['id']}").status_code == 404
    assert client.get("/api/series").json() == []
    assert editor.get(f"/api/series/{series['id']}").json()["events"] == []
    publish(admin, event["id"])
    shown = client.get(f"/api/series/{series['id']}")
    assert shown.status_code == 200
    assert [e["id"] for e in shown.json()["events"]] == [event["id"]]
    assert shown.json()["events"][0]["series_id"] == series["id"]
    assert [s["id"] for s in client.get("/api/series").json()] == [series["id"]]
    # Leaving the series: null clears it.
    left = editor.patch(f"/api/events/{event['id']}", json={"series_id": None})
    assert left.status_code == 200 and left.json()["series_id"] is None


def test_a_session_never_joins_another_units_series_by_its_editor(staff: Any,
                                                                   db: Session) -> None:
    admin = staff("admin")
    education, health = staff("editor", "education"), staff("editor", "health")
    theirs = _series(health, db, "health", title="健康讲座系列")
    event = _event(education, db, title="教育开放日")
    for response in (
            education.patch(f"/api/events/{event['id']}", json={"series_id": theirs["id"]}),
            education.post("/api/events", json=event_body(db, series_id=theirs["id"]))):
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "series_of_another_unit"
        assert response.json()["field"] == "series_id"
    assert education.get(f"/api/events/{event['id']}").json()["series_id"] is None
    # The office neither, for a draft: a series never holds another unit's draft.
    refused = admin.patch(f"/api/events/{event['id']}", json={"series_id": theirs["id"]})
    assert refused.status_code == 422 and refused.json()["error"] == "series_of_another_unit"
    # Unknown series.
    unknown = education.patch(f"/api/events/{event['id']}", json={"series_id": 999_999})
    assert unknown.status_code == 422 and unknown.json()["error"] == "unknown_series"
    assert education.patch(f"/api/events/{event['id']}",
                           json={"series_id": 0}).status_code == 422
    # Another unit's editor cannot edit the series either.
    assert education.patch(f"/api/series/{theirs['id']}", json={"title": "x"}).status_code \
        in (403, 404)


def test_the_office_puts_a_published_session_in_another_units_series(
        client: TestClient, staff: Any, db: Session) -> None:
    admin, education = staff("admin"), staff("editor", "education")
    health = staff("editor", "health")
    series = _series(health, db, "health", title="开放日：走进民生部门")
    event = _event(education, db, title="教育开放日")
    publish(admin, event["id"])
    joined = admin.patch(f"/api/events/{event['id']}", json={"series_id": series["id"]})
    assert joined.status_code == 200, joined.text
    # Its own unit's editor may still edit it (the series kept, as it is not changed).
    kept = education.patch(f"/api/events/{event['id']}",
                           json={"capacity": 40, "series_id": series["id"]})
    assert kept.status_code == 200, kept.text
    assert [e["id"] for e in client.get(f"/api/series/{series['id']}").json()["events"]] == \
        [event["id"]]


def test_editing_and_deleting_a_series(client: TestClient, staff: Any, db: Session) -> None:
    admin, editor = staff("admin"), staff("editor", "education")
    series = _series(editor, db)
    event = _event(editor, db, series_id=series["id"])
    publish(admin, event["id"])
    changed = editor.patch(f"/api/series/{series['id']}", json={"summary": "新的介绍"})
    assert changed.status_code == 200 and changed.json()["summary"] == "新的介绍"
    assert editor.patch(f"/api/series/{series['id']}", json={"title": ""}).status_code == 422
    assert editor.delete(f"/api/series/{series['id']}").status_code == 403
    assert admin.delete(f"/api/series/{series['id']}").status_code == 204
    assert client.get(f"/api/series/{series['id']}").status_code == 404
    assert client.get(f"/api/events/{event['id']}").json()["series_id"] is None
    assert admin.delete(f"/api/series/{series['id']}").status_code == 404
    missing = client.get("/api/series/424242")
    assert missing.status_code == 404 and missing.json()["error"] == "series_not_found"
    assert client.get("/api/series/99999999999").status_code in (404, 422)


def test_the_series_list_for_staff_and_the_public(client: TestClient, staff: Any,
                                                 db: Session) -> None:
    admin, editor = staff("admin"), staff("editor", "education")
    health = staff("editor", "health")
    mine = _series(editor, db, title="我的系列")
    theirs = _series(health, db, "health", title="他们的系列")
    assert {s["id"] for s in editor.get("/api/series").json()} == {mine["id"]}
    assert {s["id"] for s in admin.get("/api/series").json()} == {mine["id"], theirs["id"]}
    assert client.get("/api/series").json() == []
    assert client.get(f"/api/series/{theirs['id']}").status_code == 404
    only = admin.get(f"/api/series?unit_id={unit_id(db, 'health')}").json()
    assert [s["id"] for s in only] == [theirs["id"]]
    assert client.get("/api/series?unit_id=99999999999").status_code == 422
