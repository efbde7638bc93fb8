"""A session's webcast in the database: the LiveStream row as publishers come and go and the
session goes on and off air, and what the rest of the service reads from it (the signal, the
position comments count from, what the player plays). Functions over a session that flush;
the caller commits (the hub in its own short transactions, a status change in its request's).

On air is the session's status: `live` puts the stream on air (`on_air_at`, the moment the
public's playlist and the archive start from), `ended` (or `cancelled`) takes it off
(`off_air_at`); streaming.live_hub notices and makes the archive.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from sqlmodel import Session, col, select

from events.locking import write_lock
from events.models import Event, EventStatus
from events.timeutil import utcnow
from streaming import live_playlists as playlists
from streaming.live_ladder import Layout
from streaming.models import LiveStream
from streaming.storage import LocalStorage

LAYOUT = "layout.json"
OFF_AIR = frozenset({EventStatus.ended, EventStatus.archived, EventStatus.cancelled})
# A publisher is connected in these states (another process's, maybe).
SENDING = frozenset({"preview", "on_air"})
# A sending stream whose hub has not said it is alive for this long: its process died.
SILENT = timedelta(seconds=30)


def stream_of(db: Session, event_id: int) -> LiveStream | None:
    return db.exec(select(LiveStream).where(LiveStream.event_id == event_id)).first()


def open_run(db: Session, storage: LocalStorage, event_id: int, source: str,
             now: datetime | None = None) -> tuple[str, int] | str:
    """A publisher starts a run: (the live folder's key, the run's number), or why not
    (`ended`, `busy`, `not_found`). The stream is on air at once if the session is live."""
    now = now or utcnow()
    write_lock(db)
    event = db.get(Event, event_id)
    if event is None:
        return "not_found"
    stream = stream_of(db, event_id)
    if event.status in OFF_AIR or (stream is not None and stream.state == "ended"):
        return "ended"
    if stream is not None and stream.state in SENDING and now - stream.updated_at <= SILENT:
        return "busy"  # another process's publisher sends (this process's hub checked its own)
    if stream is None:
        stream = LiveStream(event_id=event_id)
    if not stream.media_key:
        stream.media_key = storage.new_live(event_id)
    live = event.status == EventStatus.live
    if live and stream.on_air_at is None:
        stream.on_air_at = now
    stream.state = "on_air" if live else "preview"
    stream.runs += 1
    stream.source = source
    stream.started_at = stream.started_at or now
    stream.signal_at = now
    stream.last_error = ""
    stream.updated_at = now
    db.add(stream)
    db.flush()
    return stream.media_key, stream.runs


def run_ended(db: Session, event_id: int, error: str, now: datetime | None = None) -> None:
    """The publisher is gone (or cut off: `error`, for staff): the stream waits for it."""
    now = now or utcnow()
    write_lock(db)
    stream = stream_of(db, event_id)
    if stream is None:
        return
    if stream.state != "ended":
        stream.state = "waiting"
        stream.signal_at = now
    if error:
        stream.last_error = error[:200]
    stream.updated_at = now
    db.add(stream)
    db.flush()


def refused(db: Session, event_id: int, error: str) -> None:
    """Why a publisher was refused or cut off, for the console."""
    write_lock(db)
    stream = stream_of(db, event_id)
    if stream is not None:
        stream.last_error = error[:200]
        stream.updated_at = utcnow()
        db.add(stream)
        db.flush()


def picture_found(db: Session, event_id: int, width: int, height: int) -> None:
    write_lock(db)
    stream = stream_of(db, event_id)
    if stream is not None:
        stream.width, stream.height = width, height
        db.add(stream)
        db.flush()


def alive(db: Session, event_ids: set[int], now: datetime | None = None) -> None:
    """The hub's heartbeat for the streams its publishers send to (`updated_at`): one whose
    process died falls silent, and is then lost (signal_of) and archived by another."""
    if event_ids:
        write_lock(db)
        db.execute(update(LiveStream).where(col(LiveStream.event_id).in_(event_ids))
                   .values(updated_at=now or utcnow()))


def on_status_change(db: Session, event: Event, previous: EventStatus) -> None:
    """events.lifecycle's listener: `live` puts the webcast on air, `ended` (or a
    cancellation) takes it off."""
    assert event.id is not None
    stream = stream_of(db, event.id)
    if stream is None:
        return
    now = utcnow()
    if event.status == EventStatus.live and stream.on_air_at is None \
            and stream.state != "ended":
        stream.on_air_at = now
        if stream.state == "preview":
            stream.state = "on_air"
    elif event.status in OFF_AIR and stream.off_air_at is None:
        stream.off_air_at = now
    else:
        return
    stream.updated_at = now
    db.add(stream)
    db.flush()


def signal_of(stream: LiveStream | None, now: datetime, grace_s: int) -> str | None:
    """on: a publisher sends; waiting: it dropped, within the grace time; lost: after it;
    None: no webcast (never a publisher, or over)."""
    if stream is None or stream.runs == 0 or stream.state in ("idle", "ended"):
        return None
    if stream.state in SENDING:
        return "on" if now - stream.updated_at <= SILENT else "lost"
    since = stream.signal_at or now
    return "waiting" if now - since <= timedelta(seconds=grace_s) else "lost"


def live_position(db: Session, event: Event, now: datetime) -> float | None:
    """Seconds since the webcast went on air, while the session is live (comments' video
    time: the archive starts at the on-air moment); None without one."""
    if event.status != EventStatus.live or event.id is None:
        return None
    stream = stream_of(db, event.id)
    if stream is None or stream.on_air_at is None:
        return None
    return round(max(0.0, (now - stream.on_air_at).total_seconds()), 1)


# ---- the folder --------------------------------------------------------------------------

def write_layout(folder: Path, layout: Layout) -> None:
    (folder / LAYOUT).write_text(json.dumps(layout.to_json()), encoding="utf-8")


def read_layout(folder: Path) -> Layout | None:
    try:
        data = json.loads((folder / LAYOUT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Layout.from_json(data) if isinstance(data, dict) else None


@dataclass(frozen=True)
class Composed:
    """What a webcast's folder holds now: its renditions, the public cut, each runs."""

    layout: Layout
    cut: playlists.Cut
    runs: dict[str, playlists.Runs]

    @property
    def reference(self) -> playlists.Runs:
        return self.runs[self.layout.names[0]]


