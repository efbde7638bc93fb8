"""gettext for pages: zh_CN first, en second. Catalogues are .po files read at start-up."""

from __future__ import annotations

from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LOCALE_DIR = Path(__file__).parent / "locale"

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)


@lru_cache(maxsize=len(LOCALES))
def catalog(locale: str) -> dict[str, str | tuple[str, ...]]:
    """All .po files of a locale merged (one per part of the site: messages, portal, console)."""
    out: dict[str, str | tuple[str, ...]] = {}
    for path in sorted((LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po")):
        with path.open("rb") as handle:
            po = read_po(handle, locale=locale)
        for message in po:
            if not message.id or not message.string or message.fuzzy:
                continue
            key = message.id if isinstance(message.id, str) else message.id[0]
            value = message.string
            out[key] = tuple(value) if isinstance(value, list | tuple) else value
    return out


def gettext(message: str) -> str:
    found = catalog(current_locale.get()).get(message)
    return found if isinstance(found, str) else message


def ngettext(singular: str, plural: str, n: int) -> str:
    found = catalog(current_locale.get()).get(singular)
    if isinstance(found, tuple) and found:
        # Chinese has one form; English two.
        return found[0] if len(found) == 1 or n == 1 else found[1]
    return singular if n == 1 else plural


def N_(message: str) -> str:  # noqa: N802  (the gettext convention for "mark only")
    return message


def negotiate(requested: str | None) -> str:
    if requested:
        normal = requested.replace("-", "_")
        for locale in LOCALES:
            if normal.lower() == locale.lower() or normal.lower() == locale[:2].lower():
                return locale
    return DEFAULT_LOCALE
