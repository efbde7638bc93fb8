"""Reading a year's broadcast plan from CSV (the office's spreadsheet, saved by Excel or WPS).

The file: a header `topic,unit_code,month,theme` (in any case, in that order), then one item a
line. Text is UTF-8 (with or without the BOM Excel writes) or else GB18030 (what Excel in China
saves as "CSV"); anything else is refused as a whole (line 0). Blank lines are skipped.

Each line is checked whole and every problem is listed, `{line, field, message}` with the
file's line number (the header is line 1); one bad line and nothing is imported
(events.plan.PlanCsvInvalid). A line: `topic` 1-200 characters, not already in the file nor in
the year's plan (compared without surrounding spaces, case-insensitive); `unit_code` a unit's
code (or its exact name), not retired; `month` 1-12; `theme` a theme's code (or its exact
name), not retired, or empty for none.

Limits: at most MAX_LINES items and MAX_BYTES bytes (the edge refuses a larger body first).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from sqlmodel import Session, select

from events.errors import DomainError
from events.models import PlanItem, Theme, Unit

HEADER = ("topic", "unit_code", "month", "theme")
MAX_LINES = 500
MAX_BYTES = 1_000_000
MAX_TOPIC = 200
# Invisible format characters (zero-width spaces and joiners, bidirectional overrides that make
# a text read backwards, word joiners, the BOM a pasted cell carries): dropped from a topic, so
# one cannot look like another, nor escape being a duplicate.
INVISIBLE = "\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
# Control characters, the two noncharacters and the invisible ones: dropped from a topic (a tab
# becomes a space).
_CONTROLS = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff{INVISIBLE}]")
_INVISIBLE = re.compile(f"[{INVISIBLE}]")
UTF8_BOM = b"\xef\xbb\xbf"


class PlanFileTooLarge(DomainError):
    status = 413

    def __init__(self) -> None:
        super().__init__("too_large", f"the plan file is larger than {MAX_BYTES} bytes",
                         max_bytes=MAX_BYTES)


@dataclass
class PlanLine:
    """One good line, ready to become a PlanItem."""

    line: int
    topic: str
    unit: Unit
    month: int
    theme: Theme | None


def problem(line: int, field: str, message: str) -> dict[str, object]:
    return {"line": line, "field": field, "message": message}


def decode(data: bytes) -> str:
    """UTF-8, else GB18030, the BOMs dropped (UTF-8's, GB18030's, one written twice by a tool
    that re-saves the file); ValueError when it is neither, or not text."""
    if len(data) > MAX_BYTES:
        raise PlanFileTooLarge()
    data = data.removeprefix(UTF8_BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            raise ValueError("the file is neither UTF-8 nor GB18030 text: save the "
                             "spreadsheet as CSV (UTF-8)") from None
    text = text.lstrip("\ufeff")
    if "\x00" in text:
        raise ValueError("the file is not CSV text (it holds NUL bytes): save the spreadsheet "
                         "as CSV (UTF-8)")
    return text


def topic_key(topic: str) -> str:
    """Two topics are the same when they differ only by surrounding spaces or case."""
    return " ".join(topic.split()).casefold()


def clean_topic(raw: str) -> tuple[str, str | None]:
    """(the topic, None) or ("", why it is refused)."""
    topic = " ".join(_CONTROLS.sub("", raw).split())
    if not topic:
        return "", "the topic is empty"
    if len(topic) > MAX_TOPIC:
        return "", f"the topic is longer than {MAX_TOPIC} characters"
    return topic, None


def plain(value: str) -> str:
    """A cell without surrounding spaces nor invisible characters (a code pasted from a page)."""
    return _INVISIBLE.sub("", value).strip()


def find_unit(db: Session, value: str) -> tuple[Unit | None, str | None]:
    value = plain(value)
    if not value:
        return None, "the lead unit's code is empty"
    unit = db.exec(select(Unit).where(Unit.code == value)).first() or \
        db.exec(select(Unit).where(Unit.name == value)).first()
    if unit is None:
        return None, f"no unit has the code {value[:60]!r}"
    if unit.retired_at is not None:
        return None, f"the unit {unit.code!r} is retired"
    return unit, None


def parse_month(value: str) -> tuple[int, str | None]:
    value = plain(value).removesuffix("月").strip()
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= 12:
        return 0, f"the month must be a number from 1 to 12, not {value[:20]!r}"
    return int(value), None


def find_theme(db: Session, value: str) -> tuple[Theme | None, str | None]:
    value = plain(value)
    if not value:
        return None, None
    theme = db.get(Theme, value) or db.exec(select(Theme).where(Theme.name == value)).first()
    if theme is None:
        return None, f"no theme has the code {value[:60]!r}"
    if theme.retired_at is not None:
        return None, f"the theme {theme.code!r} is retired"
    return theme, None


def year_topics(db: Session, year: int) -> set[str]:
    return {topic_key(topic) for topic in db.exec(select(PlanItem.topic)
                                                  .where(PlanItem.year == year))}


def _trimmed(cells: list[str]) -> list[str]:
    """The cells without the empty ones a spreadsheet writes past the last column."""
    cells = list(cells)
    while len(cells) > len(HEADER) and not cells[-1].strip():
        cells.pop()
    return cells


def check_line(db: Session, year: int, line: int, cells: list[str], taken: dict[str, int],
               problems: list[dict[str, object]]) -> PlanLine | None:
    """One data line: its problems appended, or the line when it has none. `taken`: the
    topics seen, each with its line (0: already in the year's plan)."""
    before = len(problems)
    cells = _trimmed(cells)
    if len(cells) != len(HEADER):
        problems.append(problem(line, "", f"expected {len(HEADER)} columns "
                                          f"({','.join(HEADER)}), found {len(cells)}"))
        return None
    topic, why = clean_topic(cells[0])
    if why:
        problems.append(problem(line, "topic", why))
    elif topic_key(topic) in taken:
        seen = taken[topic_key(topic)]
        where = f"line {seen} of the file" if seen else f"the plan of {year}"
        problems.append(problem(line, "topic", f"the topic {topic[:60]!r} is already in "
                                               f"{where}"))
    unit, why = find_unit(db, cells[1])
    if why:
        problems.append(problem(line, "unit_code", why))
    month, why = parse_month(cells[2])
    if why:
        problems.append(problem(line, "month", why))
    theme, why = find_theme(db, cells[3])
    if why:
        problems.append(problem(line, "theme", why))
    if topic:
        taken.setdefault(topic_key(topic), line)
    if len(problems) > before or unit is None:
        return None
    return PlanLine(line=line, topic=topic, unit=unit, month=month, theme=theme)


def parse(db: Session, year: int, data: bytes) -> tuple[list[PlanLine], list[dict[str, object]]]:
    """The file's good lines and every problem found (nothing when the file is unreadable)."""
    try:
        text = decode(data)
    except ValueError as exc:
        return [], [problem(0, "file", str(exc))]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        return [], [problem(1, "header", f"the header is not CSV: {exc}")]
    names = tuple(plain(cell).lower() for cell in _trimmed(header or []))
    if not header or names == ("",):
        return [], [problem(0, "file", "the file is empty: expected the header "
                                       f"{','.join(HEADER)} and one item a line")]
    if names != HEADER:
        return [], [problem(1, "header", f"the header must be {','.join(HEADER)}, found "
                                         f"{','.join(names)[:120]}")]
    taken = dict.fromkeys(year_topics(db, year), 0)
    good: list[PlanLine] = []
    problems: list[dict[str, object]] = []
    count = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(problem(reader.line_num, "", f"not CSV: {exc}"))
            break
        if not any(cell.strip() for cell in cells):
            continue
        count += 1
        if count > MAX_LINES:
            problems.append(problem(reader.line_num, "", f"too many lines: a plan file holds "
                                                         f"at most {MAX_LINES} items"))
            break
        found = check_line(db, year, reader.line_num, cells, taken, problems)
        if found is not None:
            good.append(found)
    if not good and not problems:
        problems.append(problem(2, "", "the file has a header but no item"))
    return good, problems
