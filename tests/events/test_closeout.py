"""Sessions over and not closed out: the unit is reminded once, a day after the end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from events import closeout
from events.models import OutboxMessage
from server.worker import JOBS
from tests.frontend.portal_pages import create, future


def reminders(db):
    db.rollback()
    return list(db.exec(select(OutboxMessage).where(OutboxMessage.topic == "closeout_reminder")
                        .order_by(OutboxMessage.id)))


def test_a_unit_is_reminded_once_of_each_session_waiting_for_close_out(client, staff, db):
    admin = staff("admin")
    held = create(admin, db, starts=future(-3), title="三天前的开放日")
    create(admin, db, "shichahai", starts=datetime.now(UTC) - timedelta(hours=5),
           hours=2, title="今天上午的会议")  # ended three hours ago: not yet
    closed = create(admin, db, starts=future(-4), title="已结项的会议")
    assert admin.post(f"/api/events/{closed['id']}/close",
                      json={"minutes": "已结项。"}).status_code == 200
    draft = create(admin, db, starts=future(-6), publish_it=False, title="从未发布的草稿")
    assert draft

    assert closeout.remind_units(db) == 1
    db.commit()
    sent = reminders(db)
    assert [(m.channel, m.recipient, m.event_id) for m in sent] == \
        [("console", "unit:education", held["id"])]
    assert "三天前的开放日" in sent[0].body and "结项" in sent[0].body

    assert closeout.remind_units(db) == 0  # once each
    db.commit()
    assert len(reminders(db)) == 1
    assert "closeout_reminders" in {job.name for job in JOBS}


def test_the_editor_reads_the_reminder_in_the_console_outbox(client, staff, db):
    admin = staff("admin")
    create(admin, db, starts=future(-3), title="三天前的开放日")
    closeout.remind_units(db)
    db.commit()
    page = staff("editor", "education").get("/console/outbox?topic=closeout_reminder")
    assert page.status_code == 200 and "三天前的开放日" in page.text and "提醒结项" in page.text
