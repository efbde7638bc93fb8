"""The RTMP gate: OBS and other encoders publish here, and only with a session's key.

Our own small server rather than ffmpeg's listener (which logs a wrong stream name and takes
the stream anyway) or nginx-rtmp (a second daemon `make run` would configure and start): it
reads the `publish` command, checks the key in the database (streaming.ingest) before it
takes a single media message, and hands the accepted stream to the hub
(`app.state.live_hub.open_feed(event_id, "rtmp", "flv")`) as FLV: a header, then one tag per
audio, video or onMetaData message.

What it refuses, each with one log line (never more than a key's first 4 characters) and,
when the session is known, `LiveStream.last_error` for the console: a wrong, revoked or
expired key (NetStream.Publish.BadName, before any media); a second publisher on a key that
publishes (the first goes on); playing (we only ingest); noise, an HTTP request or a wrong
handshake version (closed); too slow a handshake and publish; too many connections not yet
publishing; and, while publishing, a stream above `max_ingest_kbps` (over a sliding window)
or a picture above `max_ingest_pixels` (onMetaData, and the H.264 SPS), or a key that was
rotated or revoked meanwhile (cut off).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from sqlmodel import Session

from server.config import Settings
from server.db import get_engine
from streaming import amf0, flv, ingest
from streaming.ingest_limits import LimitExceeded, StreamLimits
from streaming.live_hub import Feed, Hub, IngestRefused
from streaming.rtmp_chunks import (
    AMF0_COMMAND,
    AMF0_DATA,
    AMF3_COMMAND,
    AMF3_DATA,
    AUDIO,
    COMMAND_CSID,
    VIDEO,
    WINDOW_ACK_SIZE,
    ChunkReader,
    Message,
    ProtocolError,
    acknowledgement,
    chunked,
    handshake,
    set_chunk_size,
    set_peer_bandwidth,
    stream_begin,
    window_ack_size,
)

log = logging.getLogger("kaifang.rtmp")

# From the first byte to an accepted publish command.
PUBLISH_DEADLINE_S = 10.0
# Connections not yet publishing, at once: more wait for nothing (closed at once).
MAX_PENDING = 32
# Before publish only commands come: small. A publisher's video frames are larger.
MAX_COMMAND = 64 * 1024
MAX_MEDIA_MESSAGE = 4 * 1024 * 1024
# A publisher silent this long is gone (a dead network holds no feed open for ever).
IDLE_S = 30.0
# A key rotated or revoked while it publishes cuts the publisher off within this.
KEY_RECHECK_S = 5.0
OUT_CHUNK_SIZE = 4096
WINDOW = 2_500_000

BUSY = "已有推流端在使用此密钥推流，新的连接被拒绝"
NO_HUB = "直播服务未就绪，请稍后再试"
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


def _status(code: str, description: str, *, error: bool) -> dict[str, Any]:
    return {"level": "error" if error else "status", "code": code, "description": description}


class RtmpServer:
    """Listens on one port; `hub_of` gives the app's hub when a publisher arrives."""

    def __init__(self, settings: Settings, hub_of: Callable[[], Hub | None], *,
                 publish_deadline_s: float = PUBLISH_DEADLINE_S,
                 max_pending: int = MAX_PENDING, idle_s: float = IDLE_S) -> None:
        self.settings = settings
        self.hub_of = hub_of
        self.publish_deadline_s = publish_deadline_s
        self.max_pending = max_pending
        self.idle_s = idle_s
        self.pending = 0
        self.publishing: set[int] = set()
        self.turned_away = 0
        self.turned_away_logged = -10.0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @classmethod
    async def listen(cls, settings: Settings,
                     hub_of: Callable[[], Hub | None]) -> RtmpServer | None:
        """The app's gate on settings.rtmp_host:rtmp_port; None when the port is 0, or taken
        (with `kaifang serve --workers N` the first worker listens, the others log it)."""
        if not settings.rtmp_port:
            return None
        try:
            return await cls(settings, hub_of).start(settings.rtmp_host, settings.rtmp_port)
        except OSError as exc:
            log.warning("RTMP ingest not listening on %s:%s: %s", settings.rtmp_host,
                        settings.rtmp_port, exc.strerror or exc)
            return None

    async def start(self, host: str, port: int) -> RtmpServer:
        self._server = await asyncio.start_server(self._accept, host, port)
        log.info("RTMP ingest listening on %s:%s", host, self.port)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await Connection(self, reader, writer).run()
        except Exception:  # one publisher's bug must not end the listener
            log.exception("RTMP connection failed")
        finally:
            self._connections.discard(task)
            writer.close()

    def run_db(self, work: Callable[[Session], Any]) -> Any:
        with Session(get_engine(self.settings.sqlalchemy_url), expire_on_commit=False) as db:
            result = work(db)
            db.commit()
            return result


