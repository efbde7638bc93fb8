"""The registration desk: a burst on one event loop is written in batches, and a batch keeps
every rule a single registration keeps (capacity, arrival order, one per phone, the window)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, select

import server.db
from events import registration, registration_desk
from events.errors import Conflict, DomainError, NotFound
from events.models import OutboxMessage, Registration
from events.registration import (
    Registered,
    RegistrationIn,
    RegistrationRequest,
    register_many,
)
from server.security import Signer
from tests.helpers import open_session


def _person(i: int) -> dict[str, object]:
    return {"name": f"市民{i}", "phone": f"139{i:08d}", "consent": True}


def _run(scenario: Any) -> Any:
    """The scenario on an event loop of its own, in a thread: a worker that ran a browser test
    first has Playwright's loop running in this one (as in tests/streaming/test_broker.py)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, scenario).result()


async def _burst(app, event_id: int, count: int) -> list[httpx.Response]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await asyncio.gather(*[
            client.post(f"/api/events/{event_id}/registrations", json=_person(i))
            for i in range(count)])


def test_a_burst_is_written_in_batches_and_seats_go_in_order(app, staff, db, monkeypatch):
    event_id = open_session(staff, db, capacity=10)
    batches: list[int] = []
    original = registration.register_many

    def counted(session, signer, requests, **options):
        batches.append(len(requests))
        return original(session, signer, requests, **options)

    monkeypatch.setattr(registration, "register_many", counted)
    answers = _run(_burst(app, event_id, 120))

    assert [a.status_code for a in answers] == [201] * 120
    assert max(batches) > 1 and sum(batches) == 120  # grouped, and each written once
    bodies = [a.json() for a in answers]
    assert sum(b["status"] == "confirmed" for b in bodies) == 10
    positions = sorted(b["waitlist_position"] for b in bodies if b["status"] == "waitlisted")
    assert positions == list(range(1, 111))
    rows = db.exec(select(Registration).where(Registration.event_id == event_id)).all()
    assert len(rows) == 120 and len({r.code for r in rows}) == 120
    assert sum(r.status.value == "confirmed" for r in rows) == 10
    told = db.exec(select(OutboxMessage.topic).where(OutboxMessage.event_id == event_id)).all()
    assert told.count("registration_confirmed") == 10
    assert told.count("registration_waitlisted") == 110


def test_the_answer_matches_the_stored_ticket(app, client, staff, db):
    event_id = open_session(staff, db, capacity=3)
    bodies = [a.json() for a in _run(_burst(app, event_id, 8))]
    for body in bodies:
        stored = client.get(f"/api/registrations/{body['manage_token']}").json()
        assert (stored["status"], stored["waitlist_position"], stored["code"]) == \
            (body["status"], body["waitlist_position"], body["code"])


def test_one_batch_refuses_only_what_breaks_a_rule(staff, db, settings):
    open_id = open_session(staff, db, capacity=1)
    past = datetime.now(UTC) - timedelta(days=1)
    closed_id = open_session(staff, db, capacity=5,
                             registration_opens_at=(past - timedelta(days=1)).isoformat(),
                             registration_closes_at=past.isoformat())
    signer = Signer("test-secret-key-of-at-least-32-bytes")
    one, two, three = (RegistrationIn(name="甲", phone="13900000001", consent=True),
                       RegistrationIn(name="乙", phone="13900000002", consent=True),
                       RegistrationIn(name="丙", phone="13900000003", consent=True))
    outcomes = register_many(db, signer, [
        RegistrationRequest(open_id, one), RegistrationRequest(open_id, one),
        RegistrationRequest(closed_id, two), RegistrationRequest(open_id, three),
        RegistrationRequest(999_999, two)])
    db.commit()

    first, twice, closed, fourth, missing = outcomes
    assert isinstance(first, Registered) and first.status.value == "confirmed"
    assert isinstance(twice, Conflict) and twice.code == "already_registered"
    assert isinstance(closed, Conflict) and closed.code == "registration_closed"
    assert isinstance(fourth, Registered) and fourth.waitlist_position == 1
    assert isinstance(missing, NotFound) and missing.code == "event_not_found"
    rows = db.exec(select(Registration)).all()
    assert sorted(r.phone for r in rows) == ["13900000001", "13900000003"]


def test_a_spoilt_batch_is_written_one_by_one(app, staff, db, monkeypatch):
    event_id = open_session(staff, db, capacity=2)
    original = registration.register_many

    def fragile(session, signer, requests, **options):
        if len(requests) > 1:
            raise IntegrityError("INSERT", {}, Exception("a batch that cannot be written"))
        return original(session, signer, requests, **options)

    monkeypatch.setattr(registration, "register_many", fragile)
    answers = _run(_burst(app, event_id, 6))
    assert [a.status_code for a in answers] == [201] * 6
    assert sorted(a.json()["status"] for a in answers).count("confirmed") == 2


