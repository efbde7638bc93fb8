"""Calendars and feeds for the public: iCalendar (RFC 5545) and Atom (RFC 4287) of sessions.

The text here is Chinese on purpose: calendar apps and the district portal show it as is, with no
locale of the reader to follow.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from icalendar import Calendar, Timezone
from icalendar import Event as VEvent
from sqlalchemy import func
from sqlmodel import Session, col, select

from events import rooms, sessions
from events.models import AuditEntry, Event, EventKind, EventMode, EventStatus, Unit
from events.timeutil import LOCAL_TZ, local

KIND_LABELS_ZH: dict[EventKind, str] = {
    EventKind.open_meeting: "会议开放",
    EventKind.open_day: "政府开放日",
    EventKind.public_report: "政府向公众报告",
    EventKind.chief_dialogue: "市民对话一把手",
    EventKind.broadcast: "政民互动直播间",
}
# The portal's words (frontend/locale zh_CN "In person" …): the feed says what the page says.
MODE_LABELS_ZH: dict[EventMode, str] = {
    EventMode.in_person: "线下参加",
    EventMode.online: "线上参加",
    EventMode.hybrid: "线上线下同步",
}
WEEKDAYS_ZH = "一二三四五六日"

PRODID = "-//Xicheng District//Kaifang//ZH"
TZID = "Asia/Shanghai"
DISTRICT_CALENDAR_NAME = "西城区政务开放活动"
FEED_TITLE = "西城区政务开放 · 近期活动"
FEED_SUBTITLE = "会议开放、政府开放日、政府向公众报告、市民对话一把手与政民互动直播间"
UID_DOMAIN = "kaifang"
# A tag URI (RFC 4151) keeps entry ids stable whatever host name the portal reaches us by.
TAG_PREFIX = "tag:kaifang,2018:"
ATOM_NS = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

# How far back the all-sessions and per-unit calendars reach; calendars stay bounded.
CALENDAR_PAST = timedelta(days=90)
CALENDAR_LIMIT = 1000
# The feed lists sessions that started at most a day ago, the next ones first.
FEED_PAST = timedelta(days=1)
FEED_LIMIT = 100

# Edits that change what a calendar app shows; each raises the session's SEQUENCE.
REVISING_ACTIONS = ("event.update", "event.postpone", "event.cancelled")

# Characters XML 1.0 cannot carry and calendar apps choke on (tab and newline are kept).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _CONTROL.sub("", text)


@dataclass(frozen=True)
class CalendarEntry:
    """A public session with what its calendar entry needs beyond the row itself."""

    event: Event
    unit_name: str
    page_url: str
    sequence: int

    @property
    def cancelled(self) -> bool:
        return self.event.status == EventStatus.cancelled

    @property
    def room_url(self) -> str | None:
        """Where an online or hybrid session is watched: its page's live room."""
        return f"{self.page_url}/live" if rooms.has_room(self.event) else None


# ---- choosing and enriching sessions ---------------------------------------------------------

def calendar_events(db: Session, now: datetime, unit_code: str | None = None) -> list[Event]:
    """Public sessions from 90 days back onward, for the whole district or one unit."""
    query = sessions.EventQuery(unit=unit_code, start=now - CALENDAR_PAST, limit=CALENDAR_LIMIT)
    return sessions.list_events(db, query, viewer=None)


def upcoming_events(db: Session, now: datetime) -> list[Event]:
    """Public sessions starting from a day ago on, by start, at most FEED_LIMIT of them."""
    since = now - FEED_PAST
    query = sessions.EventQuery(start=since, limit=CALENDAR_LIMIT)
    # list_events bounds by the end; a session that started before `since` is not upcoming.
    found = [e for e in sessions.list_events(db, query, viewer=None) if e.starts_at >= since]
    return found[:FEED_LIMIT]


def revision_counts(db: Session, event_ids: Sequence[int]) -> dict[int, int]:
    """How many times each session was edited, postponed or cancelled: its SEQUENCE."""
    counts = {event_id: 0 for event_id in event_ids}
    if event_ids:
        stmt = (select(AuditEntry.entity_id, func.count())
                .where(AuditEntry.entity == "event",
                       col(AuditEntry.entity_id).in_(list(event_ids)),
                       col(AuditEntry.action).in_(REVISING_ACTIONS))
                .group_by(col(AuditEntry.entity_id)))
        for event_id, count in db.exec(stmt):
            if event_id is not None:
                counts[event_id] = int(count)
    return counts


