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
or a picture above `max_ingest_pixels` (onMetaData, every H.264 SPS, H.263 picture headers;
another video codec is refused: its size is not read), or a key that was
rotated or revoked, or a session called off or ended, meanwhile (cut off).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from sqlmodel import Session

from server.clientaddr import TrustedProxies
from server.config import Settings
from server.db import get_engine
from streaming import amf0, flv, ingest
from streaming.ingest_limits import StreamLimits
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
from streaming.rtmp_media import BAD_STREAM as BAD_STREAM  # what tests and the console name
from streaming.rtmp_media import KEY_RECHECK_S as KEY_RECHECK_S
from streaming.rtmp_media import MediaRelay, Refused, _command

log = logging.getLogger("kaifang.rtmp")

# From the first byte to an accepted publish command.
PUBLISH_DEADLINE_S = 10.0
# Connections not yet publishing, at once: more wait for nothing (closed at once). Per peer
# address too, so one client that opens connections and never publishes (a slowloris that
# keeps within the deadline) cannot fill the whole cap and lock encoders elsewhere out.
MAX_PENDING = 32
MAX_PENDING_PER_ADDRESS = 4  # (a trusted proxy, KAIFANG_TRUSTED_PROXIES, has only the whole cap)
# Before publish only commands come: small. A publisher's video frames are larger.
MAX_COMMAND = 64 * 1024
MAX_MEDIA_MESSAGE = 4 * 1024 * 1024
# A publisher silent this long is gone (a dead network holds no feed open for ever).
IDLE_S = 30.0
# Stopping, the hub is given this long to close the feeds of those that were publishing.
STOP_WAIT_S = 5.0
# A publisher on a key that publishes waits this long for the one before to be gone (an
# encoder that stops and comes back at once: its old connection may still be closing).
RELEASE_WAIT_S = 3.0
# A client looping on the port is a few log lines: of each kind of refusal, LOG_BURST lines in
# LOG_WINDOW_S, then one that says how many were left out.
LOG_BURST, LOG_WINDOW_S = 5, 10.0
OUT_CHUNK_SIZE = 4096
WINDOW = 2_500_000

BUSY = "已有推流端在使用此密钥推流，新的连接被拒绝"
NO_HUB = "直播服务未就绪，请稍后再试"


def _status(code: str, description: str, *, error: bool) -> dict[str, Any]:
    return {"level": "error" if error else "status", "code": code, "description": description}


