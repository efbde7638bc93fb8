from __future__ import annotations

from tests.conftest import event_body, publish


def test_editor_drafts_admin_publishes_public_sees(client, staff, db):
    editor = staff("editor", "education")
    admin = staff("admin")
    created = editor.post("/api/events", json=event_body(db))
    assert created.status_code == 201, created.text
    event = created.json()
    assert event["status"] == "draft"
    assert client.get(f"/api/events/{event['id']}").status_code == 404
    publish(admin, event["id"])
    public = client.get(f"/api/events/{event['id']}").json()
    assert public["status"] == "published"
    assert public["starts_at"] == "2027-03-10T09:30:00+08:00"
    assert public["seats_left"] == 30
    assert [e["id"] for e in client.get("/api/events").json()] == [event["id"]]
