"""Recordings' files that nothing will play again are deleted, after a grace time.

A re-upload publishes a new key; the recording it replaces is not served from that moment
(streaming.media), but a viewer may be mid-way through one of its segments, so its folder and
its source stay for KAIFANG_REPLACED_MEDIA_GRACE_S (10 minutes) and then go. The same round
deletes the source of a recording whose transcode failed for good, and what no recording
names: a folder published by a process that died before the database named it, the source of
a recording that is gone (its session deleted). The worker runs it (server.worker).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from events.locking import write_lock
from events.timeutil import utcnow
from server.config import Settings
from streaming.media import KEY
from streaming.models import Recording, TranscodeJob
from streaming.storage import LocalStorage

log = logging.getLogger("kaifang.media")


def _replaced(db: Session, cutoff: datetime) -> list[Recording]:
    """Recordings with files whose session has published a newer one before `cutoff`."""
    newer = aliased(Recording)
    later = or_(col(newer.published_at) > col(Recording.published_at),
                and_(col(newer.published_at) == col(Recording.published_at),
                     col(newer.id) > col(Recording.id)))
    successor = exists().where(col(newer.event_id) == col(Recording.event_id),
                               col(newer.published_at).is_not(None),
                               col(newer.published_at) <= cutoff, later)
    return list(db.exec(select(Recording).where(col(Recording.media_key) != "",
                                                col(Recording.published_at).is_not(None),
                                                successor)))


def _failed_for_good(db: Session, cutoff: datetime) -> list[int]:
    return [recording_id for recording_id in db.exec(
        select(Recording.id).join(TranscodeJob, col(TranscodeJob.recording_id) == Recording.id)
        .where(Recording.state == "failed", TranscodeJob.state == "failed",
               col(TranscodeJob.finished_at) <= cutoff)) if recording_id is not None]


def sweep_media(db: Session, storage: LocalStorage, grace: timedelta,
                now: datetime | None = None) -> int:
    """One round; returns how many folders and sources it deleted. The database forgets the
    replaced keys first (committed, so the write lock is not held while files go); a folder
    left by a crash in between is deleted as one no recording names."""
    now = now or utcnow()
    cutoff = now - grace
    write_lock(db)
    gone: list[tuple[str, int]] = []
    for recording in _replaced(db, cutoff):
        assert recording.id is not None
        gone.append((recording.media_key, recording.id))
        recording.media_key = ""  # it names no files any more
        db.add(recording)
    db.commit()
    for key, recording_id in gone:
        storage.remove(key)
        storage.remove_source(recording_id)
    deleted = len(gone)
    for recording_id in _failed_for_good(db, cutoff):
        deleted += storage.remove_source(recording_id)
    named = set(db.exec(select(Recording.media_key).where(col(Recording.media_key) != "")))
    for key, changed_at in list(storage.published_keys()):
        if KEY.fullmatch(key) and key not in named and changed_at <= cutoff:
            storage.remove(key)
            deleted += 1
    sources = list(storage.source_ids())
    if sources:
        known = set(db.exec(select(Recording.id).where(
            col(Recording.id).in_([recording_id for recording_id, _ in sources]))))
        for recording_id, changed_at in sources:
            if recording_id not in known and changed_at <= cutoff:
                deleted += storage.remove_source(recording_id)
    if deleted:
        log.info("media sweep: %d folders and sources deleted", deleted)
    return deleted


def sweep_replaced_media(db: Session, settings: Settings) -> int:
    """The worker's round (server.worker)."""
    return sweep_media(db, LocalStorage(settings.media_dir),
                       timedelta(seconds=settings.replaced_media_grace_s))
