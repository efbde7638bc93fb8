"""The publication lifecycle of the contract, cancel, postpone, close-out, audit, public filters."""

from __future__ import annotations

from itertools import product
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import event_body, unit_id
from tests.helpers import FUTURE, PAST, move, reach, started

STATUSES = ("draft", "pending_review", "published", "live", "ended", "archived", "cancelled")
LEGAL = [
    ("draft", "pending_review"), ("pending_review", "published"), ("pending_review", "draft"),
    ("published", "live"), ("live", "ended"), ("ended", "archived"),
    # An in-person session that is never streamed ends without going live.
    ("published", "ended"),
    ("draft", "cancelled"), ("pending_review", "cancelled"), ("published", "cancelled"),
    ("live", "cancelled"),
]
ILLEGAL = [pair for pair in product(STATUSES, STATUSES) if pair not in LEGAL]


def status_of(admin: TestClient, event_id: int) -> str:
    return str(admin.get(f"/api/events/{event_id}").json()["status"])


def audit_of(admin: TestClient, event_id: int) -> list[dict[str, Any]]:
    response = admin.get(f"/api/events/{event_id}/audit")
    assert response.status_code == 200, response.text
    return list(response.json())


@pytest.mark.parametrize(("current", "target"), LEGAL)
def test_every_legal_move_is_taken_and_audited(staff, db, current, target):
    admin = staff("admin")
    event_id = reach(admin, db, current, **(started() if target in ("live", "ended") else {}))
    moved = move(admin, event_id, target, "场地临时无法使用" if target == "cancelled" else "")
    assert moved.status_code == 200, moved.text
    assert moved.json()["status"] == target
    assert status_of(admin, event_id) == target
    latest = audit_of(admin, event_id)[0]
    assert latest["action"] == f"event.{target}"
    assert latest["changes"]["status"] == [current, target]
    assert latest["username"].startswith("admin-")


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_every_illegal_move_is_409(staff, db, current, target):
    admin = staff("admin")
    event_id = reach(admin, db, current)
    before = audit_of(admin, event_id)
    moved = move(admin, event_id, target, "理由")
    assert moved.status_code == 409, moved.text
    assert moved.json()["error"] == "illegal_transition"
    assert status_of(admin, event_id) == current
    assert audit_of(admin, event_id) == before


def test_cancel_of_a_published_session_needs_a_reason_shown_to_the_public(client, staff, db):
    admin = staff("admin")
    event_id = reach(admin, db, "published")
    for reason in ("", "   "):
        refused = move(admin, event_id, "cancelled", reason)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"] == "reason_required"
    assert client.get(f"/api/events/{event_id}").json()["status"] == "published"
    assert move(admin, event_id, "cancelled", "主讲人因公出差，改期另行通知").status_code == 200
    public = client.get(f"/api/events/{event_id}").json()
    assert public["status"] == "cancelled"
    assert public["public_notice"] == "主讲人因公出差，改期另行通知"
    listed = client.get("/api/events", params={"status": "cancelled"}).json()
    assert [e["id"] for e in listed] == [event_id]


def test_a_draft_is_cancelled_without_reason_and_stays_hidden(client, staff, db):
    editor = staff("editor", "education")
    event_id = reach(editor, db, "draft")
    assert move(editor, event_id, "cancelled").status_code == 200
    assert client.get(f"/api/events/{event_id}").status_code == 404


def test_send_back_keeps_the_reason_for_the_unit(client, staff, db):
    editor = staff("editor", "education")
    admin = staff("admin")
    event_id = reach(editor, db, "pending_review")
    refused = move(admin, event_id, "draft")
    assert refused.status_code == 422
    assert refused.json()["error"] == "reason_required"
    assert move(admin, event_id, "draft", "请补充议程和列席人数").status_code == 200
    seen = editor.get(f"/api/events/{event_id}").json()
    assert (seen["status"], seen["review_note"]) == ("draft", "请补充议程和列席人数")
    assert client.get(f"/api/events/{event_id}").status_code == 404
    assert move(editor, event_id, "pending_review").status_code == 200
    assert move(admin, event_id, "published").status_code == 200
    public = client.get(f"/api/events/{event_id}").json()
    assert "review_note" not in public


