"""Registration: seats, the waitlist, tickets, the manage link, check-in."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from events.models import OutboxMessage, Registration
from tests.conftest import assign_hosts, door_open
from tests.helpers import open_session, post_registration


def test_seats_then_waitlist_then_promotion_on_cancel(client, staff, db):
    event_id = open_session(staff, db, capacity=2)
    first = post_registration(client, event_id, "13800000001").json()
    second = post_registration(client, event_id, "13800000002").json()
    third = post_registration(client, event_id, "13800000003")
    assert third.status_code == 201
    third = third.json()
    assert [first["status"], second["status"], third["status"]] == \
        ["confirmed", "confirmed", "waitlisted"]
    assert third["waitlist_position"] == 1 and first["waitlist_position"] is None
    assert len(first["code"]) == 8 and not set(first["code"]) & set("01OIL")
    event = client.get(f"/api/events/{event_id}").json()
    assert (event["registered_count"], event["waitlist_count"], event["seats_left"]) == (2, 1, 0)

    cancelled = client.delete(f"/api/registrations/{first['manage_token']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    promoted = client.get(f"/api/registrations/{third['manage_token']}").json()
    assert promoted["status"] == "confirmed" and promoted["waitlist_position"] is None
    topics = [m.topic for m in db.exec(select(OutboxMessage).where(
        OutboxMessage.registration_id == third["id"]))]
    assert "promoted" in topics


def test_same_phone_twice_is_409_and_masked_ticket(client, staff, db):
    event_id = open_session(staff, db, capacity=2)
    ok = post_registration(client, event_id, "+86 138-0000-0009", name="欧阳娜娜")
    assert ok.status_code == 201
    again = post_registration(client, event_id, "13800000009")
    assert again.status_code == 409 and again.json()["error"] == "already_registered"
    ticket = client.get(f"/api/registrations/{ok.json()['manage_token']}").json()
    assert ticket["phone"] == "138****0009" and ticket["name"] == "欧**娜"


@pytest.mark.parametrize("body, field", [
    ({"name": "张三", "phone": "12345", "consent": True}, "phone"),
    ({"name": "张三", "phone": "13800000001", "consent": False}, "consent"),
    ({"name": "", "phone": "13800000001", "consent": True}, "name"),
    ({"name": "张" * 5000, "phone": "13800000001", "consent": True}, "name"),
    ({"phone": "13800000001", "consent": True}, "name"),
])
def test_bad_registrations_are_422_and_save_nothing(client, staff, db, body, field):
    event_id = open_session(staff, db, capacity=2)
    response = client.post(f"/api/events/{event_id}/registrations", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid"
    assert field in response.json()["message"]
    assert db.exec(select(Registration)).all() == []


def test_outside_the_window_is_registration_closed(client, staff, db):
    now = datetime.now(UTC)
    event_id = open_session(staff, db, capacity=2,
                            registration_opens_at=(now + timedelta(days=1)).isoformat())
    response = post_registration(client, event_id, "13800000001")
    assert response.status_code == 409 and response.json()["error"] == "registration_closed"


def test_forged_and_erased_tokens_reveal_nothing(client, staff, db):
    event_id = open_session(staff, db, capacity=2)
    token = post_registration(client, event_id, "13800000001").json()["manage_token"]
    forged = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    assert client.get(f"/api/registrations/{forged}").status_code == 404
    assert client.get("/api/registrations/not-a-token-at-all").status_code == 404
    assert client.post(f"/api/registrations/{token}/erase").status_code == 204
    gone = client.get(f"/api/registrations/{token}")
    assert gone.status_code == 404 and "138" not in gone.text
    row = db.exec(select(Registration)).one()
    assert (row.name, row.phone, row.status.value) == ("", "", "cancelled")


def test_check_in_once_then_409_with_time(client, staff, db):
    event_id = open_session(staff, db, capacity=1, **door_open())
    host = staff("host")
    assign_hosts(db, event_id)
    confirmed = post_registration(client, event_id, "13800000001").json()
    waitlisted = post_registration(client, event_id, "13800000002").json()
    first = host.post(f"/api/events/{event_id}/checkins", json={"code": confirmed["code"].lower()})
    assert first.status_code == 200, first.text
    assert first.json()["checked_in_count"] == 1 and first.json()["capacity"] == 1
    second = host.post(f"/api/events/{event_id}/checkins", json={"code": confirmed["code"]})
    assert second.status_code == 409 and second.json()["error"] == "already_checked_in"
    assert second.json()["checked_in_at"]
    refused = host.post(f"/api/events/{event_id}/checkins", json={"code": waitlisted["code"]})
    assert refused.status_code == 409 and refused.json()["error"] == "not_confirmed"
    unknown = host.post(f"/api/events/{event_id}/checkins", json={"code": "ZZZZZZZZ"})
    assert unknown.status_code == 404
    assert client.post(f"/api/events/{event_id}/checkins",
                       json={"code": confirmed["code"]}).status_code == 401


def test_many_threads_racing_for_the_last_seats_never_overbook(app, staff, db):
    event_id = open_session(staff, db, capacity=5)

    def attempt(i: int) -> int:
        with TestClient(app) as own:
            return post_registration(own, event_id, f"139{i:08d}").status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(attempt, range(60)))
    assert statuses.count(201) == 60
    rows = db.exec(select(Registration).where(Registration.event_id == event_id)).all()
    assert sum(r.status.value == "confirmed" for r in rows) == 5
    assert sum(r.status.value == "waitlisted" for r in rows) == 55
    assert len({r.code for r in rows}) == 60


def test_an_attendee_can_still_erase_their_data_and_stays_counted(client, staff, db):
    event_id = open_session(staff, db, capacity=2, **door_open())
    host = staff("host")
    assign_hosts(db, event_id)
    ticket = post_registration(client, event_id, "13800000007").json()
    assert host.post(f"/api/events/{event_id}/checkins",
                     json={"code": ticket["code"]}).status_code == 200
    assert client.post(f"/api/registrations/{ticket['manage_token']}/erase").status_code == 204
    row = db.exec(select(Registration)).one()
    assert (row.name, row.phone, row.status.value) == ("", "", "confirmed")
    assert host.get(f"/api/events/{event_id}/checkins").json()["checked_in_count"] == 1


def test_cancels_racing_registrations_promote_each_waiter_once(app, client, staff, db):
    event_id = open_session(staff, db, capacity=4)
    tickets = [post_registration(client, event_id, f"1370000{i:04d}").json() for i in range(10)]
    holders = [t for t in tickets if t["status"] == "confirmed"]
    assert len(holders) == 4

    def cancel(ticket: dict) -> int:
        with TestClient(app) as own:
            return own.delete(f"/api/registrations/{ticket['manage_token']}").status_code

    def newcomer(i: int) -> int:
        with TestClient(app) as own:
            return post_registration(own, event_id, f"1360000{i:04d}").status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        cancels = [pool.submit(cancel, t) for t in holders[:3] + holders[:3]]
        joins = [pool.submit(newcomer, i) for i in range(6)]
        assert {f.result() for f in cancels} == {200}
        assert {f.result() for f in joins} == {201}
    rows = db.exec(select(Registration).where(Registration.event_id == event_id)).all()
    confirmed = [r for r in rows if r.status.value == "confirmed"]
    assert len(confirmed) == 4
    promoted_messages = db.exec(select(OutboxMessage).where(
        OutboxMessage.topic == "promoted")).all()
    assert len(promoted_messages) == 3
    assert len({m.registration_id for m in promoted_messages}) == 3


def test_the_door_opens_two_hours_before_the_start_and_closes_at_the_end(client, staff, db):
    """Check-in and walk-ins worked 11 days before a session, and a walk-in took a seat."""
    event_id = open_session(staff, db, capacity=1, **door_open(minutes_to_start=11 * 24 * 60))
    host = staff("host")
    assign_hosts(db, event_id)
    ticket = post_registration(client, event_id, "13800000001").json()

    early = host.post(f"/api/events/{event_id}/checkins", json={"code": ticket["code"]})
    assert early.status_code == 409, early.text
    starts = datetime.fromisoformat(client.get(f"/api/events/{event_id}").json()["starts_at"])
    assert early.json()["error"] == "checkin_not_open"
    assert datetime.fromisoformat(early.json()["opens_at"]) == starts - timedelta(hours=2)
    walk_in = host.post(f"/api/events/{event_id}/walk-ins", json={"name": "赵六"})
    assert (walk_in.status_code, walk_in.json()["error"]) == (409, "checkin_not_open")
    event = client.get(f"/api/events/{event_id}").json()
    assert (event["registered_count"], event["seats_left"]) == (1, 0)

    # Two hours before the start the door opens; once the session ends it closes again.
    soon = open_session(staff, db, capacity=2, **door_open(minutes_to_start=115))
    assign_hosts(db, soon)
    assert host.post(f"/api/events/{soon}/walk-ins", json={"name": "赵六"}).status_code == 201
    later = open_session(staff, db, capacity=2, **door_open(minutes_to_start=125))
    assign_hosts(db, later)
    assert host.post(f"/api/events/{later}/walk-ins",
                     json={"name": "赵六"}).json()["error"] == "checkin_not_open"
    over = open_session(staff, db, capacity=2, registration_opens_at=None,
                        registration_closes_at=None,
                        starts_at=(datetime.now(UTC) - timedelta(hours=3)).isoformat(),
                        ends_at=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
    assign_hosts(db, over)
    closed = host.post(f"/api/events/{over}/walk-ins", json={"name": "赵六"})
    assert (closed.status_code, closed.json()["error"]) == (409, "checkin_closed")


def test_how_long_before_the_start_the_door_opens_is_a_setting(staff, db, settings):
    from server.app import create_app
    from tests.conftest import login

    event_id = open_session(staff, db, capacity=2, **door_open(minutes_to_start=5 * 60))
    staff("host")  # an account for the other app's client
    host_name = "host-x-1"
    assign_hosts(db, event_id)
    for opens_before_s, status in ((2 * 3600, 409), (6 * 3600, 201)):
        app = create_app(settings.model_copy(update={"checkin_opens_before_s": opens_before_s}))
        with TestClient(app) as host:
            login(host, host_name)
            made = host.post(f"/api/events/{event_id}/walk-ins", json={"name": f"赵{status}"})
            assert made.status_code == status, made.text


def test_raising_the_capacity_names_who_moved_up_in_waitlist_order(client, staff, db):
    """events.sessions.change_capacity: the domain says who was promoted (the console shows
    them); events.seats.staff_order: confirmed, then the waitlist by place, then cancelled."""
    from events import seats, sessions
    from events.models import StaffUser

    event_id = open_session(staff, db, capacity=1)
    phones = [f"1380000010{n}" for n in range(5)]
    made = [post_registration(client, event_id, phone).json() for phone in phones]
    client.delete(f"/api/registrations/{made[2]['manage_token']}")  # leaves the waitlist
    admin = db.exec(select(StaffUser).where(StaffUser.role == "admin")).first()
    promoted = sessions.change_capacity(db, admin, event_id, 3)
    db.commit()
    assert [row.id for row in promoted] == [made[1]["id"], made[3]["id"]]
    order = [(row.id, row.status.value, place) for row, place in seats.staff_order(db, event_id)]
    assert order == [(made[0]["id"], "confirmed", None), (made[1]["id"], "confirmed", None),
                     (made[3]["id"], "confirmed", None), (made[4]["id"], "waitlisted", 1),
                     (made[2]["id"], "cancelled", None)]