class Connection:
    """One encoder's connection: handshake and commands until `publish`, then media."""

    def __init__(self, server: RtmpServer, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.settings = server.settings
        self.reader = reader
        self.writer = writer
        self.chunks = ChunkReader(reader, max_message=MAX_COMMAND)
        self.ack_window = WINDOW
        self.acked = 0
        self.publisher: ingest.Publisher | None = None
        self.key_shown = ""
        self.feed: Feed | None = None
        self.header_sent = False
        self.limits = StreamLimits(self.settings.max_ingest_kbps, self.settings.max_ingest_pixels)

    async def run(self) -> None:
        if self.server.pending >= self.server.max_pending:
            self.server.turned_away += 1
            now = time.monotonic()
            if now - self.server.turned_away_logged >= 10:  # a flood is one line in 10 s
                log.warning("RTMP connections refused: %d are not publishing yet (%d turned "
                            "away)", self.server.pending, self.server.turned_away)
                self.server.turned_away_logged, self.server.turned_away = now, 0
            return
        self.server.pending += 1
        try:
            async with asyncio.timeout(self.server.publish_deadline_s):
                await handshake(self.reader, self.writer)
                accepted = await self._until_publish()
        except TimeoutError:
            log.warning("RTMP connection closed: no publish within %.0f s",
                        self.server.publish_deadline_s)
            return
        except (ProtocolError, amf0.AMFError) as exc:
            log.warning("RTMP connection closed: %s", exc)
            return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self.server.pending -= 1
        if accepted:
            await self._relay()

    async def _send(self, data: bytes) -> None:
        self.writer.write(data)
        async with asyncio.timeout(self.server.idle_s):
            await self.writer.drain()

    async def _reply(self, stream_id: int, *values: Any) -> None:
        message = Message(AMF0_COMMAND, stream_id, 0, amf0.encode(*values))
        await self._send(chunked(COMMAND_CSID, message, OUT_CHUNK_SIZE))

    async def _next(self) -> Message:
        message = await self.chunks.next_message()
        if message.type_id == WINDOW_ACK_SIZE and len(message.payload) >= 4:
            self.ack_window = max(int.from_bytes(message.payload[:4], "big"), 4096)
        if self.chunks.bytes_read - self.acked >= self.ack_window:
            self.acked = self.chunks.bytes_read
            await self._send(acknowledgement(self.acked))
        return message

    async def _until_publish(self) -> bool:
        """Commands until a publish: True when it was accepted (the feed open)."""
        while True:
            message = await self._next()
            if message.type_id in (AUDIO, VIDEO, AMF0_DATA, AMF3_DATA):
                raise ProtocolError("media before an accepted publish command")
            if message.type_id not in (AMF0_COMMAND, AMF3_COMMAND):
                continue
            values = _command(message.payload, message.type_id == AMF3_COMMAND)
            name, transaction = values[0], values[1]
            if name == "connect":
                await self._send(window_ack_size(WINDOW) + set_peer_bandwidth(WINDOW)
                                 + set_chunk_size(OUT_CHUNK_SIZE))
                await self._reply(0, "_result", transaction,
                                  {"fmsVer": "FMS/3,0,1,123", "capabilities": 31},
                                  {**_status("NetConnection.Connect.Success", "Connected.",
                                             error=False), "objectEncoding": 0})
            elif name in ("releaseStream", "FCPublish"):
                await self._reply(0, "_result", transaction, None, amf0.UNDEFINED_VALUE)
            elif name == "createStream":
                await self._reply(0, "_result", transaction, None, 1)
            elif name == "play":
                log.warning("RTMP play refused: this server only takes publishers")
                await self._reply(message.stream_id, "onStatus", 0, None, _status(
                    "NetStream.Play.Failed", "Playing is not offered here.", error=True))
                return False
            elif name == "publish":
                stream_name = values[3] if len(values) > 3 and isinstance(values[3], str) else ""
                return await self._publish(message.stream_id, stream_name)

    async def _publish(self, stream_id: int, stream_name: str) -> bool:
        self.key_shown = ingest.key_prefix(ingest.stream_key_of(stream_name))
        try:
            try:
                publisher: ingest.Publisher = await anyio.to_thread.run_sync(
                    self.server.run_db, lambda db: ingest.publisher_of(db, stream_name))
            except ingest.KeyRefused as refused:
                raise Refused(refused.code, refused.message, refused.event_id) from None
            self.publisher = publisher
            event_id = publisher.event_id
            if event_id in self.server.publishing:
                raise Refused("busy", BUSY, event_id)
            hub = self.server.hub_of()
            if hub is None:
                raise Refused("no_hub", NO_HUB, event_id)
            self.server.publishing.add(event_id)
            try:
                self.feed = await hub.open_feed(event_id, "rtmp", "flv")
            except IngestRefused as refused:
                raise Refused(refused.code, refused.message, event_id) from None
            finally:
                if self.feed is None:  # refused, failed or cancelled: the key is free again
                    self.server.publishing.discard(event_id)
        except Refused as refused:
            await self._refuse(refused)
            code = "NetStream.Publish.BadName" if refused.code in (
                "wrong_key", "expired_key", "busy") else "NetStream.Publish.Failed"
            await self._reply(stream_id, "onStatus", 0, None,
                              _status(code, refused.code, error=True))
            return False
        log.info("RTMP publisher accepted for session %d (key %s)", event_id, self.key_shown)
        self.chunks.max_message = MAX_MEDIA_MESSAGE
        try:
            await self._send(stream_begin(stream_id))
            await self._reply(stream_id, "onStatus", 0, None, _status(
                "NetStream.Publish.Start", "Publishing.", error=False))
        except BaseException:  # gone (or out of time) before it heard yes: nothing was sent
            self.server.publishing.discard(event_id)
            await self.feed.close("")
            raise
        return True

    async def _refuse(self, refused: Refused) -> None:
        """One log line, and the console's message when the session is known."""
        where = f"session {refused.event_id}" if refused.event_id else "no session"
        log.warning("RTMP publisher refused (%s, key %s): %s", where, self.key_shown,
                    refused.code)
        if refused.event_id is not None:
            event_id, text = refused.event_id, refused.message
            await anyio.to_thread.run_sync(
                self.server.run_db, lambda db: ingest.note_error(db, event_id, text))

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
            self.server.publishing.discard(self.publisher.event_id)
            await self.feed.close(error)

    async def _media_loop(self) -> None:
        assert self.publisher is not None
        checked = time.monotonic()
        while True:
            async with asyncio.timeout(self.server.idle_s):
                message = await self._next()
            now = time.monotonic()
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
            self.limits.count(now, len(message.payload))
            await self._hand_on(message)

    async def _recheck_key(self) -> None:
        publisher = self.publisher
        assert publisher is not None
        valid = await anyio.to_thread.run_sync(
            self.server.run_db, lambda db: ingest.still_valid(db, publisher))
        if not valid:
            raise Refused("key_revoked", ingest.REVOKED_KEY, publisher.event_id)

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
            size = flv.avc_size(payload)
            if size is not None:
                self.limits.check_picture(*size)
        await self._write_header(audio=True, video=True)
        await self.feed.write(flv.tag(message.type_id, message.timestamp, payload))

    async def _write_header(self, *, audio: bool, video: bool) -> None:
        if not self.header_sent:
            assert self.feed is not None
            self.header_sent = True
            await self.feed.write(flv.header(audio=audio, video=video))