def test_postpone_keeps_the_first_date_and_tells_the_public(client, staff, db):
    editor = staff("editor", "education")
    admin = staff("admin")
    event_id = reach(admin, db, "published", **FUTURE)
    first = {"starts_at": "2035-05-15T09:30:00+08:00", "ends_at": "2035-05-15T11:30:00+08:00",
             "reason": "会场检修，顺延一周"}
    moved = editor.post(f"/api/events/{event_id}/postpone", json=first)
    assert moved.status_code == 200, moved.text
    second = {**first, "starts_at": "2035-05-22T14:00:00+08:00",
              "ends_at": "2035-05-22T16:00:00+08:00", "reason": "再次顺延"}
    assert editor.post(f"/api/events/{event_id}/postpone", json=second).status_code == 200
    public = client.get(f"/api/events/{event_id}").json()
    assert public["postponed_from"] == "2035-05-08T09:30:00+08:00"
    assert (public["starts_at"], public["ends_at"]) == (second["starts_at"], second["ends_at"])
    assert public["public_notice"] == "再次顺延"
    assert audit_of(admin, event_id)[0]["changes"]["reason"] == "再次顺延"


@pytest.mark.parametrize(("body", "code"), [
    ({"reason": "   "}, "reason_required"),
    ({"ends_at": "2035-05-15T08:00:00+08:00"}, "ends_before_start"),
])
def test_postpone_refuses_bad_input(staff, db, body, code):
    admin = staff("admin")
    event_id = reach(admin, db, "published", **FUTURE)
    wanted = {"starts_at": "2035-05-15T09:30:00+08:00", "ends_at": "2035-05-15T11:30:00+08:00",
              "reason": "顺延", **body}
    refused = admin.post(f"/api/events/{event_id}/postpone", json=wanted)
    assert refused.status_code == 422
    assert refused.json()["error"] == code
    shown = admin.get(f"/api/events/{event_id}").json()
    assert (shown["starts_at"], shown["postponed_from"]) == (FUTURE["starts_at"], None)


@pytest.mark.parametrize("status", ["live", "ended", "cancelled"])
def test_a_session_that_has_begun_or_is_cancelled_cannot_be_postponed(staff, db, status):
    admin = staff("admin")
    event_id = reach(admin, db, status, **(FUTURE if status == "cancelled" else started()))
    refused = admin.post(f"/api/events/{event_id}/postpone", json={
        "starts_at": "2035-06-01T09:30:00+08:00", "ends_at": "2035-06-01T11:30:00+08:00",
        "reason": "顺延"})
    assert refused.status_code == 409
    assert status_of(admin, event_id) == status


@pytest.mark.parametrize("status", ["ended", "archived", "cancelled"])
def test_a_finished_session_cannot_be_edited(staff, db, status):
    admin = staff("admin")
    event_id = reach(admin, db, status, **(FUTURE if status == "cancelled" else started()))
    refused = admin.patch(f"/api/events/{event_id}", json={"title": "事后改名"})
    assert refused.status_code == 409
    assert refused.json()["error"] == "not_editable"
    assert admin.get(f"/api/events/{event_id}").json()["title"] == event_body(db)["title"]


@pytest.mark.parametrize("status", ["published", "live", "ended"])
def test_close_out_leaves_the_session_ended_with_minutes(client, staff, db, status):
    admin = staff("admin")
    editor = staff("editor", "education")
    event_id = reach(admin, db, status, **PAST)
    closed = editor.post(f"/api/events/{event_id}/close",
                         json={"minutes": "听取了12位居民代表的意见。", "attendee_count": 12,
                               "attendance_reason": "按纸质签到表统计"})
    assert closed.status_code == 200, closed.text
    public = client.get(f"/api/events/{event_id}").json()
    assert (public["status"], public["closed"]) == ("ended", True)
    assert (public["minutes"], public["attendee_count"]) == ("听取了12位居民代表的意见。", 12)
    assert audit_of(admin, event_id)[0]["action"] == "event.close"


@pytest.mark.parametrize(("status", "code"), [
    ("draft", "illegal_transition"), ("pending_review", "illegal_transition"),
    ("cancelled", "illegal_transition"), ("archived", "illegal_transition"),
])
def test_close_out_only_from_published_live_or_ended(staff, db, status, code):
    admin = staff("admin")
    event_id = reach(admin, db, status, **PAST)
    refused = admin.post(f"/api/events/{event_id}/close", json={"minutes": "纪要"})
    assert refused.status_code == 409
    assert refused.json()["error"] == code
    assert status_of(admin, event_id) == status


