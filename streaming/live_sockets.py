"""The live room's sockets (DESIGN.md's contract; docs/live-protocol.md): a viewer's, read-only
without a token, and a host's (the console's). streaming.api_live routes them.

Each socket is served on the event loop; its database work runs in short sessions of its own in
a thread. It subscribes to the room before it reads what the page missed, so nothing made in
between is lost, and the broker drops what it already sent by position, so nothing arrives
twice. A page of another origin may not open either socket; one viewer (a token) may hold at
most PER_VIEWER sockets on a process and one address PER_ADDRESS (streaming.admission). When
the process is stopped each socket is closed with 1012 and the delay its page waits before it
reconnects (streaming.restart_notice), so an audience does not come back all at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio.to_thread
from fastapi import WebSocket, WebSocketDisconnect
from sqlmodel import Session

from events import permissions, sessions
from events.errors import DomainError, NotFound, Unauthenticated
from events.models import Event
from server.clientaddr import client_of
from server.config import Settings
from server.deps import in_own_session, staff_of_connection
from server.security import Signer
from streaming import messages, protocol, questions, room, socket_origin, stream, tallies
from streaming.admission import admission_of
from streaming.audience import Audience
from streaming.broker import TOO_SLOW, Broker, Subscription
from streaming.restart_notice import SERVICE_RESTART, RestartNotice

VIEWER_COOKIE = "kaifang_viewer"
# Close codes of a socket refused before it starts (4000 + the HTTP status it stands for).
REFUSED_UNKNOWN, REFUSED_TOKEN, REFUSED_BANNED, REFUSED_TOO_MANY = 4404, 4401, 4403, 4429
# A frame that is not text (1003: a kind of data the socket does not take).
UNSUPPORTED = 1003
# The largest frame the room takes (its frames are JSON of at most 4 KB: streaming.protocol).
# The server's own limit is the browser ingest's (server.cli WS_MAX_BYTES): the room keeps
# its own, and closes as uvicorn would have (1009: too big).
ROOM_MAX_BYTES = 16 * 1024
TOO_BIG = 1009


def _broker(app: Any) -> Broker:
    broker: Broker = app.state.broker
    return broker


def _audience(app: Any) -> Audience | None:
    return getattr(app.state, "audience", None)


def _restart_notice(app: Any) -> RestartNotice:
    found = getattr(app.state, "restart_notice", None)
    if found is None:
        found = app.state.restart_notice = RestartNotice()
    return found  # type: ignore[no-any-return]


def close_on_restart(app: Any) -> Callable[[], None]:
    """From the app's lifespan: when the process is told to stop, every room socket closes
    with 1012 and its page's reconnect delay (streaming.restart_notice). Returns what undoes
    it."""
    admission = admission_of(app)
    return _restart_notice(app).listen(lambda: sum(admission.addresses.values()))


async def room_socket(websocket: WebSocket, event_id: int, token: str = "", after: int = 0,
                      pos: int = -1, watch: str = "") -> None:
    """A viewer's socket: the room's frames, and the viewer's comments, questions and votes.
    Without a token (or with a cookie of another room) it only listens. `watch` is the page's
    random id, by which the session's distinct viewers are counted (streaming.audience)."""
    if not same_origin(websocket):
        await _refuse_code(websocket, REFUSED_BANNED, "origin")
        return
    signer: Signer = websocket.app.state.signer
    given = token
    token = token or websocket.cookies.get(VIEWER_COOKIE, "")
    address = client_of(websocket)
    sender = room.address_key(signer, address)

    def enter(db: Session) -> Any:
        sessions.get_visible_event(db, _known(event_id), None)
        if not token:
            return None
        try:
            return room.viewer_of(db, signer, event_id, token)
        except Unauthenticated:
            if given:  # a token the page named: it should know it is not this room's
                raise
            return None  # the cookie of another room's join: this page only watches

    try:
        viewer = await in_own_session(websocket, enter)
    except DomainError as exc:
        await _refuse(websocket, exc)
        return
    admission = admission_of(websocket.app)
    viewer_id = viewer.id if viewer is not None else None
    if not admission.take(viewer_id, sender):
        await _refuse_code(websocket, REFUSED_TOO_MANY, "too_many_sockets")
        return
    try:
        await websocket.accept()
        broker = _broker(websocket.app)
        subscription = broker.subscribe(event_id, websocket.send_text,
                                        who=f"v{viewer_id}" if viewer_id else None)
        audience = _audience(websocket.app)
        watcher = audience.enter(event_id, sender, watch[:64], viewer_id) \
            if audience is not None else ""
        try:
            await broker.ready(event_id)
            await anyio.to_thread.run_sync(broker.announce_viewers, event_id)
            reader = _read(websocket, viewer, event_id, sender) if viewer is not None \
                else _listen(websocket, protocol.JOIN_REQUIRED, "join the room to take part")
            hello = {"viewer": room.viewer_public(viewer) if viewer is not None else None}
            await _stream(websocket, subscription, event_id, after, pos, hello, reader)
        finally:
            subscription.close()
            if audience is not None:
                audience.leave(event_id, watcher)
            with contextlib.suppress(Exception):
                await anyio.to_thread.run_sync(broker.announce_viewers, event_id)
    finally:
        admission.give_back(viewer_id, sender)


