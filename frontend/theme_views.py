"""Themes and series as the portal shows them: chips on session cards, the theme filter's
choices, a card's series link. Names follow the page's language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from events import themes
from events.models_plan import Series, Theme
from frontend.i18n import current_locale


@dataclass(frozen=True)
class ThemeView:
    code: str
    name: str
    lang: str | None  # set when the name is Chinese on an English page
    retired: bool

    @property
    def url(self) -> str:
        return f"/themes/{self.code}"


@dataclass(frozen=True)
class SeriesRef:
    id: int
    title: str

    @property
    def url(self) -> str:
        return f"/series/{self.id}"


def theme_view(theme: Theme) -> ThemeView:
    name, lang = theme.name, None
    if current_locale.get() == "en":
        name, lang = (theme.name_en, None) if theme.name_en else (theme.name, "zh-CN")
    return ThemeView(code=theme.code, name=name, lang=lang, retired=theme.retired_at is not None)


def theme_directory(db: Session) -> dict[str, ThemeView]:
    """Every theme, retired ones too (an old session's chip keeps its name), in plan order."""
    return {t.code: theme_view(t) for t in themes.list_themes(db, include_retired=True)}


def theme_choices(directory: dict[str, ThemeView], selected: str = "") -> list[ThemeView]:
    """What a theme filter offers: the active themes, and a retired one a link asked for."""
    return [view for view in directory.values() if not view.retired or view.code == selected]


def known_theme(directory: dict[str, ThemeView], asked: str) -> str:
    """The theme asked for in a page's query if it exists; a filter form is forgiving."""
    return asked if asked in directory else ""


def add_classification(db: Session, cards: list[dict[str, Any]]) -> None:
    """Each card's theme chips (`theme_chips`) and series (`series`, a SeriesRef or None)."""
    if not cards:
        return
    directory = theme_directory(db)
    series_ids = {card["series_id"] for card in cards if card.get("series_id")}
    titles = {s.id: s.title for s in db.exec(select(Series).where(col(Series.id).in_(series_ids)))
              } if series_ids else {}
    for card in cards:
        card["theme_chips"] = [directory[code] for code in card["themes"] if code in directory]
        series_id = card.get("series_id")
        card["series"] = SeriesRef(int(series_id), titles[series_id]) \
            if series_id is not None and series_id in titles else None
