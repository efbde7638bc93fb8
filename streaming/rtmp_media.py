"""The RTMP gate's media half: what an accepted publisher sends, handed on to the hub as FLV
until it stops, goes silent or is cut off (a bitrate or picture above the caps, a video codec
whose size is not read, its key rotated or revoked or its session over, a broken stream).

A mixin of streaming.rtmp's Connection, which owns the socket and the key (split here only
to keep each module short).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from streaming import amf0, flv, ingest
from streaming.ingest_limits import LimitExceeded, StreamLimits
from streaming.live_hub import Feed, IngestRefused
from streaming.rtmp_chunks import (
    AMF0_COMMAND,
    AMF0_DATA,
    AMF3_COMMAND,
    AUDIO,
    VIDEO,
    ChunkReader,
    Message,
    ProtocolError,
)

if TYPE_CHECKING:
    from streaming.rtmp import RtmpServer

log = logging.getLogger("kaifang.rtmp")

# A key rotated or revoked (or its session over) while it publishes cuts it off within this.
KEY_RECHECK_S = 5.0
BAD_STREAM = "推流数据格式错误，推流已断开"


class Refused(Exception):
    """A publisher turned away: `code` for the log, `message` for the console."""

    def __init__(self, code: str, message: str, event_id: int | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.event_id = event_id


def _command(payload: bytes, amf3: bool) -> list[Any]:
    values = amf0.decode(payload[1:] if amf3 and payload[:1] == b"\x00" else payload)
    if len(values) < 2 or not isinstance(values[0], str):
        raise ProtocolError("a command message without a name and a transaction id")
    return values


class MediaRelay:
    server: RtmpServer
    publisher: ingest.Publisher | None
    feed: Feed | None
    header_sent: bool
    pictures: flv.PictureSizes
    limits: StreamLimits
    chunks: ChunkReader

    async def _next(self) -> Message:
        raise NotImplementedError

    async def _refuse(self, refused: Refused) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError

    async def _relay(self) -> None:
        """Media to the feed until the publisher stops, goes silent or is cut off."""
        assert self.feed is not None and self.publisher is not None
        error = ""
        try:
            await self._media_loop()
        except Refused as refused:
            error = refused.message
            await self._refuse(refused)
        except LimitExceeded as exceeded:
            error = exceeded.message
            await self._refuse(Refused(exceeded.code, exceeded.message, self.publisher.event_id))
        except IngestRefused as refused:  # the hub stopped taking this stream
            error = refused.message
            await self._refuse(Refused(refused.code, refused.message, self.publisher.event_id))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except TimeoutError:
            log.warning("RTMP publisher for session %d silent for %.0f s: closed",
                        self.publisher.event_id, self.server.idle_s)
        except (ProtocolError, amf0.AMFError) as exc:
            error = BAD_STREAM
            log.warning("RTMP publisher for session %d cut off: %s", self.publisher.event_id,
                        exc)
            await self._refuse(Refused("bad_stream", BAD_STREAM, self.publisher.event_id))
        finally:
            try:
                await self.feed.close(error)
            finally:  # only now: the hub may take the next publisher on this key
                self._release()

    async def _media_loop(self) -> None:
        assert self.publisher is not None
        checked = time.monotonic()
        counted = self.chunks.bytes_read
        while True:
            async with asyncio.timeout(self.server.idle_s):
                message = await self._next()
            now = time.monotonic()
            # Every byte it sends counts (headers, commands, messages we do not read), not only
            # the media: a flood of anything else would cost as much and be free.
            self.limits.count(now, self.chunks.bytes_read - counted)
            counted = self.chunks.bytes_read
            if now - checked >= KEY_RECHECK_S:
                checked = now
                await self._recheck_key()
            if message.type_id in (AMF0_COMMAND, AMF3_COMMAND):
                name = _command(message.payload, message.type_id == AMF3_COMMAND)[0]
                if name in ("FCUnpublish", "deleteStream", "closeStream"):
                    return
                continue
            if message.type_id not in (AUDIO, VIDEO, AMF0_DATA) or not message.payload:
                continue
            await self._hand_on(message)

    async def _recheck_key(self) -> None:
        publisher = self.publisher
        assert publisher is not None
        try:
            await anyio.to_thread.run_sync(
                self.server.run_db, lambda db: ingest.recheck(db, publisher))
        except ingest.KeyRefused as refused:
            raise Refused(refused.code, refused.message, publisher.event_id) from None

    async def _hand_on(self, message: Message) -> None:
        assert self.feed is not None
        payload = message.payload
        if message.type_id == AMF0_DATA:
            body = flv.script_body(payload)
            if body is None:
                return
            properties = flv.metadata(body)
            self.limits.check_picture(*flv.metadata_size(properties))
            if not self.header_sent:
                # The header names the tracks the metadata announces (both when it says neither).
                audio, video = "audiocodecid" in properties, "videocodecid" in properties
                await self._write_header(audio=audio or not video, video=video or not audio)
            await self.feed.write(flv.tag(flv.SCRIPT_TAG, message.timestamp, body))
            return
        if message.type_id == VIDEO:
            try:
                sizes = self.pictures.of(payload)
            except flv.UnsupportedVideo:
                raise LimitExceeded("bad_codec", flv.UNSUPPORTED_VIDEO) from None
            for size in sizes:
                self.limits.check_picture(*size)
        await self._write_header(audio=True, video=True)
        await self.feed.write(flv.tag(message.type_id, message.timestamp, payload))

    async def _write_header(self, *, audio: bool, video: bool) -> None:
        if not self.header_sent:
            assert self.feed is not None
            self.header_sent = True
            await self.feed.write(flv.header(audio=audio, video=video))
