"""The questions and their answers on a session's page once it is over (issue 18; the plan's
二(一): answers published after): portal/_answers.html lists the public questions with the
written answer, a link that opens the recording at the moment each was answered (the room's
player starts there: static/js/player.js reads ?t=), a suggestion's outcome with its reason,
and the session's stats line. The counts are streaming.answers'."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from events import rooms
from events.models import Event
from events.timeutil import utcnow
from frontend.i18n import N_, gettext
from streaming import answers, jobs, phase, questions

OUTCOMES = {"adopted": N_("Adopted"), "partly_adopted": N_("Partly adopted"),
            "not_adopted": N_("Not adopted")}


def outcome_labels() -> dict[str, str]:
    """A suggestion's outcomes as the pages say them (采纳 / 部分采纳 / 不予采纳)."""
    return {code: gettext(label) for code, label in OUTCOMES.items()}


def video_clock(seconds: float) -> str:
    """A moment of the video as the player writes it: m:ss, h:mm:ss past an hour."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def moment_link(event_id: int, seconds: float) -> str:
    """The room's address that starts its recording at `seconds` (static/js/player.js)."""
    at = int(seconds) if float(seconds).is_integer() else round(seconds, 1)
    return f"{rooms.room_path(event_id)}?t={at}#player"


def answers_context(db: Session, event: Event) -> dict[str, Any] | None:
    """What portal/_answers.html needs, or None before the session's end (and for one with no
    public question): the questions by votes, each with its answer, and the stats."""
    now = utcnow()
    if event.id is None or now < event.ends_at:
        return None
    found = questions.listed(db, event.id, "votes", now=now)
    if not found:
        return None
    recording = jobs.published(db, event.id)
    # The link only where the room plays the recording on demand (not before its close-out).
    playable = phase.playback_state(
        event, now, recording.duration_s if recording is not None else None) == "vod"
    for item in found:
        moment = item["answered_at_video_time"]
        item["clock"] = None if moment is None else video_clock(moment)
        item["moment_url"] = moment_link(event.id, moment) \
            if moment is not None and playable else None
    stats = answers.stats_for(db, [event.id], now).get(event.id)
    return {"found": found, "stats": stats, "outcomes": outcome_labels()}
