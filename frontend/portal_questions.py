"""The questions panel of a session's room page (/events/{id}/live, portal/_questions.html):
the public list by votes, a vote button per open question, the one being answered marked, the
official answers, and the ask form while questions are taken (streaming.questions decides).

static/js/questions.js asks and votes through the JSON API (streaming.api_questions) with the
viewer cookie the comments panel's join sets (one viewer for both panels), and keeps the list up
from the room's frames (`question`, `votes`), re-reading it every REFRESH_S as a safety net;
without script the page shows the list as the server had it.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlmodel import Session

from events.errors import DomainError
from events.models import Event
from events.timeutil import utcnow
from frontend.i18n import gettext
from streaming import protocol, questions, room
from streaming.models import LiveRoom

# streaming.api_live sets it when a viewer joins (pages may not import a router).
VIEWER_COOKIE = "kaifang_viewer"
# A safety net only: the room's frames carry every change as it happens.
REFRESH_S = 30


def questions_texts() -> dict[str, str]:
    """What static/js/questions.js says, in the page's language."""
    return {
        "answering": gettext("Being answered"),
        "answer": gettext("Official answer"),
        "answered": gettext("Answered"),
        "vote": gettext("Vote for this question (%(count)s votes)"),
        "voted": gettext("You voted for this question"),
        "held": gettext("Your question was sent and waits for a host's approval."),
        "published": gettext("Your question is on the list."),
        "joinFirst": gettext("Enter a nickname to vote and ask."),
        "joinFailed": gettext("Could not join: check the nickname and try again."),
        "failed": gettext("That did not work; please try again."),
        "empty": gettext("No questions yet."),
        questions.CLOSED: gettext("Questions are no longer taken."),
        "already_voted": gettext("You voted for this question already."),
        "not_votable": gettext("This question has been answered."),
        protocol.RATE_LIMITED: gettext("Too fast: wait a moment before the next question."),
        protocol.BANNED: gettext("A host removed you from this room."),
        protocol.TOO_LONG: gettext("A question has at most 300 characters."),
        protocol.BLOCKED_WORD: gettext("The question contains a word that is not allowed."),
    }


def questions_context(db: Session, request: Request, event: Event) -> dict[str, Any]:
    """The panel: shown while questions are taken or once there are some to read."""
    assert event.id is not None
    is_open = questions.is_open(event, db.get(LiveRoom, event.id), utcnow())
    viewer_id, nickname, banned = None, "", False
    try:
        viewer = room.viewer_of(db, request.app.state.signer, event.id,
                                request.cookies.get(VIEWER_COOKIE))
        viewer_id, nickname = viewer.id, viewer.nickname
    except DomainError as exc:
        banned = exc.code == protocol.BANNED
    items = questions.listed(db, event.id, "votes", viewer_id=viewer_id)
    return {"shown": is_open or bool(items), "open": is_open, "found": items,
            "nickname": nickname, "banned": banned, "moderation": event.moderation.value,
            "max_text": room.MAX_TEXT, "max_nickname": room.MAX_NICKNAME,
            "refresh_s": REFRESH_S, "texts": questions_texts()}