def calendar_entries(db: Session, events: Iterable[Event], base_url: str) -> list[CalendarEntry]:
    """Pairs each session with its unit's name, its page URL and its SEQUENCE."""
    events = list(events)
    ids = [e.id for e in events if e.id is not None]
    unit_ids = {e.unit_id for e in events}
    names = {u.id: u.name for u in db.exec(select(Unit).where(col(Unit.id).in_(unit_ids)))}
    revisions = revision_counts(db, ids)
    base = base_url.rstrip("/")
    return [CalendarEntry(event=e, unit_name=names.get(e.unit_id, ""),
                          page_url=f"{base}/events/{e.id}", sequence=revisions.get(e.id or 0, 0))
            for e in events]


# ---- text shown to people --------------------------------------------------------------------

def format_when(starts_at: datetime, ends_at: datetime) -> str:
    """2027年3月10日（周三）09:30–11:30（北京时间）; the end day is named when it differs."""
    start, end = local(starts_at), local(ends_at)
    day = f"{start.year}年{start.month}月{start.day}日（周{WEEKDAYS_ZH[start.weekday()]}）"
    if start.date() == end.date():
        return f"{day}{start:%H:%M}–{end:%H:%M}（北京时间）"
    end_day = f"{end.month}月{end.day}日" if end.year == start.year else \
        f"{end.year}年{end.month}月{end.day}日"
    return f"{day}{start:%H:%M} 至 {end_day}{end:%H:%M}（北京时间）"


def _short_time(value: datetime) -> str:
    moment = local(value)
    return f"{moment.year}年{moment.month}月{moment.day}日 {moment:%H:%M}"


def location_text(event: Event) -> str:
    place = "，".join(part for part in (event.venue.strip(), event.address.strip()) if part)
    if place:
        return place
    return "线上" if event.mode == EventMode.online else ""


def how_to_take_part(event: Event) -> str:
    parts = [MODE_LABELS_ZH[event.mode]]
    opens, closes = event.registration_opens_at, event.registration_closes_at
    if opens and closes:
        parts.append(f"报名时间 {_short_time(opens)} 至 {_short_time(closes)}，请在活动页面报名")
    elif closes:
        parts.append(f"请于 {_short_time(closes)} 前在活动页面报名")
    elif opens:
        parts.append(f"{_short_time(opens)} 起在活动页面报名")
    else:
        parts.append("无需报名")
    if event.premiere_at:
        parts.append(f"首播时间 {_short_time(event.premiere_at)}")
    return "；".join(parts)


def notice_text(event: Event) -> str:
    """What the public must know first: a cancellation or a postponement, with its reason."""
    # Stored text is clean (events.units); a reason stored before that rule may not be.
    reason = f"：{_clean(event.public_notice)}" if event.public_notice else ""
    if event.status == EventStatus.cancelled:
        return f"本场活动已取消{reason}"
    if event.postponed_from is not None:
        return f"本场活动已改期（原定 {_short_time(event.postponed_from)}）{reason}"
    return ""


def display_title(entry: CalendarEntry) -> str:
    title = _clean(entry.event.title)
    return f"【已取消】{title}" if entry.cancelled else title


def description_text(entry: CalendarEntry) -> str:
    event = entry.event
    lines = [notice_text(event), _clean(event.summary).strip(),
             f"类型：{KIND_LABELS_ZH[event.kind]}",
             f"主办：{entry.unit_name}",
             f"时间：{format_when(event.starts_at, event.ends_at)}"]
    place = location_text(event)
    if place:
        lines.append(f"地点：{_clean(place)}")
    lines += [f"参与方式：{how_to_take_part(event)}",
              f"在线收看：{entry.room_url}" if entry.room_url else "", f"详情：{entry.page_url}"]
    return "\n".join(line for line in lines if line)


# ---- iCalendar -------------------------------------------------------------------------------

