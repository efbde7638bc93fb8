"""Bad input gets a 4xx with a JSON error, never a 500, and nothing is saved."""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlmodel import Session, col, select

from events.models import Event, Registration
from server.app import MAX_JSON_BODY
from tests.conftest import event_body, unit_id
from tests.helpers import FUTURE, reach

MISSING = object()


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()
    assert isinstance(error, dict)
    assert isinstance(error["error"], str) and isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["error"] == code, error
    return error


def saved(admin: TestClient) -> Any:
    """What a staff member sees of every session and every recorded change."""
    return admin.get("/api/events").json(), admin.get("/api/audit").json()


@pytest.fixture
def admin(staff: Any) -> TestClient:
    client: TestClient = staff("admin")
    return client


def _body(db: Session, changes: dict[str, Any]) -> dict[str, Any]:
    body = event_body(db, **FUTURE)
    for key, value in changes.items():
        if value is MISSING:
            body.pop(key)
        else:
            body[key] = value
    return body


BAD_EVENTS = {
    "ends before start": ({"ends_at": "2035-05-08T08:00:00+08:00"}, "ends_before_start"),
    "ends as it starts": ({"ends_at": FUTURE["starts_at"]}, "ends_before_start"),
    "unknown kind": ({"kind": "concert"}, "invalid"),
    "unknown unit": ({"unit_id": 99_999}, "unknown_unit"),
    "unit id beyond any row": ({"unit_id": 10**20}, "unknown_unit"),
    "negative unit id": ({"unit_id": -1}, "unknown_unit"),
    "unknown co-host": ({"cohost_unit_ids": [99_999]}, "unknown_unit"),
    "co-host id beyond any row": ({"cohost_unit_ids": [2**63]}, "unknown_unit"),
    "negative capacity": ({"capacity": -1}, "invalid"),
    "absurd capacity": ({"capacity": 10**12}, "invalid"),
    "20,000-character title": ({"title": "长" * 20_000}, "invalid"),
    "empty title": ({"title": ""}, "invalid"),
    "null title": ({"title": None}, "invalid"),
    "NUL in the title": ({"title": "会议\u0000开放"}, "invalid"),
    "NUL in the venue": ({"venue": "\u0000"}, "invalid"),
    "a date that is not a date": ({"starts_at": "next Tuesday"}, "invalid"),
    "30 February": ({"starts_at": "2035-02-30T09:30:00+08:00"}, "invalid"),
    "year 1": ({"starts_at": "0001-01-01T00:00:00+08:00"}, "invalid"),
    "year 9999": ({"ends_at": "9999-12-31T23:00:00-08:00"}, "invalid"),
    "capacity 'many'": ({"capacity": "many"}, "invalid"),
    "fractional capacity": ({"capacity": 1.5}, "invalid"),
    "title a number": ({"title": 123}, "invalid"),
    "unit id a word": ({"unit_id": "education"}, "invalid"),
    "co-hosts not a list": ({"cohost_unit_ids": "health"}, "invalid"),
    "unknown mode": ({"mode": "telepathy"}, "invalid"),
    "unknown moderation": ({"moderation": "none"}, "invalid"),
    "no title": ({"title": MISSING}, "invalid"),
    "no kind": ({"kind": MISSING}, "invalid"),
    "no unit": ({"unit_id": MISSING}, "invalid"),
    "no start": ({"starts_at": MISSING}, "invalid"),
    "javascript: material": ({"materials": [{"title": "议程", "url": "javascript:alert(1)//"}]},
                             "invalid"),
    "data: material": ({"materials": [{"title": "议程", "url": "data:text/html,<script>"}]},
                       "invalid"),
    "material without title": ({"materials": [{"url": "https://www.bjxch.gov.cn/"}]},
                               "invalid"),
    "registration closes before it opens": (
        {"registration_opens_at": "2035-05-01T09:00:00+08:00",
         "registration_closes_at": "2035-04-20T09:00:00+08:00"}, "registration_window"),
    "registration closes after the end": (
        {"registration_opens_at": "2035-05-01T09:00:00+08:00",
         "registration_closes_at": "2035-05-09T09:00:00+08:00"}, "registration_window"),
}


@pytest.mark.parametrize("case", BAD_EVENTS)
def test_bad_session_is_refused_and_nothing_saved(admin, db, case):
    changes, code = BAD_EVENTS[case]
    reach(admin, db, "draft", **FUTURE)
    before = saved(admin)
    assert_error(admin.post("/api/events", json=_body(db, changes)), 422, code)
    assert saved(admin) == before


