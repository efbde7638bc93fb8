"""The session's phase and what follows from it (streaming.phase): one table of cases, and the
same answers as the rules each caller wrote for itself before (kept here as the reference)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from events.models import Event, EventKind, EventStatus
from streaming import phase
from streaming.phase import Phase

S = EventStatus
START = datetime(2027, 5, 1, 2, 0, tzinfo=UTC)
END = START + timedelta(hours=1)
PREMIERE = START + timedelta(minutes=10)


def _event(status: S, kind: EventKind = EventKind.broadcast,
           premiere_at: datetime | None = PREMIERE) -> Event:
    return Event(id=7, kind=kind, status=status, unit_id=1, title="政民互动直播间",
                 starts_at=START, ends_at=END, premiere_at=premiere_at,
                 published_at=None if status in (S.draft, S.pending_review) else START
                 - timedelta(days=3))


def _at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


# status, kind, premiere_at, minutes from the start, closed, recording's minutes:
#   phase, room takes messages, questions taken, playback, the public may fetch the media
CASES = [
    (S.draft, EventKind.broadcast, PREMIERE, 20, False, 30,
     Phase.not_public, False, False, "premiere", False),
    (S.pending_review, EventKind.open_meeting, None, -5, False, None,
     Phase.not_public, False, False, "upcoming", False),
    (S.cancelled, EventKind.broadcast, PREMIERE, 20, False, 30,
     Phase.cancelled, False, False, "unavailable", False),
    (S.published, EventKind.open_meeting, None, -5, False, None,
     Phase.before, False, True, "upcoming", False),
    (S.published, EventKind.open_meeting, None, 5, False, 30,
     Phase.before, False, True, "unavailable", False),
    (S.published, EventKind.broadcast, PREMIERE, 5, False, 30,
     Phase.before, False, True, "upcoming", False),
    (S.published, EventKind.broadcast, PREMIERE, 5, True, 30,
     Phase.before, False, False, "upcoming", False),
    (S.published, EventKind.broadcast, PREMIERE, 20, False, 30,
     Phase.premiere, True, True, "premiere", True),
    (S.published, EventKind.broadcast, PREMIERE, 20, True, 30,
     Phase.premiere, False, False, "premiere", True),
    # The room's window is the schedule's, the player's the recording's.
    (S.published, EventKind.broadcast, PREMIERE, 45, False, 30,
     Phase.premiere, True, True, "vod", True),
    (S.published, EventKind.broadcast, PREMIERE, 20, False, None,
     Phase.premiere, True, True, "unavailable", False),
    (S.published, EventKind.broadcast, PREMIERE, 65, False, 90,
     Phase.overdue, False, False, "premiere", True),
    (S.published, EventKind.open_meeting, None, 65, False, 30,
     Phase.overdue, False, False, "unavailable", False),
    # Only a broadcast premieres.
    (S.published, EventKind.open_meeting, PREMIERE, 20, False, 30,
     Phase.before, False, True, "unavailable", False),
    (S.live, EventKind.open_meeting, None, -30, False, None,
     Phase.live, True, True, "live", False),
    (S.live, EventKind.open_meeting, None, 90, False, 30,
     Phase.live, True, True, "live", False),
    (S.live, EventKind.broadcast, PREMIERE, 5, False, 30,
     Phase.live, True, True, "upcoming", False),
    (S.live, EventKind.broadcast, PREMIERE, 20, True, 30,
     Phase.live, False, False, "premiere", True),
    (S.ended, EventKind.open_meeting, None, 90, False, 30,
     Phase.after, False, False, "vod", True),
    (S.ended, EventKind.open_meeting, None, 90, False, None,
     Phase.after, False, False, "unavailable", False),
    (S.archived, EventKind.broadcast, PREMIERE, 20, False, 30,
     Phase.after, False, False, "premiere", True),
    (S.archived, EventKind.broadcast, None, 90, False, 30,
     Phase.after, False, False, "vod", True),
]


@pytest.mark.parametrize(("status", "kind", "premiere_at", "minutes", "closed", "recording",
                          "expected", "messages", "questions", "playback", "fetch"), CASES)
def test_the_phase_and_what_follows(status, kind, premiere_at, minutes, closed, recording,
                                    expected, messages, questions, playback, fetch) -> None:
    event, now = _event(status, kind, premiere_at), _at(minutes)
    duration = None if recording is None else recording * 60.0
    found = phase.phase_of(event, now)
    assert found is expected
    assert phase.takes_messages(found, closed) is messages
    assert phase.takes_questions(found, closed) is questions
    state = phase.playback_state(event, now, duration)
    assert state == playback
    assert phase.public_sees(event, state) is fetch


def test_the_premiere_position_runs_for_the_recording_only() -> None:
    event = _event(S.published)
    assert phase.premiere_position(event, PREMIERE - timedelta(seconds=1), 600.0) is None
    assert phase.premiere_position(event, PREMIERE, 600.0) == 0.0
    assert phase.premiere_position(event, PREMIERE + timedelta(seconds=12.5), 600.0) == 12.5
    assert phase.premiere_position(event, PREMIERE + timedelta(seconds=600), 600.0) is None
    assert phase.premiere_position(event, PREMIERE + timedelta(seconds=5), None) is None
    meeting = _event(S.published, EventKind.open_meeting)
    assert phase.premiere_position(meeting, PREMIERE + timedelta(seconds=5), 600.0) is None


def test_the_countdown_runs_to_the_premiere_or_the_start() -> None:
    assert phase.counts_to(_event(S.published)) == PREMIERE
    assert phase.counts_to(_event(S.published, EventKind.open_meeting)) == START
    assert phase.counting_down(_event(S.published), _at(5))
    assert phase.counting_down(_event(S.live), _at(5))  # 直播中 before its premiere
    assert not phase.counting_down(_event(S.live, premiere_at=None), _at(-5))
    assert not phase.counting_down(_event(S.published), _at(10))
    assert not phase.counting_down(_event(S.draft), _at(5))


# ---- the rules as each caller wrote them before streaming.phase ----------------------------

def _room_open_before(event: Event, closed: bool, now: datetime) -> bool:
    if closed:
        return False
    if event.status == S.live:
        return True
    premiere = event.premiere_at if event.kind == EventKind.broadcast else None
    return premiere is not None and event.status in (S.published, S.live) \
        and premiere <= now < event.ends_at


def _questions_open_before(event: Event, closed: bool, now: datetime) -> bool:
    if closed:
        return False
    if event.status == S.live:
        return True
    return event.status == S.published and now < event.ends_at


def _playback_before(event: Event, now: datetime, duration: float | None) -> str:
    if event.status == S.cancelled:
        return "unavailable"
    premiere = event.premiere_at if event.kind == EventKind.broadcast else None
    if premiere is not None:
        if now < premiere:
            return "upcoming"
        if duration is None:
            return "unavailable"
        return "premiere" if (now - premiere).total_seconds() < duration else "vod"
    if event.status == S.live:
        return "live"
    if duration is not None and event.status in (S.ended, S.archived):
        return "vod"
    if now < event.starts_at:
        return "upcoming"
    return "unavailable"


def _countdown_before(event: Event, now: datetime) -> bool:
    premiere = event.premiere_at if event.kind == EventKind.broadcast else None
    counting_to = premiere or event.starts_at
    return now < counting_to and (event.status == S.published
                                  or premiere is not None and event.status == S.live)


def test_every_combination_answers_as_before() -> None:
    premieres = (None, START - timedelta(minutes=30), PREMIERE, END, END + timedelta(hours=1))
    moments = [_at(m) for m in (-90, -30, -1, 0, 9, 10, 25, 39, 40, 59, 60, 61, 95, 200)]
    for status, kind, premiere_at, now, closed, duration in itertools.product(
            S, EventKind, premieres, moments, (False, True), (None, 0.0, 1800.0, 7200.0)):
        event = _event(status, kind, premiere_at)
        found = phase.phase_of(event, now)
        case = (status, kind, premiere_at, now, closed, duration)
        assert phase.takes_messages(found, closed) is _room_open_before(event, closed, now), case
        assert phase.takes_questions(found, closed) is \
            _questions_open_before(event, closed, now), case
        assert phase.playback_state(event, now, duration) == \
            _playback_before(event, now, duration), case
        assert phase.counting_down(event, now) is _countdown_before(event, now), case