async def host_socket(websocket: WebSocket, event_id: int, after: int = 0,
                      pos: int = -1) -> None:
    """A host's socket (the console's): the room's frames, and the queue's — `queued` when a
    message is held, `decided` when any host, on any process, decides one. Signed in by the
    staff cookie; a page of another origin may not open it."""
    if not same_origin(websocket):
        await _refuse_code(websocket, REFUSED_BANNED, "origin")
        return

    def enter(db: Session) -> Any:
        user = staff_of_connection(websocket, db)
        if user is None:
            raise Unauthenticated("login_required", "sign in as staff first")
        event = sessions.get_visible_event(db, _known(event_id), user)
        permissions.require_runner(db, user, event)
        return user

    try:
        user = await in_own_session(websocket, enter)
    except DomainError as exc:
        await _refuse(websocket, exc)
        return
    await websocket.accept()
    broker = _broker(websocket.app)
    subscription = broker.subscribe(event_id, websocket.send_text, hosts=True)
    # How many watch now, after `hello` (it waits with the room's frames): the console shows it
    # at once, not when someone next joins or leaves.
    count = await anyio.to_thread.run_sync(broker.viewers, event_id)
    subscription.offer(protocol.encode(protocol.VIEWERS, count=count), None)
    try:
        await broker.ready(event_id)
        await _stream(websocket, subscription, event_id, after, pos,
                      {"host": {"id": user.id, "name": user.display_name or user.username}},
                      _listen(websocket, protocol.BAD_MESSAGE,
                              "the host socket only listens: decide over HTTP"))
    finally:
        subscription.close()


def _known(event_id: int) -> int:
    """A session id the database can hold (the socket's path is not checked as HTTP's is)."""
    if not 0 < event_id <= 2**31 - 1:
        raise NotFound("event_not_found", f"no session with id {event_id}")
    return event_id


async def _refuse(websocket: WebSocket, exc: DomainError) -> None:
    """Accepted, then closed with a code a page can read (a refused handshake says nothing to
    a browser's script): 4404 no such public session, 4401 not this room's viewer or not signed
    in, 4403 banned or not a host of this session."""
    await _refuse_code(websocket, REFUSED_UNKNOWN if exc.status == 404 else
                       REFUSED_BANNED if exc.status == 403 else REFUSED_TOKEN, exc.code)


async def _refuse_code(websocket: WebSocket, code: int, reason: str) -> None:
    await websocket.accept()
    await _close(websocket, code, reason)


