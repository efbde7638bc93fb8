"""Issue 8, items 1, 2 and 5: review of published sessions, co-host acceptance, assigned hosts
and need-to-know."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import event_body, unit_id
from tests.helpers import FUTURE, move, reach

HELD = {"kind": "public_report", "starts_at": "2026-06-10T09:30:00+08:00",
        "ends_at": "2026-06-10T11:30:00+08:00", "registration_opens_at": None,
        "registration_closes_at": None}
LINK = {"title": "外部链接", "url": "https://evil.example/phish"}


def counted(client: TestClient, unit_code: str, kind: str = "public_report") -> int:
    report = client.get("/api/compliance", params={"year": 2026, "unit": unit_code}).json()
    [unit] = [u for u in report["units"] if u["unit"]["code"] == unit_code]
    return sum(r["counted"] for r in unit["requirements"] if r["kind"] == kind)


def public(client: TestClient, event_id: int) -> dict[str, Any]:
    response = client.get(f"/api/events/{event_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


# ---- 1: publication review means something ----------------------------------------------------

def test_an_editors_change_to_a_published_session_waits_for_review(client, staff, db):
    """The issue's reproduction end to end: title, outside link and two co-hosts."""
    admin, editor = staff("admin"), staff("editor", "education")
    civil, xinjiekou = staff("editor", "civil-affairs"), staff("editor", "xinjiekou")
    event_id = reach(admin, db, "published", **HELD)
    before = public(client, event_id)
    assert counted(client, "civil-affairs") == 0

    patched = editor.patch(f"/api/events/{event_id}", json={
        "title": "改写后的标题", "materials": [LINK],
        "cohost_unit_ids": [unit_id(db, "civil-affairs"), unit_id(db, "xinjiekou")]})
    assert patched.status_code == 202, patched.text
    pending = patched.json()["pending_revision"]
    assert pending["fields"]["title"] == "改写后的标题"
    assert pending["changes"]["title"] == [before["title"], "改写后的标题"]
    assert pending["submitted_by"].startswith("editor-education")
    # The public (and other units) still read the published version.
    shown = public(client, event_id)
    assert (shown["title"], shown["materials"], shown["cohost_unit_ids"]) == (
        before["title"], [], [])
    assert "pending_revision" not in public(civil, event_id)
    assert [e["id"] for e in admin.get("/api/revisions").json()] == [event_id]

    approved = admin.post(f"/api/events/{event_id}/revision/approve")
    assert approved.status_code == 200, approved.text
    shown = public(client, event_id)
    assert shown["title"] == "改写后的标题" and shown["materials"] == [LINK]
    assert shown["revised_at"] is not None
    # Co-hosts are invited, not yet co-hosts: not shown, not counted.
    assert shown["cohost_unit_ids"] == []
    assert editor.post(f"/api/events/{event_id}/close",
                       json={"minutes": "报告会纪要"}).status_code == 200
    assert counted(client, "education") == 1
    assert counted(client, "civil-affairs") == 0 and counted(client, "xinjiekou") == 0
    latest = admin.get(f"/api/events/{event_id}/audit").json()
    approval = next(e for e in latest if e["action"] == "event.revision_approved")
    assert approval["changes"]["title"] == [before["title"], "改写后的标题"]
    assert approval["username"].startswith("admin-")

    # The invited units answer; only an acceptance counts.
    civil_id, xinjiekou_id = unit_id(db, "civil-affairs"), unit_id(db, "xinjiekou")
    assert civil.post(f"/api/events/{event_id}/cohosts/{xinjiekou_id}/accept").status_code == 403
    assert editor.post(f"/api/events/{event_id}/cohosts/{civil_id}/accept").status_code == 403
    accepted = civil.post(f"/api/events/{event_id}/cohosts/{civil_id}/accept")
    assert accepted.status_code == 200 and accepted.json()["state"] == "accepted"
    declined = xinjiekou.post(f"/api/events/{event_id}/cohosts/{xinjiekou_id}/decline")
    assert declined.status_code == 200 and declined.json()["state"] == "declined"
    assert counted(client, "civil-affairs") == 1 and counted(client, "xinjiekou") == 0
    assert public(client, event_id)["cohost_unit_ids"] == [civil_id]