def _vtimezone(entries: Sequence[CalendarEntry], now: datetime) -> Timezone:
    """Asia/Shanghai's rules over the span the calendar covers (China kept DST until 1991)."""
    starts = [local(e.event.starts_at).date() for e in entries] or [local(now).date()]
    ends = [local(e.event.ends_at).date() for e in entries] or [local(now).date()]
    first = min(starts) - timedelta(days=1)
    last = max(max(ends) + timedelta(days=366), date(2038, 1, 1))
    return Timezone.from_tzinfo(LOCAL_TZ, tzid=TZID, first_date=first, last_date=last)


def _vevent(entry: CalendarEntry, now: datetime) -> VEvent:
    event = entry.event
    vevent = VEvent()
    vevent.add("uid", f"event-{event.id}@{UID_DOMAIN}")
    vevent.add("dtstamp", now)
    vevent.add("dtstart", local(event.starts_at))
    vevent.add("dtend", local(event.ends_at))
    vevent.add("summary", display_title(entry))
    vevent.add("description", description_text(entry))
    place = location_text(event)
    if place:
        vevent.add("location", _clean(place))
    vevent.add("url", entry.page_url)
    vevent.add("status", "CANCELLED" if entry.cancelled else "CONFIRMED")
    vevent.add("sequence", entry.sequence)
    vevent.add("last-modified", event.updated_at)
    vevent.add("created", event.created_at)
    vevent.add("categories", [KIND_LABELS_ZH[event.kind]])
    vevent.add("transp", "OPAQUE")
    return vevent


def build_calendar(entries: Sequence[CalendarEntry], name: str, now: datetime) -> bytes:
    """An RFC 5545 VCALENDAR (CRLF, lines folded at 75 octets) of these sessions."""
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    calendar.add("name", name)
    calendar.add("x-wr-timezone", TZID)
    calendar.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", "PT1H")
    calendar.add_component(_vtimezone(entries, now))
    for entry in entries:
        calendar.add_component(_vevent(entry, now))
    return calendar.to_ical()


def unit_calendar_name(unit_name: str) -> str:
    return f"{unit_name} · 政务开放活动"


# ---- Atom ------------------------------------------------------------------------------------

def _rfc3339(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def feed_summary(entry: CalendarEntry) -> str:
    event = entry.event
    lines = [notice_text(event), f"时间：{format_when(event.starts_at, event.ends_at)}"]
    place = location_text(event)
    if place:
        lines.append(f"地点：{_clean(place)}")
    lines += [f"类型：{KIND_LABELS_ZH[event.kind]}", f"参与方式：{how_to_take_part(event)}",
              _clean(event.summary).strip()]
    return "\n".join(line for line in lines if line)


def build_feed(entries: Sequence[CalendarEntry], *, self_url: str, portal_url: str,
               now: datetime, feed_id: str = "feed/upcoming", title: str = FEED_TITLE,
               subtitle: str = FEED_SUBTITLE) -> bytes:
    """An RFC 4287 feed of upcoming sessions; every text is plain text, never HTML. A feed
    of some of them (a series', a theme's) names its own `feed_id` (under the tag URI),
    `title` and `subtitle`."""
    ET.register_namespace("", ATOM_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed", {XML_LANG: "zh-CN"})
    _sub(feed, "id", f"{TAG_PREFIX}{feed_id}")
    _sub(feed, "title", title, type="text")
    _sub(feed, "subtitle", subtitle, type="text")
    updated = max((e.event.updated_at for e in entries), default=now)
    _sub(feed, "updated", _rfc3339(updated))
    _sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    _sub(feed, "link", rel="alternate", type="text/html", href=portal_url)
    author = _sub(feed, "author")
    _sub(author, "name", "北京市西城区人民政府")
    _sub(feed, "generator", "Kaifang")
    for entry in entries:
        event = entry.event
        item = _sub(feed, "entry")
        _sub(item, "id", f"{TAG_PREFIX}event/{event.id}")
        _sub(item, "title", display_title(entry), type="text")
        _sub(item, "updated", _rfc3339(event.updated_at))
        _sub(item, "published", _rfc3339(event.published_at or event.created_at))
        _sub(item, "link", rel="alternate", type="text/html", href=entry.page_url)
        _sub(item, "summary", feed_summary(entry), type="text")
        _sub(item, "category", term=event.kind.value, label=KIND_LABELS_ZH[event.kind])
        item_author = _sub(item, "author")
        _sub(item_author, "name", entry.unit_name)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))