def address_group(peer: str) -> str:
    """Whom the per-address cap counts: an IPv4 address (also mapped into IPv6), or an IPv6
    client's /64 (one client holds all of it)."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return peer
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class RtmpServer:
    """Listens on one port; `hub_of` gives the app's hub when a publisher arrives."""

    def __init__(self, settings: Settings, hub_of: Callable[[], Hub | None], *,
                 publish_deadline_s: float = PUBLISH_DEADLINE_S,
                 max_pending: int = MAX_PENDING,
                 max_pending_per_address: int = MAX_PENDING_PER_ADDRESS,
                 idle_s: float = IDLE_S) -> None:
        self.settings = settings
        self.hub_of = hub_of
        self.publish_deadline_s = publish_deadline_s
        self.max_pending = max_pending
        self.max_pending_per_address = max_pending_per_address
        self.idle_s = idle_s
        self.pending = 0
        self.pending_at: dict[str, int] = {}
        # A TCP proxy in front (KAIFANG_TRUSTED_PROXIES) is every encoder's address: only the
        # whole cap counts its connections.
        self.proxies = TrustedProxies(settings.trusted_proxies)
        # Session id → set once its publisher's feed is closed and the key free again.
        self.publishing: dict[int, asyncio.Event] = {}
        self.turned_away = 0
        self.turned_away_logged = -10.0
        self._logged: dict[str, tuple[float, int, int]] = {}  # kind → (since, lines, left out)
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

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
        """Listens no more and drops every connection, so each publisher ends as one that
        left: its feed closed without an error (the hub's close let finish, within
        STOP_WAIT_S); a connection still busy after that is cancelled."""
        if self._server is not None:
            self._server.close()
        for writer in self._connections.values():
            writer.transport.abort()
        if self._connections:
            _, late = await asyncio.wait(list(self._connections), timeout=STOP_WAIT_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            await Connection(self, reader, writer).run()
        except asyncio.CancelledError:  # stop(): asyncio would log a cancelled one as a crash
            pass
        except Exception:  # one publisher's bug must not end the listener
            log.exception("RTMP connection failed")
        finally:
            del self._connections[task]
            writer.close()

    def warn(self, kind: str, text: str, *args: Any) -> None:
        """A warning, unless LOG_BURST of this kind were logged within LOG_WINDOW_S."""
        now = time.monotonic()
        since, lines, left_out = self._logged.get(kind, (now, 0, 0))
        if now - since >= LOG_WINDOW_S:
            if left_out:
                log.warning("RTMP: %d more like \"%s\" not logged within %.0f s", left_out,
                            kind, LOG_WINDOW_S)
            since, lines, left_out = now, 0, 0
        if lines < LOG_BURST:
            log.warning(text, *args)
            lines += 1
        else:
            left_out += 1
        self._logged[kind] = (since, lines, left_out)

    def run_db(self, work: Callable[[Session], Any]) -> Any:
        with Session(get_engine(self.settings.sqlalchemy_url), expire_on_commit=False) as db:
            result = work(db)
            db.commit()
            return result


class Connection(MediaRelay):
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
        self.released: asyncio.Event | None = None
        self.header_sent = False
        self.pictures = flv.PictureSizes()
        self.limits = StreamLimits(self.settings.max_ingest_kbps, self.settings.max_ingest_pixels)

    def _turn_away(self, address: str) -> bool:
        """True when the gate holds too many connections not yet publishing (in all, or from
        this address); a flood of them is one log line in 10 s."""
        server = self.server
        if server.pending < server.max_pending and (
                server.pending_at.get(address, 0) < server.max_pending_per_address
                or address in server.proxies):
            return False
        server.turned_away += 1
        now = time.monotonic()
        if now - server.turned_away_logged >= 10:
            log.warning("RTMP connections refused: %d are not publishing yet (%d turned "
                        "away)", server.pending, server.turned_away)
            server.turned_away_logged, server.turned_away = now, 0
        return True

    async def run(self) -> None:
        peer = self.writer.get_extra_info("peername")
        address = address_group(str(peer[0]) if isinstance(peer, tuple) and peer else "")
        if self._turn_away(address):
            return
        self.server.pending += 1
        self.server.pending_at[address] = self.server.pending_at.get(address, 0) + 1
        try:
            async with asyncio.timeout(self.server.publish_deadline_s):
                await handshake(self.reader, self.writer)
                accepted = await self._until_publish()
        except TimeoutError:
            self.server.warn("late", "RTMP connection closed: no publish within %.0f s",
                             self.server.publish_deadline_s)
            return
        except (ProtocolError, amf0.AMFError) as exc:
            self.server.warn("protocol", "RTMP connection closed: %s", exc)
            return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self.server.pending -= 1
            left = self.server.pending_at.pop(address) - 1
            if left:
                self.server.pending_at[address] = left
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
                self.server.warn("play", "RTMP play refused: this server only takes publishers")
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
            if not await self._key_free(event_id):
                raise Refused("busy", BUSY, event_id)
            hub = self.server.hub_of()
            if hub is None:
                raise Refused("no_hub", NO_HUB, event_id)
            self.released = self.server.publishing[event_id] = asyncio.Event()
            try:
                self.feed = await hub.open_feed(event_id, "rtmp", "flv")
            except IngestRefused as refused:
                raise Refused(refused.code, refused.message, event_id) from None
            finally:
                if self.feed is None:  # refused, failed or cancelled: the key is free again
                    self._release()
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
            try:
                await self.feed.close("")
            finally:
                self._release()
            raise
        return True

    async def _key_free(self, event_id: int) -> bool:
        """Whether no publisher holds the key, once the one that does (if any) had a moment
        to be gone."""
        held = self.server.publishing.get(event_id)
        if held is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RELEASE_WAIT_S):
                    await held.wait()
        return event_id not in self.server.publishing

    def _release(self) -> None:
        released = self.released
        if released is None or self.publisher is None:
            return
        if self.server.publishing.get(self.publisher.event_id) is released:
            del self.server.publishing[self.publisher.event_id]
        released.set()

    async def _refuse(self, refused: Refused) -> None:
        """One log line, and the console's message when the session is known."""
        where = f"session {refused.event_id}" if refused.event_id else "no session"
        self.server.warn(refused.code, "RTMP publisher refused (%s, key %s): %s", where,
                         self.key_shown, refused.code)
        if refused.event_id is not None:
            event_id, text = refused.event_id, refused.message
            await anyio.to_thread.run_sync(
                self.server.run_db, lambda db: ingest.note_error(db, event_id, text))
