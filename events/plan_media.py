"""What the broadcast plan (events.plan) learns of a session's video: when its recording was
uploaded and when it went up on the portal. The recordings are streaming's
(streaming.plan_media registers the provider); events/ never imports streaming.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session


@dataclass
class MediaFacts:
    # The first upload of its recording (any state but failed), or None.
    uploaded_at: datetime | None = None
    # When citizens could first watch it on the portal's archive (the session held and a
    # recording published: the later of the two), or None.
    on_portal_at: datetime | None = None


# (db, event ids) -> {event id: facts}; a session with no recording may be absent.
MediaProvider = Callable[[Session, list[int]], dict[int, MediaFacts]]
_providers: list[MediaProvider] = []


def register(provider: MediaProvider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def media_of(db: Session, event_ids: list[int]) -> dict[int, MediaFacts]:
    found: dict[int, MediaFacts] = {}
    for provider in _providers:
        found.update(provider(db, event_ids))
    return {event_id: found.get(event_id, MediaFacts()) for event_id in event_ids}