def _chunks(total: int) -> Iterator[bytes]:
    yield b'{"title": "'
    for _ in range(total // 65_536 + 1):
        yield b"x" * 65_536
    yield b'"}'


RAW_BODIES: dict[str, tuple[Any, int, str | None]] = {
    "malformed JSON": (b'{"title": ', 400, "malformed_json"),
    "JSON and then garbage": (b"{} trailing", 400, "malformed_json"),
    "a list": (b"[1, 2]", 422, "invalid"),
    "a string": (b'"a session"', 422, "invalid"),
    "null": (b"null", 422, "invalid"),
    "nothing": (b"", 422, "invalid"),
    "not UTF-8": (b'{"title": "\xff\xfe"}', 400, None),
    "deeply nested": (b"[" * 50_000 + b"]" * 50_000, 400, None),
    "a huge body": (b'{"title": "' + b"x" * (MAX_JSON_BODY + 1) + b'"}', 413, "too_large"),
    "a huge body without a length": (None, 413, "too_large"),
}


@pytest.mark.parametrize("case", RAW_BODIES)
def test_unreadable_body_is_refused(admin, db, case):
    content, status, code = RAW_BODIES[case]
    before = saved(admin)
    if content is None:  # chunked: no Content-Length for the limit to look at up front
        content = _chunks(MAX_JSON_BODY * 2)
    response = admin.post("/api/events", content=content,
                          headers={"Content-Type": "application/json"})
    assert_error(response, status, code)
    assert saved(admin) == before


@pytest.mark.parametrize(("changes", "code"), [
    ({"ends_at": "2035-05-08T08:00:00+08:00"}, "ends_before_start"),
    ({"starts_at": "2035-05-09T09:00:00+08:00"}, "ends_before_start"),
    ({"title": None}, "required"),
    ({"unit_id": None}, "required"),
    ({"capacity": None}, "required"),
    ({"unit_id": 99_999}, "unknown_unit"),
    ({"title": "x" * 201}, "invalid"),
    ({"materials": [{"title": "议程", "url": "javascript:alert(1)"}]}, "invalid"),
    ({"registration_opens_at": "2035-05-01T09:00:00+08:00",
      "registration_closes_at": "2035-04-01T09:00:00+08:00"}, "registration_window"),
])
def test_bad_edit_is_refused_and_the_session_unchanged(admin, db, changes, code):
    event_id = reach(admin, db, "draft", **FUTURE)
    before = saved(admin)
    assert_error(admin.patch(f"/api/events/{event_id}", json=changes), 422, code)
    assert saved(admin) == before


def test_a_retired_unit_takes_no_new_session(admin, db):
    sports = unit_id(db, "sports")
    assert admin.patch(f"/api/units/{sports}", json={"retired": True}).status_code == 200
    before = saved(admin)
    assert_error(admin.post("/api/events", json=event_body(db, "sports", **FUTURE)), 422,
                 "unknown_unit")
    assert saved(admin) == before


@pytest.mark.parametrize("params", [
    {"from": "notadate"}, {"to": "2035-13-01"}, {"from": "2035-02-30"},
    {"from": "0001-01-01T00:00:00+08:00"}, {"to": "9999-12-31"}, {"kind": "bogus"},
    {"status": "bogus"}, {"limit": "-1"}, {"limit": "0"}, {"limit": "many"},
    {"limit": "100000"}, {"offset": "-1"}, {"offset": str(10**20)}, {"unit": "u" * 41},
    {"q": "q" * 101}, {"q": "a\x00b"}, {"unit": "\x00"},
])
def test_bad_filters_are_422(client, params):
    assert_error(client.get("/api/events", params=params), 422, "invalid")


@pytest.mark.parametrize("path", [
    "/api/events/{id}", "/api/events/{id}/audit",
])
@pytest.mark.parametrize("bad_id", ["999999", str(10**20), "-1", "0"])
def test_an_unknown_session_is_404(admin, path, bad_id):
    assert_error(admin.get(path.format(id=bad_id)), 404, "event_not_found")


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PATCH", "/api/events/{id}", {"title": "新"}),
    ("POST", "/api/events/{id}/status", {"status": "pending_review"}),
    ("POST", "/api/events/{id}/postpone", {"starts_at": "2035-05-15T09:30:00+08:00",
                                          "ends_at": "2035-05-15T11:30:00+08:00",
                                          "reason": "顺延"}),
    ("POST", "/api/events/{id}/close", {"minutes": "纪要"}),
])
@pytest.mark.parametrize("bad_id", ["424242", str(2**63)])
def test_a_write_to_an_unknown_session_is_404(admin, method, path, body, bad_id):
    before = saved(admin)
    response = admin.request(method, path.format(id=bad_id), json=body)
    assert_error(response, 404, "event_not_found")
    assert saved(admin) == before