async def _close(websocket: WebSocket, code: int, reason: str = "") -> None:
    """Closes the socket unless it is closed already (a reader cut for being slow may be gone
    by then: a second close is no error worth a traceback)."""
    with contextlib.suppress(RuntimeError, OSError):
        await websocket.close(code, reason=reason)


def same_origin(websocket: WebSocket) -> bool:
    """Whether the socket comes from one of our own pages (streaming.socket_origin)."""
    settings: Settings = websocket.app.state.settings
    scheme = websocket.url.scheme
    # Behind a trusted proxy (nginx terminates TLS) the page's scheme is the proxy's to say.
    forwarded = websocket.headers.get("x-forwarded-proto", "")
    if forwarded in ("http", "https") and websocket.client is not None \
            and websocket.client.host in websocket.app.state.trusted_proxies:
        scheme = forwarded
    own = f"{scheme}://{websocket.headers.get('host', '')}"
    return socket_origin.same_origin(websocket.headers.get("origin"), own, settings.public_url)


async def _stream(websocket: WebSocket, subscription: Subscription, event_id: int, after: int,
                  pos: int, hello: dict[str, Any], reader: Coroutine[Any, Any, None]) -> None:
    """`hello`, then what the page missed (the changes after its position: `pos`, or the
    position of the comment `after` names), then the room as it happens (the broker writes
    it). A page that is new, or too far behind, gets the room's last page instead
    (`hello.reset`)."""
    task: asyncio.Task[None] | None = None
    try:
        def opening(db: Session) -> tuple[dict[str, Any], list[str], int]:
            event = db.get(Event, event_id)
            if event is None:  # deleted since the socket was let in
                raise NotFound("event_not_found", f"no session with id {event_id}")
            found = db.get(room.LiveRoom, event_id)
            # Read first: what changes after it comes again (by the broker or the reads
            # below), and every change is safe to show twice.
            last_pos, last_seq = (found.last_pos, found.last_seq) if found else (0, 0)
            start = min(pos, 2**31 - 1) if pos >= 0 else \
                stream.pos_of_seq(db, event_id, min(max(0, after), 2**31 - 1))
            reset = start <= 0 or start > last_pos or last_pos - start > stream.REPLAY_MAX
            if reset:
                page = stream.last_page(db, event_id)
                frames, sent = [stream.comment_frame(m) for m in page], last_pos
                first_seq = page[0].seq if page else None
            else:
                frames = stream.changes_after(db, event_id, start, stream.REPLAY_MAX)
                sent = max([start] + [protocol.pos_of(f) or 0 for f in frames])
                first_seq = None
            shown = room.room_public(event, found)
            return ({**hello, "moderation": shown["moderation"], "last_seq": last_seq,
                     "last_pos": last_pos, "open": shown["open"],
                     "slow_mode_s": shown["slow_mode_s"],
                     "pinned": stream.pinned_ids(db, event_id), "reset": reset,
                     "first_seq": first_seq}, frames, sent)

        fields, missed, sent_up_to = await in_own_session(websocket, opening)
        await websocket.send_text(protocol.encode(protocol.HELLO, **fields))
        await subscription.send_backlog(missed)  # on uvicorn's sockets: in one write
        await subscription.go_live(sent_up_to)
        task = asyncio.create_task(_quietly(reader))
        notice = _restart_notice(websocket.app)
        either: set[asyncio.Future[Any]] = {task, subscription.ended, notice.leaving}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if notice.leaving.done():  # the process stops: back after a delay of its own
            await _close(websocket, SERVICE_RESTART, notice.reason())
        elif subscription.ended.done() and subscription.ended.result() == TOO_SLOW:
            await _close(websocket, TOO_SLOW)  # the page reconnects from its position
    except (WebSocketDisconnect, DomainError, OSError):
        pass
    except RuntimeError:  # a send after the socket went away (uvicorn says so this way)
        pass
    finally:
        if task is not None:
            task.cancel()
        else:
            reader.close()