def test_the_office_rejects_a_change_with_a_reason_and_nothing_changes(client, staff, db):
    admin, editor = staff("admin"), staff("editor", "education")
    event_id = reach(admin, db, "published", **FUTURE)
    title = public(client, event_id)["title"]
    assert editor.patch(f"/api/events/{event_id}",
                        json={"summary": "新的简介"}).status_code == 202
    refused = admin.post(f"/api/events/{event_id}/revision/reject", json={"reason": ""})
    assert refused.status_code == 422
    rejected = admin.post(f"/api/events/{event_id}/revision/reject",
                          json={"reason": "简介与会议议程不符"})
    assert rejected.status_code == 200, rejected.text
    mine = editor.get(f"/api/events/{event_id}").json()
    assert mine["pending_revision"] is None
    assert mine["rejected_revision"]["reason"] == "简介与会议议程不符"
    assert public(client, event_id)["title"] == title
    assert public(client, event_id)["summary"] == event_body(db)["summary"]
    again = admin.post(f"/api/events/{event_id}/revision/approve")
    assert again.status_code == 409 and again.json()["error"] == "no_pending_revision"
    assert editor.post(f"/api/events/{event_id}/revision/approve").status_code == 403


def test_operational_fields_apply_at_once_and_times_need_a_postponement(client, staff, db):
    admin, editor = staff("admin"), staff("editor", "education")
    event_id = reach(admin, db, "published", **FUTURE)
    capacity = editor.patch(f"/api/events/{event_id}", json={"capacity": 12})
    assert capacity.status_code == 200 and capacity.json()["pending_revision"] is None
    assert public(client, event_id)["capacity"] == 12
    moved = editor.patch(f"/api/events/{event_id}",
                         json={"starts_at": "2035-05-09T09:30:00+08:00",
                               "ends_at": "2035-05-09T11:30:00+08:00"})
    assert moved.status_code == 409 and moved.json()["error"] == "postpone_required"
    # The same values as published are no change; a draft is edited directly.
    same = editor.patch(f"/api/events/{event_id}",
                        json={"starts_at": FUTURE["starts_at"], "title": event_body(db)["title"]})
    assert same.status_code == 200 and same.json()["pending_revision"] is None
    draft = reach(admin, db, "draft", **FUTURE)
    assert editor.patch(f"/api/events/{draft}", json={"title": "草稿新标题"}).status_code == 200


def test_an_admins_edit_applies_at_once_and_the_public_sees_when(client, staff, db):
    admin = staff("admin")
    event_id = reach(admin, db, "published", **FUTURE)
    assert public(client, event_id)["revised_at"] is None
    changed = admin.patch(f"/api/events/{event_id}", json={"venue": "区教委报告厅",
                                                          "cohost_unit_ids": [
                                                              unit_id(db, "health")]})
    assert changed.status_code == 200, changed.text
    shown = public(client, event_id)
    assert shown["venue"] == "区教委报告厅" and shown["revised_at"] is not None
    # The office may accept for a unit: co-hosts it names are accepted at once.
    assert shown["cohost_unit_ids"] == [unit_id(db, "health")]


def test_an_editors_co_host_on_a_draft_is_an_invitation(client, staff, db):
    admin, editor, civil = (staff("admin"), staff("editor", "education"),
                            staff("editor", "civil-affairs"))
    civil_id = unit_id(db, "civil-affairs")
    created = editor.post("/api/events", json=event_body(db, **HELD,
                                                         cohost_unit_ids=[civil_id]))
    event_id = created.json()["id"]
    assert created.json()["cohosts"] == [{"unit_id": civil_id, "state": "invited",
                                          "responded_at": None}]
    # The invited unit may read the draft it is asked to co-host, to answer.
    assert civil.get(f"/api/events/{event_id}").status_code == 200
    assert move(editor, event_id, "pending_review").status_code == 200
    assert move(admin, event_id, "published").status_code == 200
    assert editor.post(f"/api/events/{event_id}/close", json={"minutes": "纪要"}).status_code == 200
    assert public(client, event_id)["cohost_unit_ids"] == []
    assert counted(client, "civil-affairs") == 0
    assert admin.post(f"/api/events/{event_id}/cohosts/{civil_id}/accept").status_code == 200
    assert counted(client, "civil-affairs") == 1


