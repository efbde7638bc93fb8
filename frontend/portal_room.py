"""The room of a session, /events/{id}/live: the countdown before it, the premiere while it
runs, the recording after it (streaming.phase's rules decide which). Online and hybrid
sessions have one from the start; any public session has one once its recording plays."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from events import rooms
from events.errors import DomainError
from events.models import Event
from events.timeutil import utcnow
from frontend.i18n import N_, gettext, pgettext
from frontend.portal import _not_found, session_cards, unit_directory, visible_event
from frontend.portal_questions import questions_context
from frontend.templating import render
from server.deps import SessionDep
from streaming import jobs, live_state, phase, protocol, room, stream, tracks
from streaming.playback import playback_of
from streaming.storage import LocalStorage

router = APIRouter(include_in_schema=False)
PLAYING = phase.PLAYING
# streaming.api_live sets it when a viewer joins (pages may not import a router; a test checks).
VIEWER_COOKIE = "kaifang_viewer"


def countdown_text(left: timedelta) -> str:
    """What the room says before its start when no script runs: days and hours, then minutes."""
    minutes = max(1, int(left.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return gettext("Starts in %(days)s d %(hours)s h") % {"days": days, "hours": hours}
    if hours:
        return gettext("Starts in %(hours)s h %(minutes)s min") % {"hours": hours,
                                                                    "minutes": minutes}
    return gettext("Starts in %(minutes)s min") % {"minutes": minutes}


def player_texts() -> dict[str, str]:
    """What static/js/player.js says: its buttons' words change with what they would do."""
    return {"audio": gettext("Sound only"), "play": gettext("Play"), "pause": gettext("Pause"),
            "mute": gettext("Mute"), "unmute": gettext("Unmute"),
            # The live half (static/js/player_live.js).
            "signalWaiting": gettext("Signal interrupted, waiting for it to return"),
            "signalLost": gettext("The live signal was lost"),
            "liveOver": gettext("The live broadcast has ended: the recording opens here.")}


def plays(playback: dict[str, Any]) -> bool:
    """Whether the player shows: a premiere or a recording, or a webcast on air (a live
    session with no picture shows the screen, and waits: awaits_live)."""
    return playback["state"] in PLAYING or (playback["state"] == "live"
                                             and bool(playback["hls_url"]))


def awaits_live(event: Event, playback: dict[str, Any], now: datetime) -> bool:
    """Whether the room holds a hidden player that shows by itself once the session is on air
    (static/js/player_live.js): a session with a room, before it or live with no picture yet;
    not a premiere (its own clock starts it)."""
    return not plays(playback) and rooms.has_room(event) \
        and phase.premiere_of(event) is None \
        and phase.phase_of(event, now) in (phase.Phase.before, phase.Phase.live)


def player_context(db: SessionDep, request: Request, event: Event) -> dict[str, Any]:
    """What portal/_player.html needs: the playback answer and the recording's tracks."""
    assert event.id is not None
    storage: LocalStorage = request.app.state.media_storage
    recording = jobs.published(db, event.id)
    now = utcnow()
    # On air, the page is written with the live player and the publisher's signal.
    live = live_state.playback_live(db, storage, event, now,
                                    request.app.state.settings.live_grace_s)
    playback = playback_of(event, recording, storage, now, live)
    found = tracks.of_recording(db, recording.id) if recording and recording.id else []
    return {"playback": playback, "player_texts": player_texts(),
            "tracks": [tracks.track_public(track) for track in found if track.kind != "chapters"],
            "chapters": next((tracks.chapter_list(track) for track in found
                              if track.kind == "chapters"), [])}


