"""One number is one number however it is typed (issue 8, item 10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from events.registration import normalise_phone
from tests.conftest import event_body, publish


@pytest.mark.parametrize("typed", [
    "13９１２３４５６７９", "13٩１２３４５６７９", "１３９１２３４５６７９",
    "＋８６ １３９－１２３４－５６７９", "13۹12345679",
])
def test_any_decimal_digits_become_ascii(typed):
    assert normalise_phone(typed) == "13912345679"


def test_full_width_and_arabic_indic_digits_are_the_same_number(client, staff, db):
    now = datetime.now(UTC)
    admin = staff("admin")
    body = event_body(db, starts_at=(now + timedelta(days=10)).isoformat(),
                      ends_at=(now + timedelta(days=10, hours=2)).isoformat(),
                      registration_opens_at=(now - timedelta(days=1)).isoformat(),
                      registration_closes_at=(now + timedelta(days=9)).isoformat())
    event_id = admin.post("/api/events", json=body).json()["id"]
    publish(admin, event_id)

    def register(phone: str):
        return client.post(f"/api/events/{event_id}/registrations",
                           json={"name": "王小明", "phone": phone, "consent": True})

    first = register("13912345679")
    assert first.status_code == 201
    for typed in ("13９１２３４５６７９", "13٩１２３４５６７９"):
        again = register(typed)
        assert again.status_code == 409, again.text
        assert again.json()["error"] == "already_registered"
    assert client.get(f"/api/events/{event_id}").json()["registered_count"] == 1


def test_a_walk_in_number_in_full_width_digits_is_stored_in_ascii(client, staff, db):
    now = datetime.now(UTC)
    admin = staff("admin")
    body = event_body(db, starts_at=(now - timedelta(minutes=30)).isoformat(),
                      ends_at=(now + timedelta(hours=2)).isoformat(),
                      registration_opens_at=(now - timedelta(days=2)).isoformat(),
                      registration_closes_at=(now - timedelta(hours=1)).isoformat())
    created = admin.post("/api/events", json=body)
    assert created.status_code == 201, created.text
    event_id = created.json()["id"]
    publish(admin, event_id)
    made = admin.post(f"/api/events/{event_id}/walk-ins",
                      json={"name": "赵六", "phone": "１３９１２３４５６７９"})
    assert made.status_code == 201, made.text
    assert made.json()["registration"]["phone"] == "139****5679"
