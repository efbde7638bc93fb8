"""The questions panel of the host's console (console/live.html includes
console/_questions.html): every question of the session by votes with its state, and the
host's actions — approve, reject, shortlist, answering, answered, merge, answer.

With JavaScript (static/js/questions_console.js) the list follows the hosts' socket's frames
(re-read every POLL_S as a safety net) and the actions go through the JSON API
(streaming.api_questions); without it each question carries small forms posted here, which
redirect back to the console. The rules (who may act, one decision per question, one question
answering at a time, which actions each state allows) are streaming.questions'.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from events.errors import Invalid
from frontend.console_auth import ConsoleRoute, ConsoleStaff, see_other
from frontend.i18n import N_, gettext
from frontend.portal_answers import outcome_labels, video_clock
from server.deps import PostedForm, SessionDep
from streaming import answers, messages, protocol, questions
from streaming.broker import Broker, publish_after_commit

router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)
# A safety net only: the hosts' socket carries every change as it happens.
POLL_S = 30
ALL_STATES = (*questions.PUBLIC_STATES, *questions.HIDDEN_STATES)

STATE_LABELS = {
    "held": N_("Waiting for a host"),
    "approved": N_("Listed"),
    "rejected": N_("Not listed"),
    "shortlisted": N_("Shortlisted"),
    "answering": N_("Being answered"),
    "answered": N_("Answered"),
    "merged": N_("Merged"),
}
ACTION_LABELS = {
    "approve": N_("Approve"),
    "reject": N_("Reject"),
    "shortlist": N_("Shortlist"),
    "answering": N_("Answer now"),
    "answered": N_("Mark answered"),
    "merge": N_("Merge into…"),
    "answer": N_("Write the official answer"),
}
SCRIPT_TEXTS = {
    "votes": N_("%(count)s votes"),
    "already_handled": N_("Another host has already handled this question"),
    "failed": N_("That did not work: %(why)s"),
    "offline": N_("The questions could not be loaded: retrying"),
    "empty": N_("No question yet."),
    "into": N_("Merge into which question?"),
    "answer_label": N_("Official answer"),
    "save": N_("Publish the answer"),
    "cancel": N_("Cancel"),
    "done": N_("Done"),
    "merged_into": N_("Merged into #%(id)s"),
    "at_label": N_("Answered in the recording at (m:ss, optional)"),
    "moment": N_("Answered in the recording at %(time)s"),
    "outcome_label": N_("Outcome of a suggestion"),
    "no_outcome": N_("None (not a suggestion)"),
    "reason_label": N_("Reason (shown publicly; required when not adopted)"),
    # The answer's refusals (streaming.answers), said in the page's language.
    "reason_required": N_("Say why the suggestion is not adopted: the reason is shown "
                          "publicly."),
    "beyond_recording": N_("That moment is past the end of the recording."),
    "no_recording": N_("This session has no published recording yet: give a written answer."),
    "answer_required": N_("Give a written answer or the moment of the recording."),
}


def questions_panel(db: Any, event_id: int) -> dict[str, Any]:
    """What console/_questions.html needs: every question of the session, most votes first."""
    items = questions.listed(db, event_id, "votes", states=ALL_STATES)
    for item in items:
        moment = item["answered_at_video_time"]
        item["clock"] = None if moment is None else video_clock(moment)
    return {"found": items, "poll_s": POLL_S, "outcomes": outcome_labels(),
            "states": {key: gettext(text) for key, text in STATE_LABELS.items()},
            "actions": {key: gettext(text) for key, text in ACTION_LABELS.items()},
            "actions_of": {state: questions.actions_of(state) for state in ALL_STATES},
            "texts": {key: gettext(text) for key, text in SCRIPT_TEXTS.items()}}


def _publish(request: Request, db: Any, event_id: int, frames: protocol.Frames) -> None:
    broker: Broker = request.app.state.broker
    publish_after_commit(db, broker, event_id, frames)


def video_seconds(raw: str) -> float | None:
    """A moment of the recording as staff type it: m:ss, h:mm:ss or seconds ("" none); 422
    `invalid` (field `at`) for anything else."""
    text = raw.strip().replace("：", ":")
    if not text:
        return None
    parts = text.split(":")
    try:
        if len(parts) > 3 or any(not part or part.startswith(("-", "+")) for part in parts):
            raise ValueError(text)
        numbers = [float(part) if index == len(parts) - 1 else int(part)
                   for index, part in enumerate(parts)]
    except ValueError as exc:
        raise Invalid("invalid", "at: a moment such as 12:05 or 1:02:30 (or seconds)",
                      field="at") from exc
    if len(parts) > 1 and not all(0 <= n < 60 for n in numbers[1:]):
        raise Invalid("invalid", "at: minutes and seconds below 60", field="at")
    seconds = 0.0
    for number in numbers:
        seconds = seconds * 60 + number
    return seconds


def _int(raw: Any) -> int | None:
    text = str(raw or "").strip().lstrip("#")
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) < 2**31 else None


@router.post("/questions/{question_id}/moderation")
def moderate(question_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
             form: PostedForm) -> Response:
    action = str(form.get("action", ""))[:20]
    into = _int(form.get("into")) if action == "merge" else None
    if action == "merge" and into is None:
        raise Invalid("invalid_target", "into: the number of the question to merge into",
                      field="into")
    question, frames = messages.moderate_question(db, user, question_id, action, into=into)
    _publish(request, db, question.event_id, frames)
    return see_other(f"/console/events/{question.event_id}/live#questions")


@router.post("/questions/{question_id}/answer")
def write_answer(question_id: int, request: Request, db: SessionDep, user: ConsoleStaff,
                 form: PostedForm) -> Response:
    # A form with the moment field may leave the text empty (the moment answers); the outcome
    # and its reason come with the form that shows them (prefilled: sent as they stand).
    text = str(form.get("text", ""))[:4000]
    outcome = str(form["outcome"])[:20] if "outcome" in form else None
    at_s = video_seconds(str(form.get("at", "")))
    question, frames = answers.write_answer(
        db, user, question_id, text if text.strip() or "at" not in form else None,
        outcome=outcome, reason=str(form.get("reason", ""))[:2000] if outcome else None,
        at_s=at_s)
    _publish(request, db, question.event_id, frames)
    return see_other(f"/console/events/{question.event_id}/live#questions")
