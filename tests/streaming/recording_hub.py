"""A live hub that keeps what it is fed (streaming.live_hub's interface), for the tests of the
fronts that feed it: the browser ingest socket and the go-live page. The encoder behind the
real hub has its own tests."""

from __future__ import annotations

import asyncio

from streaming.live_hub import IngestRefused


class RecordedFeed:
    def __init__(self, delay_s: float) -> None:
        self.chunks: list[bytes] = []
        self.closed: str | None = None
        self.delay_s = delay_s

    async def write(self, data: bytes) -> None:
        await asyncio.sleep(self.delay_s)
        self.chunks.append(data)

    async def close(self, error: str = "") -> None:
        self.closed = error


class RecordingHub:
    """A hub that keeps what it is fed; `busy` refuses as the real one refuses a second
    publisher; `delay_s` makes each write as slow as an encoder far behind."""

    def __init__(self, delay_s: float = 0.0, busy: bool = False) -> None:
        self.feeds: list[tuple[int, str, str, RecordedFeed]] = []
        self.delay_s = delay_s
        self.busy = busy

    async def start(self) -> None:
        """The app's lifespan starts and stops the hub it holds (nothing to do here)."""

    async def stop(self) -> None:
        pass

    async def open_feed(self, event_id: int, source: str, container: str) -> RecordedFeed:
        if self.busy:
            raise IngestRefused("busy", "已有推流端在推流，请先停止它。")
        feed = RecordedFeed(self.delay_s)
        self.feeds.append((event_id, source, container, feed))
        return feed