def test_a_future_session_cannot_be_closed(staff, db):
    admin = staff("admin")
    event_id = reach(admin, db, "published", **FUTURE)
    refused = admin.post(f"/api/events/{event_id}/close", json={"minutes": "纪要"})
    assert refused.status_code == 409
    assert refused.json()["error"] == "not_started"
    assert admin.get(f"/api/events/{event_id}").json()["closed"] is False


def test_close_out_needs_minutes(staff, db):
    admin = staff("admin")
    event_id = reach(admin, db, "published", **PAST)
    refused = admin.post(f"/api/events/{event_id}/close", json={"minutes": "  "})
    assert refused.status_code == 422
    assert status_of(admin, event_id) == "published"


def test_staff_enter_a_session_held_in_2018_and_close_it(client, staff, db):
    editor = staff("editor", "education")
    admin = staff("admin")
    created = editor.post("/api/events", json=event_body(db, **PAST))
    assert created.status_code == 201, created.text
    event_id = created.json()["id"]
    assert move(editor, event_id, "pending_review").status_code == 200
    assert move(admin, event_id, "published").status_code == 200
    closed = editor.post(f"/api/events/{event_id}/close", json={"minutes": "2018年会议纪要"})
    assert closed.status_code == 200, closed.text
    found = client.get("/api/events", params={"from": "2018-01-01", "to": "2018-12-31"}).json()
    assert [(e["id"], e["status"]) for e in found] == [(event_id, "ended")]


def test_every_change_is_in_the_audit_log(staff, db):
    editor = staff("editor", "education")
    admin = staff("admin")
    event_id = reach(editor, db, "draft", **FUTURE)
    assert editor.patch(f"/api/events/{event_id}", json={"title": "改后的标题"}).status_code == 200
    assert move(editor, event_id, "pending_review").status_code == 200
    assert move(admin, event_id, "published").status_code == 200
    assert editor.post(f"/api/events/{event_id}/postpone", json={
        "starts_at": "2035-06-01T09:30:00+08:00", "ends_at": "2035-06-01T11:30:00+08:00",
        "reason": "顺延"}).status_code == 200
    assert move(admin, event_id, "cancelled", "取消").status_code == 200
    trail = list(reversed(audit_of(admin, event_id)))
    assert [e["action"] for e in trail] == ["event.create", "event.update", "event.pending_review",
                                            "event.published", "event.postpone", "event.cancelled"]
    who = [e["username"] for e in trail]
    assert who[:3] == [who[0]] * 3 and who[0].startswith("editor-") and who[3].startswith("admin-")
    assert trail[1]["changes"] == {"title": [event_body(db)["title"], "改后的标题"]}
    assert trail[4]["changes"]["starts_at"][1].startswith("2035-06-01T01:30:00")
    assert all(e["at"] for e in trail)
    everything = admin.get("/api/audit").json()
    assert {e["id"] for e in trail} <= {e["id"] for e in everything}


@pytest.fixture
def published_set(staff, db) -> dict[str, int]:
    """Four published sessions (and a draft) to filter."""
    admin = staff("admin")
    ids = {
        # 00:30 on 10 March in Beijing is still 9 March in UTC.
        "early": reach(admin, db, "published", title="清晨的会议开放活动",
                       starts_at="2030-03-10T00:30:00+08:00",
                       ends_at="2030-03-10T02:00:00+08:00", registration_opens_at=None,
                       registration_closes_at=None),
        "day": reach(admin, db, "published", "health", kind="open_day", title="卫生开放日",
                     starts_at="2030-04-02T09:00:00+08:00", ends_at="2030-04-02T17:00:00+08:00",
                     registration_opens_at=None, registration_closes_at=None,
                     cohost_unit_ids=[unit_id(db, "xinjiekou")]),
        "late": reach(admin, db, "published", "xinjiekou", kind="public_report",
                      title="街道工作报告", starts_at="2030-04-09T22:00:00+08:00",
                      ends_at="2030-04-09T23:59:00+08:00", registration_opens_at=None,
                      registration_closes_at=None),
        "gone": reach(admin, db, "cancelled", title="已取消的会议", **FUTURE),
        "draft": reach(admin, db, "draft", title="草稿会议", **FUTURE),
    }
    return ids


