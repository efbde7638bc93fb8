"""Units over the API: the seeded district, and an admin adding, renaming and retiring units."""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, event_body, login, unit_id
from tests.helpers import FUTURE, reach

LIVELIHOOD = {"区教委", "区民政局", "区人力社保局", "区环保局", "区房管局", "区城市管理委",
              "区商务委", "区卫生计生委", "区安全监管局", "区园林绿化局", "区文化委"}


def units(client: TestClient, **params: Any) -> dict[str, dict[str, Any]]:
    response = client.get("/api/units", params=params)
    assert response.status_code == 200, response.text
    return {u["code"]: u for u in response.json()}


def test_the_public_sees_the_seeded_district(client):
    seeded = units(client)
    assert len(seeded) == 42
    assert Counter(u["category"] for u in seeded.values()) == {
        "livelihood": 11, "subdistrict": 15, "other": 16}
    assert {u["name"] for u in seeded.values() if u["category"] == "livelihood"} == LIVELIHOOD
    assert all(u["name"].endswith("街道") for u in seeded.values()
               if u["category"] == "subdistrict")
    for unit in seeded.values():
        assert {"id", "code", "name", "category"} <= unit.keys()
        assert isinstance(unit["id"], int)


def test_an_admin_adds_a_unit_that_takes_sessions(client, staff, db):
    admin = staff("admin")
    created = admin.post("/api/units", json={"code": "veterans", "name": "区退役军人事务局",
                                             "name_en": "Veterans Affairs", "category": "other"})
    assert created.status_code == 201, created.text
    unit = created.json()
    assert (unit["code"], unit["category"], unit["retired"]) == ("veterans", "other", False)
    assert units(client)["veterans"]["name"] == "区退役军人事务局"
    account = admin.post("/api/users", json={"username": "veterans.editor", "password": PASSWORD,
                                             "role": "editor", "unit_id": unit["id"]})
    assert account.status_code == 201, account.text
    editor = TestClient(admin.app)
    login(editor, "veterans.editor")
    drafted = editor.post("/api/events", json=event_body(db, "veterans", **FUTURE))
    assert drafted.status_code == 201, drafted.text
    assert drafted.json()["unit"]["name"] == "区退役军人事务局"
    actions = [(e["action"], e["entity"]) for e in admin.get("/api/audit").json()]
    assert ("unit.create", "unit") in actions and ("user.create", "user") in actions


def test_a_rename_shows_on_the_units_sessions_and_is_audited(client, staff, db):
    admin = staff("admin")
    event_id = reach(admin, db, "published", **FUTURE)
    education = unit_id(db, "education")
    renamed = admin.patch(f"/api/units/{education}", json={"name": "区教育委员会"})
    assert renamed.status_code == 200, renamed.text
    assert units(client)["education"]["name"] == "区教育委员会"
    assert client.get(f"/api/events/{event_id}").json()["unit"]["name"] == "区教育委员会"
    entry = admin.get("/api/audit").json()[0]
    assert (entry["action"], entry["entity_id"]) == ("unit.update", education)
    assert entry["changes"] == {"name": ["区教委", "区教育委员会"]}


def test_a_retired_unit_keeps_its_history_but_takes_no_new_sessions(client, staff, db):
    admin = staff("admin")
    editor = staff("editor", "education")
    event_id = reach(admin, db, "published", **FUTURE)
    education = unit_id(db, "education")
    retired = admin.patch(f"/api/units/{education}", json={"retired": True})
    assert retired.status_code == 200 and retired.json()["retired"] is True
    assert "education" not in units(client)
    assert units(client, include_retired="true")["education"]["retired"] is True
    public = client.get(f"/api/events/{event_id}")
    assert public.status_code == 200
    assert public.json()["unit"]["code"] == "education"
    assert [e["id"] for e in client.get("/api/events", params={"unit": "education"}).json()] \
        == [event_id]
    refused = editor.post("/api/events", json=event_body(db, **FUTURE))
    assert refused.status_code == 422 and refused.json()["error"] == "unknown_unit"
    cohost = admin.post("/api/events", json=event_body(db, "health", **FUTURE,
                                                       cohost_unit_ids=[education]))
    assert cohost.status_code == 422 and cohost.json()["error"] == "unknown_unit"
    restored = admin.patch(f"/api/units/{education}", json={"retired": False})
    assert restored.status_code == 200
    assert "education" in units(client)
    assert editor.post("/api/events", json=event_body(db, **FUTURE)).status_code == 201


def test_a_category_change_is_kept(client, staff, db):
    admin = staff("admin")
    sports = unit_id(db, "sports")
    changed = admin.patch(f"/api/units/{sports}", json={"category": "livelihood"})
    assert changed.status_code == 200, changed.text
    assert units(client)["sports"]["category"] == "livelihood"