def test_a_failure_reaches_only_its_own_request(app, staff, db, monkeypatch):
    event_id = open_session(staff, db, capacity=2)
    original = registration.register_many

    def refuse_one(session, signer, requests, **options):
        if any(request.data.phone == "13900000003" for request in requests):
            raise DomainError("try_again", "please submit again")
        return original(session, signer, requests, **options)

    monkeypatch.setattr(registration, "register_many", refuse_one)
    answers = _run(_burst(app, event_id, 6))
    codes = [a.status_code for a in answers]
    assert codes.count(201) == 5 and codes[3] == 400
    assert answers[3].json()["error"] == "try_again"


def test_the_waitlist_place_told_stays_true_when_a_waiting_writer_commits_next(
        staff, db, settings):
    """Two writers (two processes' desks): the one that waited for the lock commits second and
    must queue behind, whatever the moment it started."""
    import threading
    import time

    from sqlmodel import Session

    from events import seats
    from events.locking import lock_event
    from server.db import get_engine

    event_id = open_session(staff, db, capacity=1)
    signer = Signer("test-secret-key-of-at-least-32-bytes")
    engine = get_engine(settings.sqlalchemy_url)
    with Session(engine) as first:
        register_many(first, signer, [RegistrationRequest(
            event_id, RegistrationIn(name="甲", phone="13900000001", consent=True))])
        first.commit()

    told: dict[str, int | None] = {}

    def later_writer() -> None:
        with Session(engine, expire_on_commit=False) as session:
            outcome, = register_many(session, signer, [RegistrationRequest(
                event_id, RegistrationIn(name="丙", phone="13900000003", consent=True))])
            session.commit()
            assert isinstance(outcome, Registered)
            told["waited"] = outcome.waitlist_position

    with Session(engine, expire_on_commit=False) as holder:
        lock_event(holder, event_id)  # another desk holds the session's lock
        waiting = threading.Thread(target=later_writer)
        waiting.start()
        time.sleep(0.3)  # it is now waiting for the lock
        outcome, = register_many(holder, signer, [RegistrationRequest(
            event_id, RegistrationIn(name="乙", phone="13900000002", consent=True))])
        holder.commit()
        assert isinstance(outcome, Registered)
        told["holder"] = outcome.waitlist_position
    waiting.join(10)

    assert told == {"holder": 1, "waited": 2}
    db.expire_all()
    stored = {row.name: seats.waitlist_position(db, row) for row in db.exec(
        select(Registration).where(Registration.event_id == event_id))}
    assert stored == {"甲": None, "乙": 1, "丙": 2}


def test_a_transient_error_answers_the_batch_503_busy_without_retrying_one_by_one(
        app, staff, db, monkeypatch):
    event_id = open_session(staff, db, capacity=2)
    tried: list[int] = []

    def connection_lost(session, signer, requests, **options):
        tried.append(len(requests))
        raise OperationalError("SELECT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(registration, "register_many", connection_lost)
    answers = _run(_burst(app, event_id, 6))
    assert [a.status_code for a in answers] == [503] * 6
    assert {a.json()["error"] for a in answers} == {"busy"}
    assert all(int(a.headers["Retry-After"]) >= 1 for a in answers)
    assert sum(tried) == 6  # each request tried once: the lane is not held up by retries


def test_a_lost_commit_acknowledgement_still_answers_201_with_the_ticket(
        app, client, staff, db, monkeypatch):
    """The commit went through but its answer was lost: the desk looks, and answers what was
    made, not 409 already_registered to the citizen who registered."""
    event_id = open_session(staff, db, capacity=2)

    class AckLost(Session):
        def commit(self) -> None:
            super().commit()
            raise OperationalError("COMMIT", {}, Exception("connection lost"))

    monkeypatch.setattr(registration_desk, "Session", AckLost)
    answers = _run(_burst(app, event_id, 5))
    assert [a.status_code for a in answers] == [201] * 5, [a.text for a in answers]
    for body in (a.json() for a in answers):
        stored = client.get(f"/api/registrations/{body['manage_token']}").json()
        assert (stored["status"], stored["code"]) == (body["status"], body["code"])


@pytest.fixture
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(server.db, "lock_timeout_s", 0.3)
    return 0.3


def test_a_request_past_its_deadline_is_answered_503_and_never_written(
        app, staff, db, monkeypatch, short_deadline):
    event_id = open_session(staff, db, capacity=5)
    original = registration.register_many
    calls: list[int] = []

    def slow_first(session, signer, requests, **options):
        calls.append(len(requests))
        if len(calls) == 1:
            import time
            time.sleep(3 * short_deadline)  # e.g. a slow disk: the others wait meanwhile
        return original(session, signer, requests, **options)

    monkeypatch.setattr(registration, "register_many", slow_first)

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            first = asyncio.create_task(client.post(
                f"/api/events/{event_id}/registrations", json=_person(0)))
            await asyncio.sleep(0.05)
            late = await asyncio.gather(*[client.post(
                f"/api/events/{event_id}/registrations", json=_person(i)) for i in (1, 2)])
            return [await first, *late]

    first, *late = _run(scenario())
    assert first.status_code == 201
    assert [a.status_code for a in late] == [503, 503]
    assert all(a.json()["error"] == "busy" and "Retry-After" in a.headers for a in late)
    db.expire_all()
    assert [r.phone for r in db.exec(select(Registration).where(
        Registration.event_id == event_id))] == [_person(0)["phone"]]