@pytest.mark.parametrize(("params", "expected"), [
    ({}, ["early", "day", "late", "gone"]),
    ({"kind": "open_day"}, ["day"]),
    ({"unit": "health"}, ["day"]),
    ({"unit": "xinjiekou"}, ["day", "late"]),
    ({"unit": "UNIT_ID:xinjiekou"}, ["day", "late"]),
    ({"status": "cancelled"}, ["gone"]),
    ({"status": "draft"}, []),
    ({"from": "2030-03-10", "to": "2030-03-10"}, ["early"]),
    ({"to": "2030-03-09"}, []),
    ({"from": "2030-04-03", "to": "2030-04-09"}, ["late"]),
    ({"from": "2030-04-10", "to": "2030-12-31"}, []),
    ({"q": "开放日"}, ["day"]),
    ({"q": "%"}, []),
    ({"q": "会议", "kind": "open_meeting"}, ["early", "gone"]),
])
def test_public_filters(client, db, published_set, params, expected):
    if params.get("unit", "").startswith("UNIT_ID:"):
        params = {"unit": str(unit_id(db, params["unit"].split(":")[1]))}
    found = client.get("/api/events", params=params)
    assert found.status_code == 200, found.text
    assert [e["id"] for e in found.json()] == [published_set[name] for name in expected]


def test_an_incomplete_session_is_refused_at_submit_and_publish_naming_every_field(staff, db):
    """An in-person meeting with no venue, address or description went through review."""
    editor, admin = staff("editor", "education"), staff("admin")
    bare = editor.post("/api/events", json=event_body(db, summary="", venue="", address=""))
    assert bare.status_code == 201, bare.text
    event_id = bare.json()["id"]
    assert bare.json()["missing"] == ["summary", "venue", "address"]

    refused = editor.post(f"/api/events/{event_id}/status", json={"status": "pending_review"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == "incomplete"
    assert refused.json()["missing"] == ["summary", "venue", "address"]
    assert [f["field"] for f in refused.json()["fields"]] == ["summary", "venue", "address"]
    assert editor.get(f"/api/events/{event_id}").json()["status"] == "draft"

    # Online, the room is the session's own page: a summary is all it needs.
    online = editor.patch(f"/api/events/{event_id}", json={"mode": "online"})
    assert online.json()["missing"] == ["summary"]
    editor.patch(f"/api/events/{event_id}", json={"summary": "议题：课后服务。"})
    assert editor.post(f"/api/events/{event_id}/status",
                       json={"status": "pending_review"}).status_code == 200
    # Hybrid has an in-person half: the office cannot publish it without the place.
    assert admin.patch(f"/api/events/{event_id}", json={"mode": "hybrid"}).status_code == 200
    refused = admin.post(f"/api/events/{event_id}/status", json={"status": "published"})
    assert (refused.status_code, refused.json()["missing"]) == (422, ["venue", "address"])
    admin.patch(f"/api/events/{event_id}", json={"venue": "区教委一层报告厅",
                                                 "address": "北京市西城区西直门南小街"})
    assert admin.post(f"/api/events/{event_id}/status",
                      json={"status": "published"}).status_code == 200
    # Once published, nobody takes the address away again.
    emptied = admin.patch(f"/api/events/{event_id}", json={"address": ""})
    assert (emptied.status_code, emptied.json()["missing"]) == (422, ["address"])
    held = editor.patch(f"/api/events/{event_id}", json={"venue": " "})
    assert (held.status_code, held.json()["error"]) == (422, "incomplete")


def test_no_seat_limit_is_the_contracts_zero(staff, db):
    """The API keeps the contract: capacity 0, or none given, is no seat limit (the console's
    form is where staff must choose; see tests/frontend/test_console.py)."""
    admin = staff("admin")
    body = event_body(db)
    del body["capacity"]
    unlimited = admin.post("/api/events", json=body)
    assert unlimited.status_code == 201 and unlimited.json()["capacity"] == 0
    assert unlimited.json()["seats_left"] is None
    limited = admin.post("/api/events", json={**body, "capacity": 30})
    assert limited.status_code == 201 and limited.json()["seats_left"] == 30