def live_texts() -> dict[str, str]:
    """What static/js/live.js says, in the page's language."""
    return {
        "held": gettext("Your message was sent and waits for a host's approval."),
        "connecting": gettext("Connecting…"),
        "reconnecting": gettext("Reconnecting…"),
        "question": pgettext("live room", "Question"),
        "joinFailed": gettext("Could not join: check the nickname and try again."),
        "count": gettext("%(count)s / %(max)s characters"),
        "closed4401": gettext("Your viewer pass is no longer valid: enter a nickname again."),
        "closed4403": gettext("A host removed you from this room."),
        "closed4404": gettext("This session has no live room, or is not public."),
        protocol.RATE_LIMITED: gettext("Too fast: wait a moment before the next message."),
        "wait": gettext("Too soon: send again in %(seconds)s s."),
        "rejected": gettext("A host did not publish your message."),
        protocol.BANNED: gettext("A host removed you from this room."),
        protocol.TOO_LONG: gettext("A message has at most 300 characters."),
        protocol.BLOCKED_WORD: gettext("The message contains a word that is not allowed."),
        protocol.BAD_MESSAGE: gettext("The message could not be read; please try again."),
        protocol.CLOSED: gettext("The room takes no messages now."),
        "official": gettext("Official reply"),
        "registered": gettext("Registered for the session"),
        "replyTo": gettext("Reply to %(author)s: %(text)s"),
        "pinned": gettext("Pinned"),
        "watching": gettext("%(count)s watching"),
        "unseen": gettext("%(count)s new messages"),
        "earlier": gettext("Earlier messages"),
        protocol.JOIN_REQUIRED: gettext("Enter a nickname to take part."),
        "closed": gettext("The hosts have paused messages."),
        "slow": gettext("Slow mode: one message every %(seconds)s s."),
        "rulePre": gettext("A host approves each message before the room sees it."),
        "rulePost": gettext("Messages show at once; hosts remove abuse."),
    }


def video_clock(seconds: float) -> str:
    """A position in the video as player.js and replay.js write it: m:ss, h:mm:ss past an hour."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def replay_texts() -> dict[str, str]:
    """What static/js/replay.js says, in the page's language."""
    return {"seek": gettext("Jump to %(time)s"), "question": pgettext("live room", "Question")}


def live_context(db: SessionDep, request: Request, event: Event) -> dict[str, Any]:
    """The comments panel: open while the room takes messages, read-only afterwards, and the
    viewer the signed `kaifang_viewer` cookie names (a reload keeps the viewer)."""
    assert event.id is not None
    found = db.get(room.LiveRoom, event.id)
    # Read before the messages: a change made in between comes again to the page's socket.
    last_pos = found.last_pos if found else 0
    is_open = room.is_open(event, found, utcnow())
    # Live: the room's last page (live.js goes on from last_pos); after: the replay's first.
    shown = stream.last_page(db, event.id) if is_open else room.backlog(db, event.id, 0)
    messages = [room.message_public(m) for m in shown]
    for message in messages:
        time = message["video_time"]
        message["clock"] = None if time is None else video_clock(time)
    nickname, banned = "", False
    if is_open:
        try:
            viewer = room.viewer_of(db, request.app.state.signer, event.id,
                                    request.cookies.get(VIEWER_COOKIE))
            nickname = viewer.nickname
        except DomainError as exc:
            banned = exc.code == protocol.BANNED
    return {"shown": is_open or bool(messages), "open": is_open, "messages": messages,
            "moderation": event.moderation.value, "nickname": nickname, "banned": banned,
            "last_seq": messages[-1]["seq"] if messages else 0, "last_pos": last_pos,
            "max_text": room.MAX_TEXT,
            "max_nickname": room.MAX_NICKNAME, "texts": live_texts()}


@router.get("/events/{event_id:int}/live")
def room_page(event_id: int, request: Request, db: SessionDep) -> Response:
    missing = N_("This session has no live room, or is not public.")
    event = visible_event(db, event_id)
    if event is None:
        return _not_found(request, missing)
    player = player_context(db, request, event)
    if not rooms.has_room(event) and not plays(player["playback"]):
        return _not_found(request, missing)
    now = utcnow()
    card = session_cards(db, [event], unit_directory(db))[0]
    counting_to = phase.counts_to(event)
    # A broadcast may go 直播中 before its premiere: the countdown runs on to the premiere.
    upcoming = phase.counting_down(event, now)
    live = live_context(db, request, event)
    state = player["playback"]["state"]
    # After the session the panel replays its comments at their video time (static/js/replay.js);
    # during a premiere the overlay shows the live ones as they come.
    replay = state == "vod" and live["shown"] and not live["open"]
    return render(request, "portal/room.html", section="", e=card, **player,
                  playing=plays(player["playback"]),
                  awaits_live=awaits_live(event, player["playback"], now),
                  counting_to=counting_to.isoformat(),
                  premiere=phase.premiere_of(event) is not None,
                  countdown=countdown_text(counting_to - now) if upcoming else "",
                  server_now=now.isoformat(timespec="seconds"), live=live, replay=replay,
                  danmaku=replay or (state == "premiere" and live["open"]),
                  replay_texts=replay_texts(),
                  questions=questions_context(db, request, event))
