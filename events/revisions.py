"""Publication review after publication (信息发布审核): an editor's change to what the public
reads of a published session becomes a pending revision; the published version stays up until
the district office approves it (events.sessions.approve_revision) or rejects it with a reason.

Reviewed: kind, title, summary, mode, venue, address, materials and co-hosts. Operational, and
applied at once: capacity, the registration window, moderation and the premiere time. The
session's own times move only by postponement, which tells the public why.
Themes and the series (events.themes, events.series) apply at once too: they classify the
session rather than say anything of it, and each change is in the audit log.
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from events import audit
from events.errors import Conflict
from events.models import Event, EventRevision, EventStatus, RevisionState, StaffUser
from events.timeutil import iso_local, utcnow

S = EventStatus
REVIEWED_FIELDS = ("kind", "title", "summary", "mode", "venue", "address", "materials",
                   "cohost_unit_ids")
# Sessions whose public text is under review: published and not yet over.
REVIEWED_STATUSES = frozenset({S.published, S.live})


def is_reviewed(event: Event) -> bool:
    return event.published_at is not None and event.status in REVIEWED_STATUSES


def pending_of(db: Session, event_id: int) -> EventRevision | None:
    return db.exec(select(EventRevision).where(
        EventRevision.event_id == event_id, EventRevision.state == RevisionState.pending)
        .order_by(col(EventRevision.id).desc())).first()


def last_rejected(db: Session, event_id: int) -> EventRevision | None:
    latest = db.exec(select(EventRevision).where(EventRevision.event_id == event_id)
                     .order_by(col(EventRevision.id).desc())).first()
    return latest if latest is not None and latest.state == RevisionState.rejected else None


def fields_of(revision: EventRevision) -> dict[str, Any]:
    return dict(json.loads(revision.fields or "{}"))


def propose(db: Session, actor: StaffUser, event: Event, proposed: dict[str, Any],
            live: dict[str, Any]) -> EventRevision | None:
    """Merges `proposed` into the session's pending revision; a field back at its published
    value leaves the revision. Returns the pending revision (None when nothing differs)."""
    assert event.id is not None
    revision = pending_of(db, event.id)
    merged = fields_of(revision) if revision else {}
    merged.update(proposed)
    merged = {name: value for name, value in merged.items() if value != live.get(name)}
    if revision is None and not merged:
        return None
    if revision is not None and merged == fields_of(revision):
        return revision  # the same changes sent again (a form posted twice): nothing new
    if revision is None:
        revision = EventRevision(event_id=event.id, state=RevisionState.pending)
    if not merged:
        db.delete(revision)
        db.flush()
        audit.record(db, actor, "event.revision_withdrawn", "event", event.id,
                     unit_id=event.unit_id)
        return None
    revision.fields = json.dumps(merged, ensure_ascii=False, sort_keys=True)
    revision.submitted_at = utcnow()
    revision.submitted_by = actor.id
    db.add(revision)
    db.flush()
    audit.record(db, actor, "event.revision_submitted", "event", event.id, unit_id=event.unit_id,
                 changes={name: [live.get(name), value] for name, value in merged.items()})
    return revision


def require_pending(db: Session, event: Event) -> EventRevision:
    assert event.id is not None
    revision = pending_of(db, event.id)
    if revision is None:
        raise Conflict("no_pending_revision", "this session has no change waiting for review")
    return revision


def decide(revision: EventRevision, actor: StaffUser, state: RevisionState,
           reason: str = "") -> None:
    revision.state = state
    revision.decided_at = utcnow()
    revision.decided_by = actor.id
    revision.reason = reason


def revision_public(db: Session, revision: EventRevision, live: dict[str, Any]
                    ) -> dict[str, Any]:
    """For staff of the unit and the office: what would change, from what to what."""
    submitter = db.get(StaffUser, revision.submitted_by) if revision.submitted_by else None
    fields = fields_of(revision)
    return {
        "id": revision.id,
        "state": revision.state.value,
        "fields": fields,
        "changes": {name: [live.get(name), value] for name, value in fields.items()},
        "submitted_at": iso_local(revision.submitted_at),
        "submitted_by": submitter.username if submitter else None,
        "decided_at": iso_local(revision.decided_at),
        "reason": revision.reason,
    }
