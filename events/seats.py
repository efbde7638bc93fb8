"""Seat counts and waitlist promotion. Callers hold the session's lock (events.locking).

The waitlist's order is the rows' ids: each is given under the session's lock, so it is the
order in which places were taken and told, whatever the wall clock did meanwhile.
"""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from events.models import Event, Registration, RegistrationStatus
from events.timeutil import utcnow

R = RegistrationStatus


def counts(db: Session, event_ids: list[int]) -> dict[int, tuple[int, int]]:
    """(confirmed, waitlisted) per session."""
    out = {event_id: (0, 0) for event_id in event_ids}
    if not event_ids:
        return out
    rows = db.exec(
        select(Registration.event_id, Registration.status, func.count())
        .where(col(Registration.event_id).in_(event_ids),
               col(Registration.status).in_([R.confirmed, R.waitlisted]))
        .group_by(col(Registration.event_id), col(Registration.status))
    )
    for event_id, status, number in rows:
        confirmed, waitlisted = out[event_id]
        if status == R.confirmed:
            confirmed = number
        else:
            waitlisted = number
        out[event_id] = (confirmed, waitlisted)
    return out


def active_phone_hashes(db: Session, event_id: int, phone_hashes: set[str]) -> set[str]:
    """Which of these phones already hold a seat or a waitlist place (under the lock)."""
    if not phone_hashes:
        return set()
    return set(db.exec(select(Registration.phone_hash).where(
        Registration.event_id == event_id,
        col(Registration.status).in_([R.confirmed, R.waitlisted]),
        col(Registration.phone_hash).in_(phone_hashes))))


def confirmed_count(db: Session, event_id: int) -> int:
    return counts(db, [event_id])[event_id][0]


def waitlist_position(db: Session, registration: Registration) -> int | None:
    if registration.status != R.waitlisted:
        return None
    ahead = db.exec(
        select(func.count()).select_from(Registration).where(
            Registration.event_id == registration.event_id,
            Registration.status == R.waitlisted,
            col(Registration.id) < registration.id,
        )
    ).one()
    return int(ahead) + 1


def promote_waitlist(db: Session, event: Event) -> list[Registration]:
    """Fills free seats from the head of the waitlist; returns who was promoted."""
    assert event.id is not None
    if event.capacity == 0:
        free = None
    else:
        free = event.capacity - confirmed_count(db, event.id)
        if free <= 0:
            return []
    query = (
        select(Registration)
        .where(Registration.event_id == event.id, Registration.status == R.waitlisted)
        .order_by(col(Registration.id))
    )
    if free is not None:
        query = query.limit(free)
    promoted = list(db.exec(query))
    now = utcnow()
    for registration in promoted:
        registration.status = R.confirmed
        registration.promoted_at = now
        db.add(registration)
    db.flush()
    return promoted


def staff_order(db: Session, event_id: int) -> list[tuple[Registration, int | None]]:
    """A session's registrations as staff read them, each with its place on the waitlist:
    confirmed first, then the waitlist in its order, then cancelled (within a group, by when
    they registered)."""
    found = list(db.exec(select(Registration).where(Registration.event_id == event_id)
                         .order_by(col(Registration.created_at), col(Registration.id))))
    queue = sorted((r for r in found if r.status == R.waitlisted), key=lambda r: r.id or 0)
    places = {r.id: number for number, r in enumerate(queue, start=1)}
    rank = {R.confirmed: 0, R.waitlisted: 1, R.cancelled: 2}
    ordered = sorted(found, key=lambda r: (rank[r.status], places.get(r.id, 0)))
    return [(r, places.get(r.id)) for r in ordered]
