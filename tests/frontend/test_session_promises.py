"""What a registration and a session promise (issue 9: 3, 4, 5, 7): a waitlist place is no
ticket, a past session says it is over, an online session says where to watch, and the small
promises of the portal's frame (full cards, calendar subscription, 404, favicon)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from events.models import OutboxMessage
from tests.conftest import assign_hosts
from tests.frontend.portal_pages import HTML, create, future, register, ticket, visible
from tests.helpers import open_session

ROOM_LINK = re.compile(r'href="/events/(\d+)/live"')


# ---- 3. a waitlist place is not a ticket ----------------------------------------------------

def test_a_waitlist_place_shows_the_queue_not_a_ticket_until_promoted(client, staff, db):
    event_id = open_session(staff, db, capacity=1)
    first = register(client, event_id, phone="13800000001")
    second = register(client, event_id, phone="13800000002")
    third = register(client, event_id, phone="13800000003")

    page = ticket(client, third).text
    text = visible(page)
    assert "候补第 2 位" in text and "您前面还有 1 人" in text
    assert "不是入场凭证" in text
    assert 'class="ticket-qr"' not in page and 'class="ticket-code"' not in page
    assert "打印入场凭证" not in text and "data-print" not in page

    # The first cancels: the head of the queue gets the ticket, the next moves up.
    assert client.post(f"/tickets/{first}/cancel", headers=HTML,
                       follow_redirects=False).status_code == 303
    promoted = ticket(client, second).text
    assert 'class="ticket-qr"' in promoted and 'class="ticket-code"' in promoted
    assert "已确认" in visible(promoted) and "打印入场凭证" in visible(promoted)
    assert "候补第 1 位" in visible(ticket(client, third).text)
    assert "您前面还有" not in visible(ticket(client, third).text)


# ---- 4. past sessions say they are over -----------------------------------------------------

def test_a_past_session_says_it_is_over_and_offers_nothing_to_join(client, staff, db):
    admin = staff("admin")
    held = create(admin, db, starts=future(-20), title="三周前的开放日", capacity=150,
                  registration_opens_at=future(-40).isoformat(),
                  registration_closes_at=future(-21).isoformat())
    page = client.get(f"/events/{held['id']}", headers=HTML).text
    text = visible(page)
    assert "已结束" in text and "本场活动已于" in text
    assert "剩余" not in text and "register-form" not in page
    assert "添加到日历" not in text and f"/events/{held['id']}.ics" not in page
    assert "位市民参加" not in text  # not closed out: attendance is not known yet
    assert "会议纪要将在主办单位整理后公布" in text

    assert admin.post(f"/api/events/{held['id']}/close",
                      json={"minutes": "形成三项整改措施。", "attendee_count": 108,
                            "attendance_reason": "按纸质签到表统计"}).status_code == 200
    text = visible(client.get(f"/events/{held['id']}", headers=HTML).text)
    assert "共有 108 位市民参加" in text and "形成三项整改措施" in text
    assert "剩余" not in text and "150" not in text

    # The unit's page and the month calendar say so too.
    unit_page = visible(client.get("/units/education", headers=HTML).text)
    assert "已结束" in unit_page[unit_page.index("三周前的开放日"):][:100]
    month = datetime.fromisoformat(held["starts_at"]).strftime("%Y-%m")
    calendar = visible(client.get(f"/calendar?month={month}", headers=HTML).text)
    assert "已结束" in calendar[calendar.index("三周前的开放日"):][:100]


def test_a_session_without_registration_is_not_open_to_walk_in_after_its_end(client, staff, db):
    admin = staff("admin")
    held = create(admin, db, starts=future(-3), title="往期座谈会")
    text = visible(client.get(f"/events/{held['id']}", headers=HTML).text)
    assert "无需报名" not in text and "已结束" in text
    assert client.get(f"/api/events/{held['id']}").json()["registration"] == "closed"


def test_the_console_offers_no_go_live_once_a_session_is_over(client, staff, console, db):
    admin = staff("admin")
    held = create(admin, db, starts=future(-2), title="已过去的会议")
    soon = create(admin, db, starts=datetime.now(UTC) + timedelta(minutes=10),
                  title="马上开始的会议")
    host = console("host")
    assign_hosts(db, held["id"])
    assign_hosts(db, soon["id"])
    over = visible(host.get(f"/console/events/{held['id']}").text)
    assert "开始直播" not in over and "开始活动" not in over
    # An in-person meeting is started (开始活动); only online sessions go live (开始直播).
    assert "开始活动" in visible(host.get(f"/console/events/{soon['id']}").text)


def test_the_console_lists_sessions_waiting_for_close_out(client, staff, console, db):
    admin = staff("admin")
    held = create(admin, db, starts=future(-5), title="等待结项的会议")
    create(admin, db, starts=future(5), title="下周的会议")
    editor = console("editor", "education")
    home = editor.get("/console").text
    assert 'id="group-closeout"' in home
    waiting = home[home.index('id="group-closeout"'):]
    waiting = waiting[:waiting.index("</section>")]
    assert "等待结项" in waiting and "等待结项的会议" in waiting and "下周的会议" not in waiting

    assert admin.post(f"/api/events/{held['id']}/close",
                      json={"minutes": "已结项。"}).status_code == 200
    assert 'id="group-closeout"' not in editor.get("/console").text


# ---- 5. online and hybrid sessions say how to watch ------------------------------------------

def test_an_online_session_has_a_room_page_with_a_countdown(client, staff, db):
    admin = staff("admin")
    online = create(admin, db, starts=future(3), mode="online", venue="",
                    title="政民互动直播间：老旧小区加装电梯")
    room = client.get(f"/events/{online['id']}/live", headers=HTML)
    assert room.status_code == 200
    text = visible(room.text)
    assert "政民互动直播间：老旧小区加装电梯" in text
    assert "距开始还有 2 天" in text or "距开始还有 3 天" in text  # the no-JS countdown
    assert "data-starts-at" in room.text and "room.js" in room.text
    assert "直播和回放将在此播放" in text and "评论" in text and "提问" in text
    # The session page leads there.
    page = client.get(f"/events/{online['id']}", headers=HTML).text
    assert f'href="/events/{online["id"]}/live"' in page and "进入直播间" in visible(page)


def test_in_person_and_unpublished_sessions_have_no_room(client, staff, db):
    admin = staff("admin")
    in_person = create(admin, db, starts=future(3))
    draft = create(admin, db, starts=future(3), mode="online", publish_it=False)
    for event_id in (in_person["id"], draft["id"], 424242):
        response = client.get(f"/events/{event_id}/live", headers=HTML)
        assert response.status_code == 404
        assert "页面不存在" in response.text
    assert not ROOM_LINK.search(client.get(f"/events/{in_person['id']}", headers=HTML).text)


def test_the_ticket_the_reminder_and_the_calendar_lead_to_the_room(client, staff, db):
    event_id = open_session(staff, db, mode="hybrid")
    token = register(client, event_id, phone="13800000009")
    page = ticket(client, token).text
    assert f'href="/events/{event_id}/live"' in page
    db.rollback()
    reminder = db.exec(select(OutboxMessage).where(OutboxMessage.topic == "reminder")).one()
    assert f"http://testserver/events/{event_id}/live" in reminder.body
    calendar = client.get(f"/events/{event_id}.ics").text.replace("\r\n ", "")
    assert f"http://testserver/events/{event_id}/live" in calendar


def test_an_in_person_reminder_has_no_room_link(client, staff, db):
    event_id = open_session(staff, db)
    register(client, event_id, phone="13800000010")
    db.rollback()
    reminder = db.exec(select(OutboxMessage).where(OutboxMessage.topic == "reminder")).one()
    assert "/live" not in reminder.body


# ---- 7. the portal's small promises ---------------------------------------------------------

def test_a_full_session_says_full_with_a_waitlist_on_the_home_cards(client, staff, db):
    event_id = open_session(staff, db, capacity=1, title="只有一个名额的会议")
    register(client, event_id, phone="13800000001")
    home = visible(client.get("/", headers=HTML).text)
    card = home[home.index("只有一个名额的会议"):][:400]
    assert "已满·可候补" in card


def test_subscribing_to_the_calendar_is_a_webcal_link_from_the_public_address(client):
    page = client.get("/calendar", headers=HTML).text
    assert 'href="webcal://testserver/calendar.ics"' in page
    footer = client.get("/", headers=HTML).text
    assert 'href="webcal://testserver/calendar.ics"' in footer
    unit = client.get("/units/education", headers=HTML).text
    assert 'href="webcal://testserver/units/education.ics"' in unit


def test_the_404_page_speaks_chinese_and_keeps_the_full_menu(client):
    response = client.get("/no-such-page", headers=HTML)
    assert response.status_code == 404
    text = visible(response.text)
    assert "页面不存在" in text and "Not Found" not in text
    assert "您要找的页面不存在" in text
    for link in ('href="/"', 'href="/calendar"', 'href="/units"', 'href="/results"'):
        assert link in response.text
    # The API keeps its JSON.
    assert client.get("/api/no-such-thing").json()["error"] == "not_found"


def test_the_favicon_exists(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/")
    assert "max-age" in response.headers.get("cache-control", "")

