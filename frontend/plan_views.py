"""What the plan pages show, shaped from events.plan's views: states and reasons in the
reader's language, the year's timeline as an SVG, the counts per state, and the public words
(aired, coming, in preparation, not aired as planned).

It judges nothing: states, reasons and due dates come from events.plan.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from markupsafe import Markup, escape

from events.plan import STATES, STEPS, ItemView, StepView
from frontend import charts
from frontend.compliance_views import date_text, month_label
from frontend.i18n import N_, gettext

STATE_LABELS = {
    "planned": N_("Not started yet"),
    "on_track": N_("On track with the plan"),
    "at_risk": N_("At risk of slipping"),
    "done": N_("Done as planned"),
    "late": N_("Behind schedule"),
    "missed": N_("Not carried out"),
}
# An icon beside the word and a shape on the timeline: a state never rests on colour alone.
STATE_ICONS = {"planned": "○", "on_track": "◔", "at_risk": "⚠", "done": "✓", "late": "!",
               "missed": "✗"}
STATE_COLORS = {"planned": "#46576a", "on_track": "#1a4f8b", "at_risk": "#7a4f00",
                "done": "#1b6e3a", "late": "#8c1d18", "missed": "#6b2f7a"}
# events.plan's reason codes (why an item is at risk, late or missed: events.plan.REASONS).
# %(days)s is KAIFANG_ANNOUNCE_DAYS for the announcement, KAIFANG_ARCHIVE_DAYS for the archive.
REASON_LABELS = {
    "no_session": N_("No broadcast session linked yet"),
    "session_cancelled": N_("The linked broadcast session was cancelled"),
    "not_aired": N_("Not aired in its month"),
    "premiere_after_month": N_("The premiere is after the planned month"),
    "material_due_soon": N_("The lead unit's material is due soon"),
    "material_missing": N_("The lead unit's material is not in"),
    "material_late": N_("The lead unit's material came in late"),
    "script_due_soon": N_("The press office's script is due soon"),
    "script_missing": N_("The press office's script is not in"),
    "script_late": N_("The press office's script came in late"),
    "recording_due_soon": N_("The recording is due soon"),
    "recording_missing": N_("The recording is not uploaded"),
    "recording_late": N_("The recording was uploaded late"),
    "announced_due_soon": N_("The announcement is due soon (%(days)s days ahead)"),
    "announced_missing": N_("Not announced %(days)s days ahead"),
    "announced_late": N_("Announced less than %(days)s days ahead"),
    "archived_due_soon": N_("The video is due on the portal soon"),
    "archived_missing": N_("Not on the portal within %(days)s days"),
    "archived_late": N_("On the portal later than %(days)s days"),
}
STEP_LABELS = {
    "material": N_("Lead unit's written material"),
    "script": N_("Press office's script"),
    "recording": N_("Recording uploaded"),
    "announced": N_("Announced with its premiere"),
    "archived": N_("Video on the portal"),
}
OWNER_LABELS = {"lead_unit": N_("Lead unit"), "press_office": N_("District press office")}
# The public's words for an item (portal), never the office's reasons.
PUBLIC_LABELS = {
    "aired": N_("Aired"),
    "upcoming": N_("Coming up"),
    "preparing": N_("In preparation"),
    "not_aired": N_("Not aired as planned"),
}


# ---- words ----------------------------------------------------------------------------------

def state_label(state: str) -> str:
    return gettext(STATE_LABELS.get(state, state))


def reason_label(reason: str, announce_days: int = 3, archive_days: int = 7) -> str:
    """A reason code in the reader's language; an unknown code reads as itself."""
    if not reason:
        return ""
    text = REASON_LABELS.get(reason)
    if text is None:
        return reason
    days = announce_days if reason.startswith("announced") else archive_days
    return gettext(text) % {"days": days} if "%(days)s" in text else gettext(text)


def step_label(step: str) -> str:
    return gettext(STEP_LABELS.get(step, step))


def owner_label(owner: str) -> str:
    return gettext(OWNER_LABELS.get(owner, owner))


def public_label(word: str) -> str:
    return gettext(PUBLIC_LABELS[word])


def due_text(day: date | None) -> str:
    return date_text(day) if day else ""


def size_text(size: int) -> str:
    """A file's size: '820 B', '12.5 KB', '3.1 MB'."""
    if size < 1024:
        return f"{size} B"
    if size < 1024**2:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024**2:.1f} MB"


def next_step(view: ItemView) -> StepView | None:
    """The first step not done yet, in the order of STEPS."""
    return next((s for s in view.steps if s.done_at is None), None)


def step_of(view: ItemView, step: str) -> StepView | None:
    return next((s for s in view.steps if s.step == step), None)


