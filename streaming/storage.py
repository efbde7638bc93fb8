"""Where recordings live: the uploaded sources, the transcoder's work folders and the published
HLS, and the folders live webcasts write into (`live/`, published as a recording when they
end). Local disk under the data dir (`media/`) by default; the interface is what an
S3-compatible store would implement (publish uploads a finished folder, `url` names the CDN).

A recording is published under a key of its own that nothing else ever writes to: the folder
is complete before it is moved into `hls/` (one rename on one file system) and before the
database names it. A failed or half-written re-upload therefore never touches the recording
that plays; the switch is the database row naming the new key.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

# What a write to a full disk (or past a quota) fails with.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class Storage(Protocol):
    def new_upload(self) -> Path:
        """A fresh local path to stream an upload into."""

    def keep_source(self, upload: Path, recording_id: int) -> Path:
        """Moves an accepted upload to where the jobs read it."""

    def source(self, recording_id: int) -> Path: ...

    def work_dir(self, job_id: int, attempt: str) -> Path:
        """A new empty folder for one attempt at a job: no other attempt ever writes or
        deletes it (streaming.transcode sweeps those of attempts that died)."""

    def publish(self, work_dir: Path, event_id: int, recording_id: int) -> str:
        """Makes a finished folder public under a new key, and returns the key."""

    def url(self, key: str, name: str) -> str:
        """Where a player fetches a published file: `master.m3u8`, `720p/seg_00001.ts`."""

    def remove(self, key: str) -> None:
        """Deletes a published folder (streaming.retention, once nothing plays it)."""

    def remove_source(self, recording_id: int) -> bool:
        """Deletes a recording's source; whether there was one."""

    def new_live(self, event_id: int) -> str:
        """A new empty folder for a session's webcast (streaming.live_hub), and its key."""

    def live_dir(self, key: str) -> Path:
        """Where a webcast's encoder writes, and where its playlists are read from."""

    def finish_live(self, key: str, event_id: int, recording_id: int) -> str:
        """Publishes a finished webcast's folder (its archive: VOD playlists beside the same
        segments) as a recording's, in one rename; returns the recording's key."""


class LocalStorage:
    """Files under the data dir's `media/`, served by the app at MEDIA_PREFIX."""

    MEDIA_PREFIX = "/media/hls"
    LIVE_PREFIX = "/media/live"

    def __init__(self, root: Path) -> None:
        self.root = root
        for name in ("uploads", "sources", "work", "hls", "live"):
            (root / name).mkdir(parents=True, exist_ok=True)

    @property
    def hls_root(self) -> Path:
        return self.root / "hls"

    @property
    def live_root(self) -> Path:
        return self.root / "live"

    def new_upload(self) -> Path:
        return self.root / "uploads" / f"{secrets.token_hex(16)}.part"

    def keep_source(self, upload: Path, recording_id: int) -> Path:
        target = self.source(recording_id)
        os.replace(upload, target)
        return target

    def source(self, recording_id: int) -> Path:
        return self.root / "sources" / f"{recording_id}.src"

    def work_dir(self, job_id: int, attempt: str) -> Path:
        folder = self.root / "work" / f"{job_id}-{attempt}"
        folder.mkdir(parents=True)
        return folder

    def publish(self, work_dir: Path, event_id: int, recording_id: int) -> str:
        key = f"{event_id}-{recording_id}-{secrets.token_hex(12)}"
        os.replace(work_dir, self.hls_root / key)
        return key

    def url(self, key: str, name: str) -> str:
        return f"{self.MEDIA_PREFIX}/{key}/{name}"

    def new_live(self, event_id: int) -> str:
        key = f"{event_id}-live-{secrets.token_hex(12)}"
        (self.live_root / key).mkdir()
        return key

    def live_dir(self, key: str) -> Path:
        if not key or "/" in key or key in (".", ".."):
            raise ValueError("not a live key")
        return self.live_root / key

    def live_url(self, key: str, name: str) -> str:
        return f"{self.LIVE_PREFIX}/{key}/{name}"

    def finish_live(self, key: str, event_id: int, recording_id: int) -> str:
        published = f"{event_id}-{recording_id}-{secrets.token_hex(12)}"
        os.replace(self.live_dir(key), self.hls_root / published)
        return published

    def remove_live(self, key: str) -> None:
        shutil.rmtree(self.live_dir(key), ignore_errors=True)

    def remove(self, key: str) -> None:
        if key and "/" not in key and key not in (".", ".."):
            shutil.rmtree(self.hls_root / key, ignore_errors=True)

    def remove_source(self, recording_id: int) -> bool:
        try:
            self.source(recording_id).unlink()
        except FileNotFoundError:
            return False
        return True

    def discard_upload(self, upload: Path) -> None:
        upload.unlink(missing_ok=True)

    def published_keys(self) -> Iterator[tuple[str, datetime]]:
        """Every folder under `hls/`, with when it last changed (written, or moved there)."""
        for entry in self.hls_root.iterdir():
            if entry.is_dir():
                yield entry.name, _changed_at(entry)

    def source_ids(self) -> Iterator[tuple[int, datetime]]:
        """Every source file's recording id, with when it last changed (written, or kept)."""
        for entry in (self.root / "sources").glob("*.src"):
            if entry.stem.isascii() and entry.stem.isdigit():
                yield int(entry.stem), _changed_at(entry)


def _changed_at(path: Path) -> datetime:
    """The later of the content's and the entry's change (a rename moves only the ctime)."""
    found = path.stat()
    return datetime.fromtimestamp(max(found.st_mtime, found.st_ctime), UTC)