def compose(folder: Path, on_air_at: datetime | None,
            off_air_at: datetime | None) -> Composed | None:
    """The folder read (None: no picture or sound found yet)."""
    layout = read_layout(folder)
    if layout is None or not layout.names:
        return None
    runs = playlists.in_every_rendition({name: playlists.read_runs(folder, name)
                                         for name in layout.names})
    return Composed(layout, playlists.cut_of(runs[layout.names[0]], on_air_at, off_air_at), runs)


@dataclass(frozen=True)
class LivePlayback:
    """What streaming.playback adds while a session is live."""

    hls_url: str | None
    position_s: float | None
    signal: str | None


def playback_live(db: Session, storage: LocalStorage, event: Event, now: datetime,
                  grace_s: int) -> LivePlayback:
    """The live master once the webcast has a segment on air (and the live edge from the
    on-air moment); the signal whenever the session is live with a webcast."""
    assert event.id is not None
    if event.status != EventStatus.live:  # the public learns nothing of a preview
        return LivePlayback(None, None, None)
    stream = stream_of(db, event.id)
    signal = signal_of(stream, now, grace_s)
    if stream is None or stream.on_air_at is None or stream.off_air_at is not None \
            or stream.state == "ended" or not stream.media_key:
        return LivePlayback(None, None, signal)
    composed = compose(storage.live_dir(stream.media_key), stream.on_air_at, None)
    if composed is None or composed.cut.first is None:  # named once there is a segment to play
        return LivePlayback(None, None, signal)
    position = playlists.edge_s(playlists.select(composed.reference, composed.cut),
                                stream.on_air_at)
    return LivePlayback(storage.live_url(stream.media_key, playlists.MASTER),
                        round(position, 3), signal)