def premiere_of(view: ItemView) -> datetime | None:
    event = view.event
    if event is None:
        return None
    return event.premiere_at or event.starts_at


def public_word(view: ItemView, now: datetime, shown: bool) -> str:
    """aired | upcoming | preparing | not_aired; `shown`: the public sees the linked session.
    Aired once its video is on the portal; a premiere past without it has not aired as
    planned once events.plan calls the item late or missed (before that: it is playing)."""
    if shown and on_portal(view):
        return "aired"
    premiere = premiere_of(view)
    if shown and premiere is not None:
        if premiere > now:
            return "upcoming"
        return "not_aired" if view.state in ("late", "missed") else "aired"
    if view.state == "missed":
        return "not_aired"
    return "preparing"


def on_portal(view: ItemView) -> bool:
    archived = step_of(view, "archived")
    return archived is not None and archived.done_at is not None


# ---- counts ---------------------------------------------------------------------------------

def counts(views: Sequence[ItemView]) -> dict[str, int]:
    found = dict.fromkeys(STATES, 0)
    for view in views:
        found[view.state] = found.get(view.state, 0) + 1
    return found


def by_month(views: Sequence[ItemView]) -> list[tuple[int, list[ItemView]]]:
    """(month, its items) for the twelve months, empty months included."""
    months: dict[int, list[ItemView]] = {m: [] for m in range(1, 13)}
    for view in views:
        months.setdefault(view.item.month, []).append(view)
    return sorted(months.items())


# ---- the year's timeline --------------------------------------------------------------------

@dataclass(frozen=True)
class Timeline:
    title: str
    svg: Markup


COL_W, HEAD, MARK_H, GAP = 60.0, 28.0, 22.0, 6.0


def _mark(view: ItemView, x: float, y: float) -> str:
    state = view.state
    color = STATE_COLORS.get(state, charts.INK)
    topic = str(view.item.topic)
    label = f"{topic} · {state_label(state)}"
    solid = state in ("done", "late", "missed")
    fill, ink = (color, "#fff") if solid else ("#fff", color)
    dash = ' stroke-dasharray="4 3"' if state == "planned" else ""
    short = topic[:3]
    body = (f'<title>{escape(label)}</title>'
            f'<rect x="{charts._num(x)}" y="{charts._num(y)}" width="{COL_W - 8:g}" '
            f'height="{MARK_H:g}" rx="4" fill="{fill}" stroke="{color}" stroke-width="2"{dash}/>'
            f'<text x="{charts._num(x + 6)}" y="{charts._num(y + MARK_H / 2)}" font-size="12" '
            f'fill="{ink}" dominant-baseline="central">{escape(STATE_ICONS.get(state, ""))} '
            f'{escape(short)}</text>')
    return f'<g class="plan-mark plan-mark-{escape(state)}">{body}</g>'


def _legend(y: float) -> tuple[str, float]:
    parts, x, row = [], 0.0, 0
    for state in STATES:
        text = f"{STATE_ICONS[state]} {state_label(state)}"
        item = 18 + 6 + charts._text_width(text, 13) + 18
        if x + item > COL_W * 12 and x > 0:
            x, row = 0.0, row + 1
        top = y + row * 22
        color = STATE_COLORS[state]
        solid = state in ("done", "late", "missed")
        dash = ' stroke-dasharray="4 3"' if state == "planned" else ""
        parts.append(f'<rect x="{charts._num(x)}" y="{charts._num(top)}" width="18" height="14" '
                     f'rx="3" fill="{color if solid else "#fff"}" stroke="{color}" '
                     f'stroke-width="2"{dash}/>'
                     f'<text x="{charts._num(x + 24)}" y="{charts._num(top + 7)}" font-size="13" '
                     f'fill="{charts.INK}" dominant-baseline="central">{escape(text)}</text>')
        x += item
    return "".join(parts), (row + 1) * 22


