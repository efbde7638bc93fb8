"""Issue 8, items 1 and 5 in the console: changes to a published session go through the review
queue; co-host invitations are answered; other units' drafts stay with their unit."""

from __future__ import annotations

from html import unescape

from tests.conftest import unit_id
from tests.frontend.console_pages import create_via_form, post_form, session_form, submit


def publish_via_console(editor, admin, db) -> int:
    event_id = create_via_form(editor, db, cohost_unit_ids=[])
    submit(editor, event_id)
    published = post_form(admin, "/console/review", f"/console/events/{event_id}/status",
                          {"status": "published", "origin": "review"})
    assert published.status_code == 303
    return event_id


def test_an_edit_of_a_published_session_waits_in_the_review_queue(console, db, client):
    editor, admin = console("editor", "education"), console("admin")
    event_id = publish_via_console(editor, admin, db)
    edit = f"/console/events/{event_id}/edit"
    saved = post_form(editor, edit, edit, session_form(
        db, title="改写后的标题", cohost_unit_ids=[],
        material_url=["https://evil.example/phish", ""]))
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/console/events/{event_id}?done=held"
    page = unescape(editor.get(saved.headers["location"]).text)
    assert "已提交区政务公开办审核" in page and "待审核的修改" in page
    # The form goes on from the changes waiting for review.
    form_page = unescape(editor.get(edit).text)
    assert 'value="改写后的标题"' in form_page
    assert "该活动已发布：对公众可见内容的修改须经" in form_page
    assert "改写后的标题" not in client.get(f"/events/{event_id}").text

    queue = unescape(admin.get("/console/review").text)
    changes = queue.split('id="changes"')[1]
    assert "区教委2027年招生政策会议开放" in changes and "改写后的标题" in changes
    assert "https://evil.example/phish" in changes
    assert 'name="submitted_at"' in changes  # the approval names the version read
    approved = post_form(admin, "/console/review",
                         f"/console/events/{event_id}/revision/approve", {})
    assert approved.status_code == 303
    assert "修改已审核通过" in admin.get(approved.headers["location"]).text
    public = client.get(f"/events/{event_id}").text
    assert "改写后的标题" in public and "经区政务公开办审核，更新于" in public
    trail = unescape(editor.get(f"/console/events/{event_id}").text)
    assert "审核通过修改，公众可见" in trail


def test_the_office_rejects_changes_with_a_reason(console, db, client):
    editor, admin = console("editor", "education"), console("admin")
    event_id = publish_via_console(editor, admin, db)
    edit = f"/console/events/{event_id}/edit"
    post_form(editor, edit, edit, session_form(db, title="不妥的标题", cohost_unit_ids=[]))
    action = f"/console/events/{event_id}/revision/reject"
    empty = post_form(admin, "/console/review", action, {"reason": ""})
    assert empty.status_code == 422
    rejected = post_form(admin, "/console/review", action, {"reason": "标题须与议题一致"})
    assert rejected.status_code == 303
    page = unescape(editor.get(f"/console/events/{event_id}").text)
    assert "区政务公开办未通过修改" in page and "标题须与议题一致" in page
    assert "不妥的标题" not in client.get(f"/events/{event_id}").text


def test_an_invited_unit_accepts_in_the_console(console, db, client):
    editor, admin = console("editor", "education"), console("admin")
    civil = console("editor", "civil-affairs")
    event_id = create_via_form(editor, db)  # invites 区民政局
    submit(editor, event_id)
    post_form(admin, "/console/review", f"/console/events/{event_id}/status",
              {"status": "published", "origin": "review"})
    home = unescape(civil.get("/console").text)
    assert "联合主办邀请" in home and f'href="/console/events/{event_id}"' in home
    assert "区民政局" not in client.get(f"/events/{event_id}").text
    civil_id = unit_id(db, "civil-affairs")
    accepted = post_form(civil, f"/console/events/{event_id}",
                         f"/console/events/{event_id}/cohosts/{civil_id}/accept", {})
    assert accepted.status_code == 303
    assert "本单位已成为该活动的联合主办单位" in civil.get(accepted.headers["location"]).text
    assert "联合主办邀请" not in civil.get("/console").text
    assert "区民政局" in client.get(f"/events/{event_id}").text


def test_other_units_drafts_stay_with_their_unit(console, db, client):
    editor, other = console("editor", "education"), console("editor", "health")
    host = console("host")
    event_id = create_via_form(editor, db, cohost_unit_ids=[])
    for who in (other, host):
        assert who.get(f"/console/events/{event_id}").status_code == 404
        assert who.get(f"/events/{event_id}").status_code == 404  # no staff preview either
    assert editor.get(f"/events/{event_id}").status_code == 200


def test_a_refused_action_shows_no_other_units_draft(console, staff, db):
    """An editor of another unit, or a host not assigned, whose action on a draft is refused
    gets the refusal, not the draft's page (its title, summary and place)."""
    from tests.conftest import event_body
    from tests.frontend.console_pages import csrf_of

    secret = "别人的草稿标题XYZ"
    owner = staff("editor", "education")
    event_id = owner.post("/api/events", json=event_body(db, title=secret)).json()["id"]
    for stranger, data in ((console("editor", "civil-affairs"), {"status": "cancelled"}),
                           (console("host"), {"status": "live"})):
        token = csrf_of(stranger.get("/console").text)
        refused = stranger.post(f"/console/events/{event_id}/status",
                                data={**data, "csrf_token": token}, follow_redirects=False)
        assert refused.status_code in (403, 404)
        assert secret not in unescape(refused.text)


def test_a_refused_action_from_the_review_page_shows_no_one_else_the_queue(console, staff, db):
    from tests.conftest import event_body, publish
    from tests.frontend.console_pages import csrf_of

    editor, admin = staff("editor", "education"), staff("admin")
    event_id = editor.post("/api/events", json=event_body(db)).json()["id"]
    publish(admin, event_id)
    assert editor.patch(f"/api/events/{event_id}",
                        json={"title": "待审的新标题XYZ"}).status_code == 202
    stranger = console("editor", "civil-affairs")
    token = csrf_of(stranger.get("/console").text)
    refused = stranger.post("/console/events/99999/status",
                            data={"status": "published", "origin": "review", "csrf_token": token},
                            follow_redirects=False)
    assert refused.status_code in (403, 404)
    assert "待审的新标题XYZ" not in unescape(refused.text)


def test_console_walk_in_names_and_reject_reasons_lose_control_characters(console, staff, db):
    from sqlmodel import select

    from events.models import EventRevision, Registration
    from tests.conftest import door_open, event_body, publish

    admin_api, editor_api = staff("admin"), staff("editor", "education")
    event_id = admin_api.post("/api/events", json=event_body(db, **door_open())).json()["id"]
    publish(admin_api, event_id)
    editor = console("editor", "education")
    post_form(editor, f"/console/events/{event_id}/checkin",
              f"/console/events/{event_id}/walk-ins", {"name": "王\x01\x1b五", "phone": ""})
    assert editor_api.patch(f"/api/events/{event_id}", json={"title": "新标题"}).status_code == 202
    post_form(console("admin"), "/console/review", f"/console/events/{event_id}/revision/reject",
              {"reason": "请改\x01\x1b\x0b标题"})
    db.expire_all()
    assert [r.name for r in db.exec(select(Registration))] == ["王五"]
    assert [r.reason for r in db.exec(select(EventRevision))] == ["请改标题"]
