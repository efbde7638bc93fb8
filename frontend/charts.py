"""Server-side SVG charts: pure functions from numbers and labels to escaped SVG markup.

Every series is told apart by a fill pattern and a legend, and every bar carries its number, so a
chart still reads when printed in black and white. Labels are escaped with markupsafe; the
result is Markup, safe to drop into a template.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

# Dark enough for AA contrast of the white numbers drawn on the solid fill.
PALETTE = ("#8c1d18", "#1a4f8b", "#1b6e3a", "#7a4f00", "#46576a", "#6b2f7a")
FONT = ("system-ui, -apple-system, 'PingFang SC', 'Noto Sans CJK SC', 'Microsoft YaHei', "
        "sans-serif")
INK = "#1f1f1f"
GRID = "#c9ced4"


@dataclass(frozen=True)
class Series:
    """One band of a stacked bar: its legend label, its values and (optionally) its colour."""

    label: str
    values: Sequence[int]
    color: str = ""


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _text_width(text: str, size: float) -> float:
    """A rough width: CJK characters are square, Latin ones about half as wide."""
    return sum(size if ord(ch) > 0x2E80 else size * 0.58 for ch in text)


def nice_ceiling(value: int) -> tuple[int, int]:
    """The axis top and tick step for a maximum: 7 -> (8, 2), 23 -> (25, 5), 0 -> (1, 1)."""
    if value <= 0:
        return 1, 1
    raw = value / 4
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(int(step), 1)
    return step * math.ceil(value / step), step


def _pattern(chart_id: str, index: int, color: str) -> str:
    """Solid, diagonal, dots, cross-hatch, horizontal, vertical: distinct also in grey."""
    pid = f"{chart_id}-p{index}"
    shape = index % 6
    open_tag = f'<pattern id="{pid}" patternUnits="userSpaceOnUse" width="8" height="8"'
    if shape == 0:
        return f'{open_tag}><rect width="8" height="8" fill="{color}"/></pattern>'
    body = '<rect width="8" height="8" fill="#fff"/>'
    if shape == 1:
        marks = (f'<path d="M-2,2 l4,-4 M0,8 l8,-8 M6,10 l4,-4" stroke="{color}" '
                 'stroke-width="2.2"/>')
    elif shape == 2:
        marks = f'<circle cx="4" cy="4" r="2.1" fill="{color}"/>'
    elif shape == 3:
        marks = (f'<path d="M0,0 L8,8 M8,0 L0,8" stroke="{color}" stroke-width="1.6"/>')
    elif shape == 4:
        marks = f'<path d="M0,2 H8 M0,6 H8" stroke="{color}" stroke-width="1.8"/>'
    else:
        marks = f'<path d="M2,0 V8 M6,0 V8" stroke="{color}" stroke-width="1.8"/>'
    return f"{open_tag}>{body}{marks}</pattern>"


def _defs(chart_id: str, series: Sequence[Series]) -> str:
    patterns = "".join(_pattern(chart_id, i, s.color or PALETTE[i % len(PALETTE)])
                       for i, s in enumerate(series))
    return f"<defs>{patterns}</defs>"


def _fill(chart_id: str, index: int) -> str:
    return f"url(#{chart_id}-p{index})"


def _value_label(x: float, y: float, value: int, index: int, color: str) -> str:
    """A number inside a segment: white on the solid fill, dark on a white badge elsewhere."""
    text = _num(value)
    if index == 0:
        return (f'<text x="{_num(x)}" y="{_num(y)}" fill="#fff" font-size="12" '
                f'font-weight="700" text-anchor="middle" dominant-baseline="central">{text}</text>')
    width = _text_width(text, 12) + 8
    return (f'<rect x="{_num(x - width / 2)}" y="{_num(y - 8)}" width="{_num(width)}" height="16" '
            f'rx="3" fill="#fff" stroke="{color}"/>'
            f'<text x="{_num(x)}" y="{_num(y)}" fill="{INK}" font-size="12" font-weight="700" '
            f'text-anchor="middle" dominant-baseline="central">{text}</text>')


def _legend(chart_id: str, series: Sequence[Series], width: float, y: float) -> tuple[str, float]:
    """Swatches and labels, wrapped onto as many rows as needed; returns (markup, height)."""
    parts: list[str] = []
    x, row = 0.0, 0
    for i, s in enumerate(series):
        label = str(escape(s.label))
        item = 18 + 6 + _text_width(s.label, 13) + 18
        if x + item > width and x > 0:
            x, row = 0.0, row + 1
        top = y + row * 22
        color = s.color or PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{_num(x)}" y="{_num(top)}" width="18" height="14" '
                     f'fill="{_fill(chart_id, i)}" stroke="{color}"/>'
                     f'<text x="{_num(x + 24)}" y="{_num(top + 7)}" font-size="13" fill="{INK}" '
                     f'dominant-baseline="central">{label}</text>')
        x += item
    return "".join(parts), (row + 1) * 22


def _frame(chart_id: str, title: str, description: str, width: float, height: float,
           body: str) -> Markup:
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart_id}" '
            f'viewBox="0 0 {_num(width)} {_num(height)}" role="img" '
            f'aria-labelledby="{chart_id}-title {chart_id}-desc" font-family="{FONT}" '
            f'preserveAspectRatio="xMinYMin meet">'
            f'<title id="{chart_id}-title">{escape(title)}</title>'
            f'<desc id="{chart_id}-desc">{escape(description)}</desc>')
    return Markup(head + body + "</svg>")  # every text above went through escape()


def stacked_columns(chart_id: str, title: str, description: str, categories: Sequence[str],
                    series: Sequence[Series], *, width: int = 720,
                    plot_height: int = 220) -> Markup:
    """Vertical stacked bars, one per category (e.g. month), one band per series (e.g. kind)."""
    n = max(len(categories), 1)
    totals = [sum(s.values[i] for s in series) for i in range(len(categories))]
    top, step = nice_ceiling(max(totals, default=0))
    left, right, head = 36.0, 8.0, 22.0
    plot_w = width - left - right
    band = plot_w / n
    bar_w = min(band * 0.62, 44)
    scale = plot_height / top
    base_y = head + plot_height
    parts = [_defs(chart_id, series)]
    for tick in range(0, top + 1, step):
        y = base_y - tick * scale
        parts.append(f'<line x1="{_num(left)}" x2="{_num(width - right)}" y1="{_num(y)}" '
                     f'y2="{_num(y)}" stroke="{GRID}" stroke-width="1"/>'
                     f'<text x="{_num(left - 6)}" y="{_num(y)}" font-size="12" fill="{INK}" '
                     f'text-anchor="end" dominant-baseline="central">{tick}</text>')
    for i, name in enumerate(categories):
        cx = left + band * i + band / 2
        y = base_y
        for j, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            h = value * scale
            y -= h
            color = s.color or PALETTE[j % len(PALETTE)]
            parts.append(f'<rect x="{_num(cx - bar_w / 2)}" y="{_num(y)}" width="{_num(bar_w)}" '
                         f'height="{_num(h)}" fill="{_fill(chart_id, j)}" stroke="{color}" '
                         'stroke-width="1"/>')
            if h >= 18:
                parts.append(_value_label(cx, y + h / 2, value, j, color))
        if totals[i]:
            parts.append(f'<text x="{_num(cx)}" y="{_num(y - 4)}" font-size="12" fill="{INK}" '
                         f'font-weight="700" text-anchor="middle">{totals[i]}</text>')
        parts.append(f'<text x="{_num(cx)}" y="{_num(base_y + 16)}" font-size="12" '
                     f'fill="{INK}" text-anchor="middle">{escape(name)}</text>')
    parts.append(f'<line x1="{_num(left)}" x2="{_num(width - right)}" y1="{_num(base_y)}" '
                 f'y2="{_num(base_y)}" stroke="{INK}" stroke-width="1.2"/>')
    legend, legend_h = _legend(chart_id, series, width - left, base_y + 32)
    parts.append(f'<g transform="translate({_num(left)},0)">{legend}</g>')
    return _frame(chart_id, title, description, width, base_y + 32 + legend_h, "".join(parts))


def stacked_rows(chart_id: str, title: str, description: str, rows: Sequence[str],
                 series: Sequence[Series], *, width: int = 720, label_width: int = 96) -> Markup:
    """Horizontal stacked bars, one per row (e.g. unit category), scaled to the row's total,
    each band labelled with its number."""
    row_h, gap, head = 30.0, 14.0, 4.0
    left = float(label_width)
    totals = [sum(s.values[i] for s in series) for i in range(len(rows))]
    total_w = 44.0
    plot_w = width - left - total_w
    largest = max(totals, default=0) or 1
    parts = [_defs(chart_id, series)]
    y = head
    for i, name in enumerate(rows):
        parts.append(f'<text x="{_num(left - 8)}" y="{_num(y + row_h / 2)}" font-size="13" '
                     f'fill="{INK}" text-anchor="end" dominant-baseline="central">'
                     f'{escape(name)}</text>')
        x = left
        for j, s in enumerate(series):
            value = s.values[i]
            if value <= 0:
                continue
            w = plot_w * value / largest
            color = s.color or PALETTE[j % len(PALETTE)]
            parts.append(f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" '
                         f'height="{_num(row_h)}" fill="{_fill(chart_id, j)}" stroke="{color}" '
                         'stroke-width="1"/>')
            if w >= 22:
                parts.append(_value_label(x + w / 2, y + row_h / 2, value, j, color))
            x += w
        parts.append(f'<text x="{_num(x + 6)}" y="{_num(y + row_h / 2)}" font-size="12" '
                     f'fill="{INK}" dominant-baseline="central">{totals[i]}</text>')
        y += row_h + gap
    legend, legend_h = _legend(chart_id, series, width - left, y + 4)
    parts.append(f'<g transform="translate({_num(left)},0)">{legend}</g>')
    return _frame(chart_id, title, description, width, y + 4 + legend_h, "".join(parts))
