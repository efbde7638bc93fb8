"""The double-submit shortcut is bound to the browser that posted first, and nothing personal
or capability-bearing is stored by a cache (issue 8, item 8)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.frontend.portal_pages import HTML, count, form_token, post_form, register, visible
from tests.helpers import open_session, registrations

PRIVATE = "private, no-store"


def test_a_second_poster_of_the_same_form_and_phone_is_not_led_to_the_ticket(client, staff, db):
    event_id = open_session(staff, db)
    token = form_token(client, event_id)
    register(client, event_id, token=token, phone="13800000001")
    code = registrations(db)[0].code

    # Someone who got hold of that page's form token (a shared computer's history, a cached
    # page) and knows the number: the contract's answer, never the first registrant's ticket.
    with TestClient(client.app) as stranger:
        response = post_form(stranger, event_id, token, name="冒名者", phone="13800000001")
    assert response.status_code == 409
    assert "该手机号已报名本场活动" in visible(response.text)
    assert "/tickets/" not in response.headers.get("location", "")
    assert "/tickets/" not in response.text and code not in response.text
    assert count(db) == 1


def test_the_same_browser_posting_twice_still_lands_on_its_ticket(client, staff, db):
    event_id = open_session(staff, db)
    token = form_token(client, event_id)
    first = register(client, event_id, token=token)
    again = register(client, event_id, token=token)
    assert count(db) == 1
    assert client.get(f"/tickets/{again}", headers=HTML).status_code == 200
    assert client.get(f"/tickets/{first}", headers=HTML).status_code == 200


def test_personal_and_capability_answers_are_private_and_never_stored(
        client, staff, console, db):
    event_id = open_session(staff, db)
    assert client.get(f"/events/{event_id}", headers=HTML).headers["cache-control"] == PRIVATE
    posted = post_form(client, event_id)
    assert posted.headers["cache-control"] == PRIVATE
    token = posted.headers["location"].split("/tickets/")[1].split("#")[0]
    assert client.get(f"/tickets/{token}", headers=HTML).headers["cache-control"] == PRIVATE
    assert client.get(f"/tickets/{token}/cancel",
                      headers=HTML).headers["cache-control"] == PRIVATE

    made = client.post(f"/api/events/{event_id}/registrations",
                       json={"name": "李华", "phone": "13800000002", "consent": True})
    assert made.status_code == 201 and made.headers["cache-control"] == PRIVATE
    again = client.post(f"/api/events/{event_id}/registrations",
                        json={"name": "李华", "phone": "13800000002", "consent": True})
    assert again.status_code == 409 and again.headers["cache-control"] == PRIVATE
    manage = made.json()["manage_token"]
    assert client.get(f"/api/registrations/{manage}").headers["cache-control"] == PRIVATE
    assert client.get("/api/registrations/not-a-real-token-at-all").headers[
        "cache-control"] == PRIVATE

    editor = console("editor", "education")
    for path in (f"/console/events/{event_id}/registrations",
                 f"/console/events/{event_id}/checkin", "/console/outbox"):
        page = editor.get(path)
        assert page.status_code == 200, path
        assert page.headers["cache-control"] == PRIVATE, path
    api_staff = staff("editor", "education")
    for path in (f"/api/events/{event_id}/registrations", f"/api/events/{event_id}/checkins",
                 "/api/session"):
        answer = api_staff.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["cache-control"] == PRIVATE, path

    # What is public stays cacheable.
    assert "public" in client.get("/feed.atom").headers["cache-control"]


def test_a_browser_is_given_one_id_even_when_the_form_comes_back(client, staff, db):
    event_id = open_session(staff, db)
    token = form_token(client, event_id)
    with TestClient(client.app) as fresh:
        answer = post_form(fresh, event_id, token, phone="12345")
    assert answer.status_code == 422
    given = [value for name, value in answer.headers.multi_items()
             if name == "set-cookie" and value.startswith("kaifang_browser=")]
    assert len(given) == 1 and "HttpOnly" in given[0]