def timeline(year: int, views: Sequence[ItemView], today: date) -> Timeline:
    """Twelve month columns; each item a mark in its month, coloured and shaped by its state.
    An image (role img, no links inside): the table beside it is its text equivalent and
    carries the links."""
    title = gettext("The broadcast plan of %(year)s by month") % {"year": year}
    months = by_month(views)
    tallest = max((len(items) for _, items in months), default=0)
    plot_h = max(tallest, 1) * (MARK_H + GAP) + GAP
    width = COL_W * 12
    parts: list[str] = []
    for month, items in months:
        x = COL_W * (month - 1)
        current = today.year == year and today.month == month
        band = "#eef3fa" if current else ("#fafbfc" if month % 2 else "#fff")
        weight = ' font-weight="700"' if current else ""
        parts.append(f'<rect x="{x:g}" y="{HEAD:g}" width="{COL_W:g}" height="{plot_h:g}" '
                     f'fill="{band}" stroke="{charts.GRID}" stroke-width="1"/>'
                     f'<text x="{x + COL_W / 2:g}" y="{HEAD / 2:g}" font-size="13" '
                     f'fill="{charts.INK}" text-anchor="middle" dominant-baseline="central"'
                     f'{weight}>'
                     f'{escape(month_label(month))}</text>')
        for index, view in enumerate(items):
            y = HEAD + GAP + index * (MARK_H + GAP)
            parts.append(_mark(view, x + 4, y))
    legend, legend_h = _legend(HEAD + plot_h + 12)
    parts.append(legend)
    tally = counts(views)
    description = gettext("%(total)s items.") % {"total": len(views)} + " " + "; ".join(
        f"{state_label(s)} {tally[s]}" for s in STATES if tally[s])
    svg = charts._frame("plan-timeline", title, description, width,
                        HEAD + plot_h + 12 + legend_h, "".join(parts))
    return Timeline(title=title, svg=svg)


def step_rows(view: ItemView) -> list[StepView]:
    """The steps in the order of STEPS (as events.plan gives them, ordered once more)."""
    order = {step: index for index, step in enumerate(STEPS)}
    return sorted(view.steps, key=lambda s: order.get(s.step, len(order)))


# ---- the import's problems ------------------------------------------------------------------

IMPORT_FIELDS = {"file": N_("The file"), "header": N_("The header"), "topic": N_("Plan topic"),
                 "unit_code": N_("Lead unit code"), "month": N_("Month"),
                 "theme": N_("Theme"), "": N_("The line")}
# events.plan_import's messages (English, for the API), as the console says them: the first
# pattern found in the message wins; its groups fill %(value)s.
IMPORT_MESSAGES: tuple[tuple[str, str], ...] = (
    (r"^empty$", N_("Choose the plan's CSV file to import.")),
    (r"^too_large$", N_("The file is larger than 1 MB: a plan file holds at most 500 items.")),
    (r"^duplicate_topic$", N_("Another import added one of these topics a moment ago: reload "
                              "the plan and import again.")),
    (r"neither UTF-8 nor GB18030", N_("The file is neither UTF-8 nor GB18030 text: save the "
                                      "spreadsheet as CSV (UTF-8) and import it again.")),
    (r"holds NUL bytes", N_("The file is not CSV text: save the spreadsheet as CSV (UTF-8) "
                            "and import it again.")),
    (r"file is empty", N_("The file is empty: it needs the header topic,unit_code,month,theme "
                          "and one item a line.")),
    (r"header must be .*found (.*)$", N_("The header must be topic,unit_code,month,theme; the "
                                         "file has %(value)s.")),
    (r"header is not CSV", N_("The header is not CSV.")),
    (r"topic is empty", N_("The topic is empty.")),
    (r"topic is longer than (\d+)", N_("The topic is longer than %(value)s characters.")),
    (r"already in the plan", N_("This topic is already in the year's plan, or earlier in the "
                                "file.")),
    (r"unit's code is empty", N_("The lead unit's code is empty.")),
    (r"no unit has the code (.*)$", N_("No unit has the code %(value)s.")),
    (r"the unit (.*) is retired", N_("The unit %(value)s is retired.")),
    (r"month must be a number", N_("The month must be a number from 1 to 12.")),
    (r"no theme has the code (.*)$", N_("No theme has the code %(value)s.")),
    (r"the theme (.*) is retired", N_("The theme %(value)s is retired.")),
    (r"expected (\d+) columns", N_("A line needs %(value)s columns: "
                                   "topic,unit_code,month,theme.")),
    (r"too many lines", N_("Too many lines: a plan file holds at most 500 items.")),
    (r"header but no item", N_("The file has the header but no item.")),
    (r"not CSV", N_("This line is not CSV (a quote left open?).")),
)


def import_problem(line: dict[str, object]) -> dict[str, object]:
    """One bad line of an import, as the console's table shows it."""
    field_code = str(line.get("field") or "")
    message = str(line.get("message") or "")
    text = ""
    for pattern, msgid in IMPORT_MESSAGES:
        found = re.search(pattern, message)
        if found:
            value = found.group(1).strip("'\"") if found.groups() else ""
            text = gettext(msgid) % {"value": value} if "%(value)s" in msgid else gettext(msgid)
            break
    number = line.get("line")
    return {"line": number if isinstance(number, int) and number > 0 else "",
            "field": gettext(IMPORT_FIELDS.get(field_code, field_code)),
            "message": text or message}


def import_problems(lines: Sequence[dict[str, object]]) -> list[dict[str, object]]:
    return [import_problem(line) for line in lines]
