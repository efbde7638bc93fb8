"""The archive as an Atom feed (RFC 4287) for the district portal: one entry per session in the
archive, with its HLS master playlist and its poster as enclosures.

Every address is absolute from the configured public URL (never the request's Host). Texts are
Chinese plain text, as in events.calendars' feed: the portal shows them as they are.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from events.calendars import ATOM_NS, KIND_LABELS_ZH, TAG_PREFIX, XML_LANG, format_when
from streaming.archive import ArchiveEntry, duration_text
from streaming.storage import Storage

FEED_TITLE = "西城区政务开放 · 活动录像"
HLS_TYPE = "application/vnd.apple.mpegurl"
# Yahoo's Media RSS: feed readers show media:thumbnail as the entry's picture.
MEDIA_NS = "http://search.yahoo.com/mrss/"
# Characters XML 1.0 cannot carry (tab and newline are kept).
_CONTROL = {c: None for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F,
                              0xFFFE, 0xFFFF]}


@dataclass(frozen=True)
class FeedContext:
    base_url: str  # the public URL, no trailing slash
    storage: Storage
    unit_names: dict[int, str]
    now: datetime


def _clean(text: str) -> str:
    return text.translate(_CONTROL)


def _rfc3339(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
    if text is not None:
        element.text = text
    return element


def absolute(base_url: str, url: str) -> str:
    """A store's address made absolute: local paths get the public URL, a CDN's stay as they are."""
    return url if url.startswith(("https://", "http://")) else base_url + url


def entry_summary(entry: ArchiveEntry, unit_name: str) -> str:
    event = entry.event
    lines = [f"时间：{format_when(event.starts_at, event.ends_at)}",
             f"类型：{KIND_LABELS_ZH[event.kind]}", f"主办：{unit_name}",
             f"时长：{duration_text(entry.recording.duration_s)}", _clean(event.summary).strip()]
    return "\n".join(line for line in lines if line)


def _updated(entry: ArchiveEntry) -> datetime:
    published = entry.recording.published_at or entry.event.updated_at
    return max(entry.event.updated_at, published)


def build_archive_feed(entries: Sequence[ArchiveEntry], context: FeedContext, *,
                       self_url: str, portal_url: str) -> bytes:
    ET.register_namespace("", ATOM_NS)
    ET.register_namespace("media", MEDIA_NS)
    feed = ET.Element(f"{{{ATOM_NS}}}feed", {XML_LANG: "zh-CN"})
    _sub(feed, "id", f"{TAG_PREFIX}feed/archive")
    _sub(feed, "title", FEED_TITLE, type="text")
    _sub(feed, "subtitle", "已举行的政务开放活动与政民互动直播间的录像", type="text")
    _sub(feed, "updated", _rfc3339(max(map(_updated, entries), default=context.now)))
    _sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    _sub(feed, "link", rel="alternate", type="text/html", href=portal_url)
    author = _sub(feed, "author")
    _sub(author, "name", "北京市西城区人民政府")
    _sub(feed, "generator", "Kaifang")
    base = context.base_url
    for entry in entries:
        event, recording = entry.event, entry.recording
        unit_name = context.unit_names.get(event.unit_id, "")
        item = _sub(feed, "entry")
        # One entry per session: a re-uploaded recording updates it rather than adding one.
        _sub(item, "id", f"{TAG_PREFIX}archive/{event.id}")
        _sub(item, "title", _clean(event.title), type="text")
        _sub(item, "updated", _rfc3339(_updated(entry)))
        _sub(item, "published", _rfc3339(recording.published_at or event.updated_at))
        _sub(item, "link", rel="alternate", type="text/html", href=f"{base}/events/{event.id}")
        _sub(item, "link", rel="related", type="text/html",
             href=f"{base}/events/{event.id}/live", title="观看录像")
        _sub(item, "link", rel="enclosure", type=HLS_TYPE, title="录像（HLS）",
             href=absolute(base, context.storage.url(recording.media_key, "master.m3u8")))
        poster = absolute(base, context.storage.url(recording.media_key, "poster.jpg"))
        _sub(item, "link", rel="enclosure", type="image/jpeg", title="封面", href=poster)
        ET.SubElement(item, f"{{{MEDIA_NS}}}thumbnail", {"url": poster})
        _sub(item, "summary", entry_summary(entry, unit_name), type="text")
        if event.closed_at is not None and event.minutes.strip():
            _sub(item, "content", _clean(event.minutes).strip(), type="text")
        _sub(item, "category", term=event.kind.value, label=KIND_LABELS_ZH[event.kind])
        item_author = _sub(item, "author")
        _sub(item_author, "name", unit_name)
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))