# ---- 2: nobody ends a session before it starts; hosts run only what they are assigned -----------

def _host_id(admin: TestClient) -> int:
    [host] = admin.get("/api/hosts").json()
    return int(host["id"])


def test_a_session_cannot_end_before_it_starts(staff, db):
    admin, editor, host = staff("admin"), staff("editor", "education"), staff("host")
    event_id = reach(admin, db, "published", **FUTURE)
    # An unassigned host may not touch it at all.
    refused = move(host, event_id, "ended")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assigned = editor.post(f"/api/events/{event_id}/hosts", json={"user_id": _host_id(admin)})
    assert assigned.status_code == 201, assigned.text
    for who in (host, editor, admin):
        early = move(who, event_id, "ended")
        assert early.status_code == 409 and early.json()["error"] == "not_started"
        assert move(who, event_id, "live").json()["error"] == "not_started"
    assert public(admin, event_id)["status"] == "published"


def test_going_live_opens_half_an_hour_before_the_start(staff, db):
    admin, host = staff("admin"), staff("host")
    soon = datetime.now(UTC) + timedelta(minutes=20)
    event_id = reach(admin, db, "published", starts_at=soon.isoformat(),
                     ends_at=(soon + timedelta(hours=1)).isoformat(),
                     registration_opens_at=None, registration_closes_at=None)
    assert admin.post(f"/api/events/{event_id}/hosts",
                      json={"user_id": _host_id(admin)}).status_code == 201
    assert move(host, event_id, "live").status_code == 200
    # Live, but not yet started: it still cannot end.
    assert move(host, event_id, "ended").json()["error"] == "not_started"


def test_hosts_are_assigned_by_the_unit_and_only_to_hosts(staff, db):
    admin, editor, other = (staff("admin"), staff("editor", "education"),
                            staff("editor", "health"))
    staff("host")
    event_id = reach(admin, db, "published", **FUTURE)
    host_id = _host_id(admin)
    assert other.post(f"/api/events/{event_id}/hosts",
                      json={"user_id": host_id}).status_code == 403
    not_host = editor.post(f"/api/events/{event_id}/hosts", json={"user_id": 1})
    assert not_host.status_code == 422 and not_host.json()["error"] == "not_a_host"
    assert editor.post(f"/api/events/{event_id}/hosts",
                       json={"user_id": host_id}).status_code == 201
    assert [h["id"] for h in editor.get(f"/api/events/{event_id}/hosts").json()] == [host_id]
    assert editor.delete(f"/api/events/{event_id}/hosts/{host_id}").status_code == 204
    assert editor.get(f"/api/events/{event_id}/hosts").json() == []
    actions = [e["action"] for e in admin.get(f"/api/events/{event_id}/audit").json()]
    assert actions[:2] == ["event.host_unassigned", "event.host_assigned"]


# ---- 5: need-to-know --------------------------------------------------------------------------

def test_editors_read_other_units_published_sessions_only(staff, db):
    admin, editor, other = (staff("admin"), staff("editor", "education"),
                            staff("editor", "health"))
    draft = reach(admin, db, "draft", **FUTURE)
    assert move(admin, draft, "pending_review").status_code == 200
    assert move(admin, draft, "draft", "请补充议程").status_code == 200
    published = reach(admin, db, "published", **FUTURE)
    assert editor.patch(f"/api/events/{published}", json={"title": "待审标题"}).status_code == 202

    assert other.get(f"/api/events/{draft}").status_code == 404
    listed = {e["id"]: e for e in other.get("/api/events").json()}
    assert draft not in listed and published in listed
    assert "review_note" not in listed[published]
    assert "pending_revision" not in other.get(f"/api/events/{published}").json()
    # Their own unit's and the office's views keep everything.
    mine = {e["id"]: e for e in editor.get("/api/events").json()}
    assert mine[draft]["review_note"] == "请补充议程"
    assert mine[published]["pending_revision"]["fields"] == {"title": "待审标题"}
    assert draft in {e["id"] for e in admin.get("/api/events").json()}


