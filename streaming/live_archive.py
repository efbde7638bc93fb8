"""An ended webcast becomes the session's recording, from the segments it already has.

The on-air part (streaming.live_playlists' cut: from the first segment on air to the off-air
moment) gets VOD playlists and a master beside the same segments (no re-encode); what came
before it (the private preview) and after, and the runs' playlists, are deleted; the poster and
the seek-preview sheets are made from the keyframes of the top rendition (one every 2 s: a few
seconds for an hour). The folder is then published as a recording's in one rename
(streaming.storage) and the Recording row names it in the same transaction: from then on
`jobs.published` and the player see `vod`, and the archive lists it like an upload. A recording
uploaded later replaces it as any re-upload does.

Claimed once: the process that moves the stream to `ended` (one UPDATE) makes the archive; a
webcast taken off air before it went on air, or cancelled, leaves nothing behind.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from events.locking import write_lock
from events.models import Event, EventStatus
from events.timeutil import utcnow
from streaming import live_playlists as playlists
from streaming import live_state
from streaming.ladder import Source, thumbnails_vtt
from streaming.live_ladder import Layout, pictures_args
from streaming.models import LiveStream, Recording
from streaming.storage import LocalStorage

log = logging.getLogger("kaifang.live")

FFMPEG = "ffmpeg"
PICTURES_TIMEOUT_S = 300.0
NOTHING_ON_AIR = "直播结束时没有已播出的内容，未生成回放。"


def due(db: Session, own: set[int]) -> list[int]:
    """Sessions whose webcast went off air and has no archive yet, which this process should
    finish: its own publishers', and those no live process sends to (live_state.alive)."""
    now = utcnow()
    # Off air: marked so by the status change, or a session ended where no listener heard it.
    rows = db.exec(select(LiveStream.event_id, LiveStream.state, LiveStream.updated_at)
                   .join(Event, col(Event.id) == LiveStream.event_id)
                   .where(LiveStream.state != "ended",
                          col(LiveStream.off_air_at).is_not(None)
                          | col(Event.status).in_(live_state.OFF_AIR))).all()
    return [event_id for event_id, state, alive_at in rows
            if event_id in own or state not in live_state.SENDING
            or now - alive_at > live_state.SILENT]


def finish(engine: Engine, storage: LocalStorage, event_id: int) -> int | None:
    """Makes the archive of a webcast off air (the run already ended); its recording's id, or
    None (nothing was on air, or another process has it)."""
    with Session(engine, expire_on_commit=False) as db:
        write_lock(db)
        now = utcnow()
        claimed = db.execute(update(LiveStream).where(
            col(LiveStream.event_id) == event_id, col(LiveStream.state) != "ended")
            .values(state="ended", updated_at=now,
                    off_air_at=func.coalesce(col(LiveStream.off_air_at), now))
            .returning(col(LiveStream.id))).first()
        db.commit()
        stream = live_state.stream_of(db, event_id)
        event = db.get(Event, event_id)
    if claimed is None or stream is None or event is None or not stream.media_key:
        return None
    folder = storage.live_dir(stream.media_key)
    composed = live_state.compose(folder, stream.on_air_at, stream.off_air_at)
    if event.status == EventStatus.cancelled or composed is None \
            or composed.cut.first is None:
        storage.remove_live(stream.media_key)
        _note(engine, event_id, "" if event.status == EventStatus.cancelled else NOTHING_ON_AIR)
        return None
    layout = composed.layout
    for name in layout.names:
        runs = playlists.select(composed.runs[name], composed.cut)
        kept = {segment.uri for run in runs for segment in run}
        for path in (folder / name).iterdir():
            if path.name not in kept:
                path.unlink()
        (folder / name / playlists.VOD).write_text(playlists.media_playlist(runs, vod=True),
                                                   encoding="utf-8")
    (folder / playlists.MASTER).write_text(playlists.master_playlist(layout, playlists.VOD),
                                           encoding="utf-8")
    for path in [folder / live_state.LAYOUT, *folder.glob("run_*.start")]:
        path.unlink()
    duration = playlists.duration_of(playlists.select(composed.reference, composed.cut))
    _pictures(folder, layout, duration)
    top = layout.renditions[0] if layout.renditions else None
    if top is not None:
        (folder / "thumbs.vtt").write_text(
            thumbnails_vtt(Source(duration, top.width, top.height)), encoding="utf-8")
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
    with Session(engine, expire_on_commit=False) as db:
        write_lock(db)
        recording = Recording(
            event_id=event_id, state="succeeded", duration_s=round(duration, 3),
            width=top.width if top else 0, height=top.height if top else 0,
            has_audio=layout.has_audio, size_bytes=size,
            renditions=",".join(r.name for r in layout.renditions) or "audio",
            created_at=stream.on_air_at or utcnow())
        db.add(recording)
        db.flush()
        assert recording.id is not None
        recording.media_key = storage.finish_live(stream.media_key, event_id, recording.id)
        recording.published_at = utcnow()
        db.add(recording)
        db.execute(update(LiveStream).where(col(LiveStream.event_id) == event_id)
                   .values(recording_id=recording.id, updated_at=utcnow()))
        db.commit()
        log.info("live %s: archived as recording %s (%.1f s)", event_id, recording.id, duration)
        return recording.id


def _pictures(folder: Path, layout: Layout, duration: float) -> None:
    """The poster and the seek-preview sheets; an archive without them still plays."""
    try:
        done = subprocess.run([FFMPEG, *pictures_args(str(folder), layout, duration)],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=PICTURES_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        log.warning("live: the archive's pictures took too long")
        return
    if done.returncode != 0:
        log.warning("live: the archive's pictures failed: %s",
                    done.stderr.decode("utf-8", "replace")[-300:].replace("\n", " | "))


def _note(engine: Engine, event_id: int, error: str) -> None:
    if error:
        with Session(engine) as db:
            write_lock(db)
            live_state.refused(db, event_id, error)
            db.commit()
