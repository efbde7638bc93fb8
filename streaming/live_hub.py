"""Live webcasts: what a publisher's bytes become (the interface the ingest fronts call).

A front (streaming.rtmp for OBS and other RTMP encoders, the console's browser socket for a
laptop's camera) checks who publishes, then opens a Feed on the hub and writes the stream's
bytes into it: FLV from RTMP, WebM from the browser's MediaRecorder. The hub runs one encoder
per live session (the live ladder) and owns the session's LiveStream row from there on.

Each feed is a run: its first bytes are probed (ffprobe reads them from a pipe: the picture's
size, whether there is sound), then one ffmpeg (streaming.live_ladder) takes them and the rest
on its standard input; `write` waits while the pipe is full (back-pressure reaches the
publisher's socket). The encoder is no queued job: it starts at once, at the web service's
priority, beside any transcode. A feed that closes ends its ffmpeg with the end of its input
(the last segment is finished); the stream then waits for the publisher (`waiting`): a new
feed within the grace time, or later, goes on in the same folder with the next segment numbers
(a discontinuity in the playlists). An encoder that dies, or bytes that are no video, end the
run with `last_error` for the console, and the next `write` raises IngestRefused: the front
cuts its publisher; nothing else stops.

Off air: the session's status (streaming.live_state) marks the moment; every second the hub
looks for webcasts taken off air (another process may have taken the request), ends their
run, and makes the archive (streaming.live_archive). Every 10 s it says its publishers' streams
are alive: one whose process died shows `lost`, and another process archives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

import anyio.to_thread
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from events.timeutil import utcnow
from server.config import Settings
from streaming import live_archive, live_state
from streaming.live_ladder import MAX_PIXELS, ffmpeg_args, layout_for
from streaming.live_playlists import next_number, run_start
from streaming.probe import probe_live
from streaming.storage import LocalStorage

log = logging.getLogger("kaifang.live")
P = ParamSpec("P")
T = TypeVar("T")

# What a front sends: FLV (RTMP's audio, video and data messages as FLV tags) or WebM.
CONTAINERS = frozenset({"flv", "webm"})
SOURCES = frozenset({"rtmp", "browser"})
FFMPEG = "ffmpeg"
# The probe reads the run's first bytes: this many, or what came in this time.
PROBE_BYTES = 256 * 1024
PROBE_AFTER_S = 1.0
# Bytes that still show no stream after this many (or this long) are no video.
PROBE_GIVE_UP_BYTES = 4 * 1024 * 1024
PROBE_GIVE_UP_S = 6.0
PROBE_TIMEOUT_S = 10.0
# A run's ffmpeg finishes its last segment after its input ends; then it is ended.
FINISH_TIMEOUT_S = 10.0
POLL_S = 1.0
HEARTBEAT_POLLS = 10  # live_state.alive every 10 s
# The publisher's rate is measured over this long (KAIFANG_MAX_INGEST_KBPS).
RATE_WINDOW_S = 5.0
ERROR_TAIL = 2000
NOT_VIDEO = "收到的信号无法识别为 {container} 音视频流，已断开推流。请检查推流软件的设置。"
NOTHING = "收到的信号既没有画面也没有声音，已断开推流。"
NOT_LIKE_BEFORE = "这一路信号{missing}，与本场直播此前的信号不一致，已断开推流。"
ENCODER_DIED = "直播编码器意外停止（退出码 {code}），已断开推流，请重新推流。"
TOO_LARGE = "信号的画面（{width}×{height}）超过本站允许的最大分辨率，已断开推流。"
TOO_FAST = "信号的码率超过本站允许的 {limit} kbps，已断开推流。请降低推流软件的码率。"
ARCHIVE_FAILED = "直播已结束，但回放未能生成，请上传录像。"
UNAVAILABLE = "直播服务暂时不可用，请稍后重新推流。"
BUSY = "本场直播已有一路信号在推流，请先断开另一路。"
ENDED = "本场直播已结束，不再接收推流。"
REFUSALS = {"ended": ENDED, "busy": BUSY, "not_found": "没有这场活动。"}


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


class LiveHub:
    """The encoders of this process's publishers, and the watch for webcasts off air."""

    def __init__(self, settings: Settings, engine: Engine, storage: LocalStorage) -> None:
        self.settings, self.engine, self.storage = settings, engine, storage
        self.runs: dict[int, Run] = {}
        self._opening: set[int] = set()
        self._finishing: set[int] = set()
        self._watch: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._starts = 0
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Watches for webcasts off air (the composition root listens for status changes).
        Started as often as the app's lifespan runs (tests enter it once per client): the
        first start watches, the last stop ends it."""
        self._starts += 1
        if self._watch is None:
            self.loop = asyncio.get_running_loop()  # where the fronts call it
            self._watch = asyncio.create_task(self._watch_off_air())

    async def stop(self) -> None:
        self._starts -= 1
        if self._starts > 0:
            return
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for run in list(self.runs.values()):
            await run.close()
        if self._tasks:  # archives being made: a few seconds each
            await asyncio.wait(self._tasks, timeout=FINISH_TIMEOUT_S)

    async def db(self, work: Callable[Concatenate[Session, P], T], *args: P.args,
                 **kwargs: P.kwargs) -> T:
        """`work(db, *args)` in a thread, in a short transaction of its own, committed."""
        def run() -> T:
            with Session(self.engine, expire_on_commit=False) as session:
                result = work(session, *args, **kwargs)
                session.commit()
                return result
        return await anyio.to_thread.run_sync(run)

    async def open_feed(self, event_id: int, source: str, container: str) -> Feed:
        if source not in SOURCES or container not in CONTAINERS:
            raise IngestRefused("unsupported", f"不支持的推流方式：{source}/{container}")
        if event_id in self._finishing:
            raise IngestRefused("ended", ENDED)
        current = self.runs.get(event_id)
        if event_id in self._opening or (current is not None and not current.closed):
            raise IngestRefused("busy", BUSY)
        self._opening.add(event_id)
        try:
            if current is not None:  # its ffmpeg finishes its last segment first
                await current.finished.wait()
            try:
                opened = await self.db(live_state.open_run, self.storage, event_id, source)
            except Exception:  # the database or the disk away: this publisher tries again
                log.exception("live %s: a run could not begin", event_id)
                raise IngestRefused("unavailable", UNAVAILABLE) from None
            if isinstance(opened, str):
                raise IngestRefused(opened, REFUSALS[opened])
            key, number = opened
            run = Run(self, event_id, key, number, container)
            self.runs[event_id] = run
            log.info("live %s: run %s from %s (%s)", event_id, number, source, container)
            return run
        finally:
            self._opening.discard(event_id)

    async def _watch_off_air(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(POLL_S)
            beats += 1
            try:
                if beats % HEARTBEAT_POLLS == 0:
                    await self.db(live_state.alive, set(self.runs))
                due = await self.db(live_archive.due, set(self.runs))
            except (OperationalError, InterfaceError, PoolTimeout) as exc:
                # The database away for a moment (restarted, failed over): look again.
                log.warning("live: looking for webcasts off air failed (%s)",
                            type(getattr(exc, "orig", None) or exc).__name__)
                continue
            except Exception:
                log.exception("live: looking for webcasts off air failed")
                continue
            for event_id in due:
                if event_id not in self._finishing:
                    self._finishing.add(event_id)
                    task = asyncio.create_task(self._finish(event_id))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def _finish(self, event_id: int) -> None:
        """Ends the run (its last segment finished), then makes the archive."""
        try:
            run = self.runs.get(event_id)
            if run is not None:
                await run.close()
            await anyio.to_thread.run_sync(live_archive.finish, self.engine, self.storage,
                                           event_id)
        except Exception:
            log.exception("live %s: the archive failed", event_id)
            with contextlib.suppress(Exception):
                await self.db(live_state.refused, event_id, ARCHIVE_FAILED)
        finally:
            self._finishing.discard(event_id)


class Run:
    """One publisher's connection: the Feed the front writes, and its ffmpeg."""

    def __init__(self, hub: LiveHub, event_id: int, key: str, number: int,
                 container: str) -> None:
        self.hub, self.event_id, self.key, self.number = hub, event_id, key, number
        self.container = container
        self.folder = hub.storage.live_dir(key)
        self.buffer = bytearray()
        self.first_at = self.probed_at = 0.0
        self.probed_bytes = 0
        self.window_at, self.window_bytes = 0.0, 0
        self.code = ""
        self.first_byte = utcnow()
        self.process: asyncio.subprocess.Process | None = None
        self.closed = False
        self.error = ""
        self.stderr = b""
        self.finished = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    async def write(self, data: bytes) -> None:
        if self.error:
            raise IngestRefused(self.code, self.error)
        if self.closed:
            raise IngestRefused("ended", ENDED)
        if self._too_fast(len(data)):
            await self._fail("too_fast", TOO_FAST.format(
                limit=self.hub.settings.max_ingest_kbps))
            raise IngestRefused(self.code, self.error)
        if self.process is None:
            if not self.first_at:
                self.first_at, self.first_byte = time.monotonic(), utcnow()
            self.buffer += data
            # Probed again only with twice the bytes, or a second later.
            if len(self.buffer) >= max(PROBE_BYTES, 2 * self.probed_bytes) or \
                    time.monotonic() - max(self.first_at, self.probed_at) >= PROBE_AFTER_S:
                try:
                    await self._start()
                except Exception:  # no ffmpeg, no disk, no database: this run ends
                    log.exception("live %s: the encoder could not start", self.event_id)
                    await self._fail("unavailable", UNAVAILABLE)
                if self.error:
                    raise IngestRefused(self.code, self.error)
            return
        await self._send(data)

    async def _send(self, data: bytes) -> None:
        """To ffmpeg's standard input, waiting while the pipe is full."""
        assert self.process is not None and self.process.stdin is not None
        try:
            self.process.stdin.write(data)
            await self.process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            await self._encoder_gone()
            raise IngestRefused(self.code, self.error) from None

    def _too_fast(self, size: int) -> bool:
        """More than max_ingest_kbps over the last RATE_WINDOW_S."""
        now = time.monotonic()
        if not self.window_at:
            self.window_at = now
        self.window_bytes += size
        elapsed = now - self.window_at
        if elapsed < RATE_WINDOW_S:
            return False
        kbps = self.window_bytes * 8 / 1000 / elapsed
        self.window_at, self.window_bytes = now, 0
        return kbps > self.hub.settings.max_ingest_kbps

    async def _start(self) -> None:
        """Probes what came so far; starts the encoder when it shows a stream."""
        self.probed_bytes, self.probed_at = len(self.buffer), time.monotonic()
        source = await probe_live(self.container, bytes(self.buffer), PROBE_TIMEOUT_S)
        if self.closed:  # the publisher left, or the session ended, meanwhile
            return
        if source is None:
            if len(self.buffer) >= PROBE_GIVE_UP_BYTES or \
                    time.monotonic() - self.first_at >= PROBE_GIVE_UP_S:
                await self._fail("not_video",
                                 NOT_VIDEO.format(container=self.container.upper()))
            return
        if not (source.has_video or source.has_audio):
            return await self._fail("not_video", NOTHING)
        # The ladder's decoder takes 1080p at most, whatever the setting allows.
        if source.width * source.height > min(self.hub.settings.max_ingest_pixels, MAX_PIXELS):
            return await self._fail("too_large", TOO_LARGE.format(
                width=source.width, height=source.height))
        layout = live_state.read_layout(self.folder)
        if layout is None:
            layout = layout_for(source)
            live_state.write_layout(self.folder, layout)
            await self.hub.db(live_state.picture_found, self.event_id, source.width,
                              source.height)
        missing = "没有声音" if layout.has_audio and not source.has_audio else \
            "没有画面" if layout.renditions and not source.has_video else ""
        if missing:
            return await self._fail("not_like_before", NOT_LIKE_BEFORE.format(missing=missing))
        (self.folder / run_start(self.number)).write_text(
            self.first_byte.isoformat(timespec="milliseconds"), encoding="utf-8")
        args = ffmpeg_args(self.container, str(self.folder), layout, source, self.number,
                           next_number(self.folder, layout))
        self.process = await asyncio.create_subprocess_exec(
            *self._limits(), FFMPEG, *args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)
        if self.closed:  # closed while it started: it ends with its empty input
            assert self.process.stdin is not None
            self.process.stdin.close()
            await self.process.wait()
            return
        self._watcher = asyncio.create_task(self._watch())
        pending, self.buffer = bytes(self.buffer), bytearray()
        await self._send(pending)

    def _limits(self) -> list[str]:
        """It dies with this process, in the memory a transcode may take; normal priority."""
        memory = self.hub.settings.transcode_memory_mb * 1024 * 1024
        return ["setpriv", "--pdeathsig", "KILL", "--", "prlimit", f"--as={memory}", "--"]

    async def _watch(self) -> None:
        """Reads ffmpeg's complaints; when it ends while the publisher still sends, the run
        ends with why."""
        process = self.process
        assert process is not None and process.stderr is not None
        while chunk := await process.stderr.read(4096):
            self.stderr = (self.stderr + chunk)[-ERROR_TAIL:]
        code = await process.wait()
        if not self.closed:
            await self._encoder_gone(code)

    async def _encoder_gone(self, code: int | None = None) -> None:
        if self.error or self.closed:
            return
        code = code if code is not None else await self.process.wait() if self.process else -1
        log.warning("live %s: the encoder ended (%s): %s", self.event_id, code,
                    self.stderr.decode("utf-8", "replace")[-300:].replace("\n", " | "))
        await self._fail("encoder", ENCODER_DIED.format(code=code))

    async def _fail(self, code: str, error: str) -> None:
        self.code, self.error = code, error
        log.warning("live %s: run %s cut off: %s", self.event_id, self.number, error)
        await self._end(error)

    async def close(self, error: str = "") -> None:
        if self.closed:
            await self.finished.wait()
            return
        await self._end(error)

    async def _end(self, error: str) -> None:
        """The input ends: ffmpeg finishes its last segment (or is ended), the stream waits."""
        if self.closed:
            return
        self.closed = True
        process = self.process
        try:
            if process is not None and process.returncode is None:
                assert process.stdin is not None
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    process.stdin.close()
                try:
                    await asyncio.wait_for(process.wait(), FINISH_TIMEOUT_S)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            if self._watcher is not None and self._watcher is not asyncio.current_task():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._watcher, FINISH_TIMEOUT_S)
            await self.hub.db(live_state.run_ended, self.event_id, error)
        except Exception:  # the database away: the run is over all the same
            log.exception("live %s: the end of run %s was not recorded", self.event_id,
                          self.number)
        finally:
            self.finished.set()
            if self.hub.runs.get(self.event_id) is self:
                del self.hub.runs[self.event_id]
            log.info("live %s: run %s ended", self.event_id, self.number)
