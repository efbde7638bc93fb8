"""The broadcast plan's view of a session's video (events.plan_media's provider).

- uploaded_at: the first recording of the session created in any state but `failed`.
- on_portal_at: when the archive (streaming.archive) first listed it. The archive lists a public
  session, not cancelled, with a published recording, once it was held (ended or archived) or,
  for a broadcast with a premiere, once that premiere has played to its end. So: the later of
  the session's publication, its first recording's publication, and the premiere's end
  (premiere_at + that recording's duration) or, without a premiere, the session's ends_at
  (a held session's end). It may lie in the future (a premiere to come): the plan compares it
  with `now`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from events import plan_media
from events.models import Event, EventStatus
from events.plan_media import MediaFacts
from events.sessions import PUBLIC_STATUSES
from streaming import phase
from streaming.archive import HELD
from streaming.models import Recording


def _on_portal(event: Event, first: Recording) -> datetime | None:
    if event.status == EventStatus.cancelled or event.status not in PUBLIC_STATUSES \
            or event.published_at is None or first.published_at is None:
        return None
    premiere = phase.premiere_of(event)
    if premiere is not None:
        shown = premiere + timedelta(seconds=first.duration_s)
    elif event.status in HELD:
        shown = event.ends_at
    else:
        return None
    return max(shown, first.published_at, event.published_at)


def media_facts(db: Session, event_ids: list[int]) -> dict[int, MediaFacts]:
    if not event_ids:
        return {}
    facts: dict[int, MediaFacts] = {}
    events = {e.id: e for e in db.exec(select(Event).where(col(Event.id).in_(event_ids)))}
    recordings = db.exec(select(Recording).where(col(Recording.event_id).in_(event_ids))
                         .order_by(col(Recording.created_at), col(Recording.id)))
    first_published: dict[int, Recording] = {}
    for recording in recordings:
        found = facts.setdefault(recording.event_id, MediaFacts())
        if recording.state != "failed" and found.uploaded_at is None:
            found.uploaded_at = recording.created_at
        if recording.published_at is not None and recording.media_key:
            earlier = first_published.get(recording.event_id)
            if earlier is None or recording.published_at < (earlier.published_at or
                                                            recording.published_at):
                first_published[recording.event_id] = recording
    for event_id, first in first_published.items():
        event = events.get(event_id)
        if event is not None:
            facts[event_id].on_portal_at = _on_portal(event, first)
    return facts


plan_media.register(media_facts)
