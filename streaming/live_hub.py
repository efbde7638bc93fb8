"""Live webcasts: what a publisher's bytes become (the interface the ingest fronts call).

A front (streaming.rtmp for OBS and other RTMP encoders, the console's browser socket for a
laptop's camera) checks who publishes, then opens a Feed on the hub and writes the stream's
bytes into it: FLV from RTMP, WebM from the browser's MediaRecorder. The hub runs one encoder
per live session (the live ladder) and owns the session's LiveStream row from there on.

(This module is filled in by the encoder's work; the signatures below are the contract the
fronts are written against.)
"""

from __future__ import annotations

from typing import Protocol

# What a front sends: FLV (RTMP's audio, video and data messages as FLV tags) or WebM.
CONTAINERS = frozenset({"flv", "webm"})
SOURCES = frozenset({"rtmp", "browser"})


class IngestRefused(Exception):
    """The hub will not take this publisher: `code` for logs and the console (e.g. `busy`: a
    publisher already feeds the session; `ended`: the session is over), `message` in Chinese
    for staff."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Feed(Protocol):
    """One publisher's connection, as the hub takes it."""

    async def write(self, data: bytes) -> None:
        """Hands on the next bytes; waits while the encoder is behind (back-pressure)."""

    async def close(self, error: str = "") -> None:
        """The publisher is gone (an empty `error`: it stopped; else why it was cut off). The
        hub waits the grace time for it to come back before it calls the signal lost."""


class Hub(Protocol):
    async def open_feed(self, event_id: int, source: str, container: str) -> Feed:
        """A feed for this session's publisher; IngestRefused when one already publishes."""