@pytest.mark.parametrize("bad_id", ["abc", "1.5", "1e3", "%20"])
def test_a_non_integer_id_is_422(client, bad_id):
    assert_error(client.get(f"/api/events/{bad_id}"), 422, "invalid")


@pytest.mark.parametrize(("path", "body", "code"), [
    ("/status", {"status": "bogus"}, "invalid"),
    ("/status", {}, "invalid"),
    ("/status", {"status": "cancelled", "reason": "r" * 501}, "invalid"),
    ("/postpone", {"starts_at": "2035-05-15T09:30:00+08:00"}, "invalid"),
    ("/postpone", {"starts_at": "soon", "ends_at": "later", "reason": "顺延"}, "invalid"),
    ("/close", {"minutes": "纪要", "attendee_count": -1}, "invalid"),
    ("/close", {"minutes": "纪要", "attendee_count": "many"}, "invalid"),
    ("/close", {"attendee_count": 3}, "invalid"),
])
def test_bad_lifecycle_bodies_are_422(admin, db, path, body, code):
    event_id = reach(admin, db, "published", **FUTURE)
    before = saved(admin)
    assert_error(admin.post(f"/api/events/{event_id}{path}", json=body), 422, code)
    assert saved(admin) == before


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("POST", "/api/units", {"code": "Not A Code", "name": "x", "category": "other"}, 422,
     "invalid_code"),
    ("POST", "/api/units", {"code": "education", "name": "重复", "category": "other"}, 409,
     "unit_exists"),
    ("POST", "/api/units", {"code": "new-unit", "name": "新", "category": "galaxy"}, 422,
     "invalid"),
    ("POST", "/api/units", {"code": "new-unit", "name": "新\u0000", "category": "other"}, 422,
     "invalid"),
    ("POST", "/api/units", {"code": "new-unit", "name": "", "category": "other"}, 422,
     "invalid"),
    ("PATCH", "/api/units/99999", {"name": "x"}, 404, "unit_not_found"),
    ("PATCH", f"/api/units/{10**20}", {"name": "x"}, 404, "unit_not_found"),
    ("PATCH", "/api/units/1", {"name": ""}, 422, "invalid"),
    ("PATCH", "/api/units/1", {"retired": "perhaps"}, 422, "invalid"),
    ("POST", "/api/users", {"username": "ed", "password": "short", "role": "editor",
                            "unit_id": 1}, 422, "invalid"),
    ("POST", "/api/users", {"username": "有 空格", "password": "long-enough-1",
                            "role": "host"}, 422, "invalid_username"),
    ("POST", "/api/users", {"username": "ed2", "password": "long-enough-1",
                            "role": "editor"}, 422, "unit_required"),
    ("POST", "/api/users", {"username": "ed3", "password": "long-enough-1", "role": "editor",
                            "unit_id": 10**20}, 422, "unknown_unit"),
    ("POST", "/api/users", {"username": "ed4", "password": "long-enough-1",
                            "role": "superuser"}, 422, "invalid"),
])
def test_bad_unit_and_account_bodies(admin, method, path, body, status, code):
    before = saved(admin), admin.get("/api/units?include_retired=true").json(), \
        admin.get("/api/users").json()
    assert_error(admin.request(method, path, json=body), status, code)
    after = saved(admin), admin.get("/api/units?include_retired=true").json(), \
        admin.get("/api/users").json()
    assert after == before


@pytest.mark.parametrize(("body", "status"), [
    ({"username": "someone"}, 422),
    ({"username": 7, "password": "x"}, 422),
    ({"username": "a\u0000", "password": "x"}, 422),
    ({"username": "u" * 61, "password": "x"}, 422),
    ([], 422),
])
def test_bad_sign_in_bodies(client, body, status):
    assert_error(client.post("/api/session", json=body), status)
    assert "set-cookie" not in client.post("/api/session", json=body).headers


MARKUP = {
    "title": "<script>alert('开放')</script> & <b>会议</b>",
    "summary": "<img src=x onerror=alert(1)>\n\"引号\" & 'apostrophe' &amp; &lt;",
    "venue": "<iframe src=//evil>",
}