async def _quietly(reader: Coroutine[Any, Any, None]) -> None:
    """The socket's reader, ending without a traceback when the socket went away under it (an
    answer sent after the close)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await reader


async def _receive(websocket: WebSocket) -> str | None:
    """The next text frame; None when the socket has closed. A binary frame closes it with
    1003 (the room speaks JSON text only)."""
    try:
        message = await websocket.receive()
    except (WebSocketDisconnect, RuntimeError, OSError):
        return None
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is None:
        await _close(websocket, UNSUPPORTED, "frames are JSON text")
        return None
    if len(text) > ROOM_MAX_BYTES // 4 and len(text.encode()) > ROOM_MAX_BYTES:
        await _close(websocket, TOO_BIG, "frame too big")
        return None
    return str(text)


def _store(viewer: Any, sent: protocol.Sent, sender: str, db: Session) -> Any:
    return messages.send(db, viewer, sent, sender_key=sender)


async def _vote(websocket: WebSocket, viewer: Any, event_id: int,
                asked: protocol.Vote) -> None:
    """A `vote` frame (streaming.questions): no answer of its own when counted, the room's
    next `votes` frame carries the new count to everyone; an `error` frame when refused."""
    try:
        question = await in_own_session(
            websocket, functools.partial(questions.vote_from_room, viewer, asked.question_id))
    except DomainError as exc:
        code = exc.code if exc.code in protocol.ERROR_CODES else protocol.BAD_MESSAGE
        await websocket.send_text(protocol.error(code, exc.message))
        return
    await anyio.to_thread.run_sync(tallies.vote_counts(websocket.app.state).counted, event_id,
                                   question.id or 0, question.votes)


class _Pace:
    """Frames a socket may send: a burst of BURST, then PER_S a second. Past it a frame is
    answered `rate_limited` without touching the database (each frame would take the session's
    lock), whatever the number of nicknames or sockets behind the flood."""

    BURST, PER_S = 10, 3.0

    def __init__(self) -> None:
        self.tokens = float(self.BURST)
        self.at = time.monotonic()

    def admit(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.BURST, self.tokens + (now - self.at) * self.PER_S)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


async def _read(websocket: WebSocket, viewer: Any, event_id: int, sender: str) -> None:
    """The viewer's frames until the socket closes; each answered on its own."""
    broker = _broker(websocket.app)
    pace = _Pace()
    while True:
        text = await _receive(websocket)
        if text is None:
            return
        if not pace.admit():
            await websocket.send_text(protocol.error(
                protocol.RATE_LIMITED, "too many frames; wait a moment"))
            continue
        asked = protocol.decode(text)
        if isinstance(asked, protocol.BadFrame):
            await websocket.send_text(protocol.error(protocol.BAD_MESSAGE, asked.why))
            continue
        if isinstance(asked, protocol.Vote):  # questions: a vote, refused with an error frame
            await _vote(websocket, viewer, event_id, asked)
            continue
        try:
            message, frames = await in_own_session(
                websocket, functools.partial(_store, viewer, asked, sender))
        except DomainError as exc:
            code = exc.code if exc.code in protocol.ERROR_CODES else protocol.BAD_MESSAGE
            await websocket.send_text(protocol.refusal(code, exc.message, exc.retry_after_s))
            continue
        if message.state == "held":
            await websocket.send_text(protocol.encode(protocol.HELD, client_id=asked.client_id,
                                                      id=message.id))
        # In a thread: with Redis, publishing is a network call the loop must not wait on.
        if frames.hosts:
            await anyio.to_thread.run_sync(broker.publish_hosts, event_id, frames.hosts)
        if frames.room:
            await anyio.to_thread.run_sync(broker.publish, event_id, frames.room)


async def _listen(websocket: WebSocket, code: str, why: str) -> None:
    """A socket that only listens (a viewer who has not joined, a host: hosts decide over
    HTTP): every frame is answered with an `error` frame of `code`."""
    pace = _Pace()
    while True:
        text = await _receive(websocket)
        if text is None:
            return
        if pace.admit():
            await websocket.send_text(protocol.error(code, why))