def test_hosts_read_registrations_only_of_sessions_they_are_assigned(staff, db, client):
    admin, host = staff("admin"), staff("host")
    opens = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    event_id = reach(admin, db, "published", **{**FUTURE, "registration_opens_at": opens})
    registered = client.post(f"/api/events/{event_id}/registrations", json={
        "name": "张三", "phone": "13912345678", "consent": True})
    assert registered.status_code == 201, registered.text
    code = registered.json()["code"]
    paths = [f"/api/events/{event_id}/registrations", f"/api/events/{event_id}/checkins"]
    for path in paths:
        assert host.get(path).status_code == 403
    assert host.post(f"/api/events/{event_id}/checkins", json={"code": code}).status_code == 403
    assert host.get(f"/api/events/{event_id}/registrations.csv").status_code == 403
    assert admin.post(f"/api/events/{event_id}/hosts",
                      json={"user_id": _host_id(admin)}).status_code == 201
    for path in paths:
        assert host.get(path).status_code == 200
    assert host.get(f"/api/events/{event_id}/registrations").json()[0]["code"] == code
    # The full personal data stays with the unit and the office.
    assert host.get(f"/api/events/{event_id}/registrations.csv").status_code == 403


def test_a_host_sees_drafts_only_when_assigned(staff, db):
    admin, host = staff("admin"), staff("host")
    draft = reach(admin, db, "draft", **FUTURE)
    assert host.get(f"/api/events/{draft}").status_code == 404
    assert draft not in {e["id"] for e in host.get("/api/events").json()}
    assert admin.post(f"/api/events/{draft}/hosts",
                      json={"user_id": _host_id(admin)}).status_code == 201
    assert host.get(f"/api/events/{draft}").status_code == 200
    assert draft in {e["id"] for e in host.get("/api/events").json()}
    # Running it needs no review notes: those stay with the unit and the office.
    assert move(admin, draft, "pending_review").status_code == 200
    assert move(admin, draft, "draft", "请补充议程").status_code == 200
    shown = host.get(f"/api/events/{draft}").json()
    assert "review_note" not in shown and "pending_revision" not in shown
    assert "请补充议程" not in host.get(f"/console/events/{draft}").text


def test_the_office_approves_only_the_changes_it_read(staff, db, client):
    """An editor who changes a pending revision after the office read it does not get the new
    version approved unseen (a phishing link slipped in after a typo fix)."""
    from tests.conftest import publish

    admin, editor = staff("admin"), staff("editor", "education")
    event_id = editor.post("/api/events", json=event_body(db)).json()["id"]
    publish(admin, event_id)
    assert editor.patch(f"/api/events/{event_id}", json={"title": "错字已改"}).status_code == 202
    read = admin.get("/api/revisions").json()[0]["pending_revision"]["submitted_at"]
    assert editor.patch(f"/api/events/{event_id}", json={"materials": [
        {"title": "报名须知", "url": "https://evil.example/phish"}]}).status_code == 202
    stale = admin.post(f"/api/events/{event_id}/revision/approve", json={"submitted_at": read})
    assert stale.status_code == 409 and stale.json()["error"] == "changed_since_viewed"
    public = client.get(f"/api/events/{event_id}").json()
    assert public["materials"] == [] and public["title"] != "错字已改"
    now_read = admin.get("/api/revisions").json()[0]["pending_revision"]["submitted_at"]
    approved = admin.post(f"/api/events/{event_id}/revision/approve",
                          json={"submitted_at": now_read})
    assert approved.status_code == 200


def test_published_minutes_are_corrected_only_by_the_office(staff, db, client):
    from tests.conftest import door_open, publish

    admin, editor = staff("admin"), staff("editor", "education")
    event_id = editor.post("/api/events", json=event_body(
        db, **door_open(minutes_to_start=-10))).json()["id"]
    publish(admin, event_id)
    assert editor.post(f"/api/events/{event_id}/close", json={"minutes": "座谈纪要"}
                       ).status_code == 200
    rewrite = editor.post(f"/api/events/{event_id}/close",
                          json={"minutes": "诈骗 visit https://evil.example now"})
    assert rewrite.status_code == 409 and rewrite.json()["error"] == "already_closed"
    assert client.get(f"/api/events/{event_id}").json()["minutes"] == "座谈纪要"
    corrected = admin.post(f"/api/events/{event_id}/close", json={"minutes": "座谈纪要（更正）"})
    assert corrected.status_code == 200