def test_markup_is_stored_and_returned_as_text_verbatim(client, admin, db):
    created = admin.post("/api/events", json=event_body(db, **MARKUP, **FUTURE))
    assert created.status_code == 201, created.text
    event_id = created.json()["id"]
    admin.post(f"/api/events/{event_id}/status", json={"status": "pending_review"})
    admin.post(f"/api/events/{event_id}/status", json={"status": "published"})
    for shown in (client.get(f"/api/events/{event_id}").json(),
                  client.get("/api/events").json()[0], created.json()):
        assert {key: shown[key] for key in MARKUP} == MARKUP


def test_control_characters_never_reach_the_feed_or_the_calendar(client, admin, db):
    event_id = reach(admin, db, "published", **FUTURE)
    response = admin.post(f"/api/events/{event_id}/postpone", json={
        "starts_at": "2035-05-15T09:30:00+08:00", "ends_at": "2035-05-15T11:30:00+08:00",
        "reason": "会场\x01检修\x0b\x1b，顺延\u0085一周\r\n另行通知"})
    assert response.status_code == 200, response.text
    patched = admin.patch(f"/api/events/{event_id}", json={
        "title": "会议\x07开放\t第二场", "summary": "第一段\x1b[31m\r\n第二段\tA\x7f"})
    assert patched.status_code == 200, patched.text
    shown = client.get(f"/api/events/{event_id}").json()
    assert shown["title"] == "会议开放 第二场"  # on one line: a tab is a space
    assert shown["summary"] == "第一段[31m\n第二段\tA"  # multi-line keeps newline and tab
    feed = client.get("/feed.atom")
    assert feed.status_code == 200
    entry = ET.fromstring(feed.content).find("{http://www.w3.org/2005/Atom}entry")
    assert entry is not None
    assert "会场检修，顺延一周\n另行通知" in entry.findtext(
        "{http://www.w3.org/2005/Atom}summary", "")
    calendar = client.get("/calendar.ics").content.decode()
    assert "会场检修，顺延一周" in calendar.replace("\r\n ", "")  # unfolded
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]", calendar)


def test_a_reason_stored_before_the_rule_does_not_break_the_feed(client, admin, db):
    event_id = reach(admin, db, "published", **FUTURE)
    db.execute(update(Event).where(col(Event.id) == event_id)
               .values(public_notice="旧\x01原因\x1b", postponed_from=Event.starts_at))
    db.commit()
    entry = ET.fromstring(client.get("/feed.atom").content).find(
        "{http://www.w3.org/2005/Atom}entry")
    assert entry is not None
    assert "旧原因" in entry.findtext("{http://www.w3.org/2005/Atom}summary", "")


OPEN = {**FUTURE, "registration_opens_at": "2020-01-01T09:00:00+08:00",
        "registration_closes_at": "2035-05-07T18:00:00+08:00"}


def test_control_characters_in_a_registration_are_dropped(client, admin, db):
    event_id = reach(admin, db, "published", **OPEN)
    response = client.post(f"/api/events/{event_id}/registrations", json={
        "name": "张\x1b三", "phone": "13912345678", "question": "问题\x0c一\n问题二",
        "consent": True})
    assert response.status_code == 201, response.text
    stored = db.exec(select(Registration)).one()
    assert (stored.name, stored.question) == ("张三", "问题一\n问题二")


@pytest.mark.parametrize(("method", "path", "body"), [
    ("PATCH", "/api/events/{event}", {"summary": "\ud800"}),
    ("PATCH", "/api/events/{event}", {"title": "会议\udfff"}),
    ("PATCH", "/api/users/{user}", {"display_name": "\ud800"}),
    ("POST", "/api/events/{event}/postpone", {"starts_at": "2035-05-15T09:30:00+08:00",
                                             "ends_at": "2035-05-15T11:30:00+08:00",
                                             "reason": "顺延\ud83d"}),
    ("POST", "/api/events/{event}/registrations", {"name": "\udc00", "phone": "13912345678",
                                                  "consent": True}),
    ("POST", "/api/session", {"username": "admin", "password": "\ud800"}),
])
def test_a_lone_surrogate_is_422_and_never_logged(admin, db, caplog, method, path, body):
    caplog.set_level(logging.DEBUG)
    event_id = reach(admin, db, "published", **OPEN)
    user_id = admin.get("/api/session").json()["user"]["id"]
    before = saved(admin)
    # A JSON escape: the body itself is plain ASCII, as any client may send it.
    raw = json.dumps(body).encode()
    response = admin.request(method, path.format(event=event_id, user=user_id), content=raw,
                             headers={"Content-Type": "application/json"})
    assert response.status_code in (401, 422), response.text
    assert_error(response, response.status_code)
    assert saved(admin) == before
    assert "surrogates not allowed" not in caplog.text
    assert "Error" not in caplog.text
