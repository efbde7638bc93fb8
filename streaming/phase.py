"""What phase a session is in for its streaming half, and what follows from it: whether the live
room takes messages, whether questions are taken, what the player does, whether the public may
fetch the recording. The one place these rules are written (pure: no database, no clock of
its own; the caller passes `now` and what it knows of the recording).

The phase (phase_of), from the session's status and its times:

- `cancelled`: cancelled, whatever the time.
- `not_public`: a draft, or under review.
- `live`: marked live (直播中), however early or late.
- `before`: published, before `ends_at`, and its premiere (if any) has not begun.
- `premiere`: published, a broadcast with a `premiere_at` that has come, before `ends_at`: the
  premiere's scheduled window.
- `overdue`: published, `ends_at` passed, never marked live nor ended.
- `after`: ended or archived.

What follows:

- The room takes messages (takes_messages) while `live` or `premiere`, unless a host closed it
  (LiveRoom.closed).
- Questions and votes are taken (takes_questions) while `before`, `premiere` or `live`: from
  publication until the session ends (or however late while live), unless a host closed the
  room.
- The player (playback_state) follows the premiere's own clock, not the phase: a broadcast with
  a `premiere_at` (premiere_of) is `upcoming` before it, then `premiere` for the recording's
  duration from `premiere_at` (premiere_position), then `vod` — whatever its status but
  cancelled, and `unavailable` without a playable recording. Any other session is `live` while
  live, `vod` once ended or archived with a recording, `upcoming` before `starts_at`, else
  `unavailable`. A cancelled session's is always `unavailable`.
- The public may fetch a recording's media (public_sees) while the session is public, not
  cancelled, and its playback is `premiere` or `vod`.
- The room's countdown (counts_to, counting_down) runs to the premiere, or else to the start,
  while the session is published — or live, for a broadcast with a premiere (it may go 直播中
  before its premiere).

Note: the room and the questions see a premiere as its scheduled window (`premiere_at` until
`ends_at`, while published), the player as the recording's run (`premiere_at` plus its
duration, whatever the status). The two differ when the recording is longer or shorter than
the window, or the session was marked ended while its premiere still plays.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from events import sessions
from events.models import Event, EventKind, EventStatus

PLAYING = frozenset({"premiere", "vod"})
NOT_PUBLIC = frozenset({EventStatus.draft, EventStatus.pending_review})


class Phase(StrEnum):
    not_public = "not_public"
    cancelled = "cancelled"
    before = "before"
    premiere = "premiere"
    live = "live"
    overdue = "overdue"
    after = "after"


MESSAGES = frozenset({Phase.live, Phase.premiere})
QUESTIONS = frozenset({Phase.before, Phase.premiere, Phase.live})


def premiere_of(event: Event) -> datetime | None:
    """The premiere's time: a broadcast's `premiere_at` (other kinds have no premiere)."""
    return event.premiere_at if event.kind == EventKind.broadcast else None


def phase_of(event: Event, now: datetime) -> Phase:
    """The session's phase now (the module's docstring says what each means)."""
    status = event.status
    if status == EventStatus.cancelled:
        return Phase.cancelled
    if status in NOT_PUBLIC:
        return Phase.not_public
    if status == EventStatus.live:
        return Phase.live
    if status == EventStatus.published:
        if now >= event.ends_at:
            return Phase.overdue
        premiere = premiere_of(event)
        return Phase.premiere if premiere is not None and premiere <= now else Phase.before
    return Phase.after


def takes_messages(phase: Phase, closed: bool) -> bool:
    """The live room takes messages while live or while its premiere's window runs, unless a
    host closed it."""
    return not closed and phase in MESSAGES


def takes_questions(phase: Phase, closed: bool) -> bool:
    """Questions are taken from publication until the session ends, unless a host closed the
    room."""
    return not closed and phase in QUESTIONS


def premiere_position(event: Event, now: datetime, duration_s: float | None) -> float | None:
    """Seconds into the premiere now, while its recording (of `duration_s`) plays; else None."""
    premiere = premiere_of(event)
    if premiere is None or now < premiere or duration_s is None:
        return None
    position = (now - premiere).total_seconds()
    return position if position < duration_s else None


def playback_state(event: Event, now: datetime, duration_s: float | None) -> str:
    """What the player does now: `upcoming`, `premiere`, `live`, `vod` or `unavailable`.
    `duration_s` is the playable recording's (None: none plays)."""
    phase = phase_of(event, now)
    if phase is Phase.cancelled:
        return "unavailable"
    premiere = premiere_of(event)
    if premiere is not None:
        if now < premiere:
            return "upcoming"
        if duration_s is None:
            return "unavailable"
        return "vod" if premiere_position(event, now, duration_s) is None else "premiere"
    if phase is Phase.live:
        return "live"
    if duration_s is not None and phase is Phase.after:
        return "vod"
    if now < event.starts_at:
        return "upcoming"
    return "unavailable"


def public_sees(event: Event, state: str) -> bool:
    """Whether the public may fetch the recording whose playback is `state` now."""
    return sessions.is_public(event) and event.status != EventStatus.cancelled \
        and state in PLAYING


def counts_to(event: Event) -> datetime:
    """What the room's countdown counts to: the premiere, else the start."""
    return premiere_of(event) or event.starts_at


def counting_down(event: Event, now: datetime) -> bool:
    """Whether the room shows its countdown: before `counts_to`, while published, or while live
    for a broadcast with a premiere."""
    status = event.status
    return now < counts_to(event) and (
        status == EventStatus.published
        or premiere_of(event) is not None and status == EventStatus.live)
