"""gettext for pages: zh_CN first, en second. Catalogues are .po files, compiled in memory at
first use into babel's Translations: plural forms follow each catalogue's Plural-Forms header,
and a message may carry a context (pgettext) where one English word has two meanings."""

from __future__ import annotations

from contextvars import ContextVar
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LOCALES = ("zh_CN", "en")
DEFAULT_LOCALE = "zh_CN"
LOCALE_DIR = Path(__file__).parent / "locale"

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)


def _translated(message: Message) -> bool:
    """Has a translation to show: not fuzzy, and every plural form filled in."""
    if not message.id or message.fuzzy:
        return False
    if isinstance(message.string, list | tuple):
        return all(message.string)
    return bool(message.string)


@lru_cache(maxsize=len(LOCALES))
def catalog(locale: str) -> Catalog:
    """All .po files of a locale (one per part of the site: messages, portal, console…) as one
    catalogue, translated messages only; a later file's translation of a message wins."""
    paths = sorted((LOCALE_DIR / locale / "LC_MESSAGES").glob("*.po"))
    if not paths:
        raise FileNotFoundError(f"no .po catalogue for locale {locale!r} in {LOCALE_DIR}")
    merged: Catalog | None = None
    for path in paths:
        with path.open("rb") as handle:
            part = read_po(handle, locale=locale)
        if merged is None:
            merged = Catalog(locale=locale, header_comment="", fuzzy=False)
            merged.mime_headers = part.mime_headers  # Plural-Forms as the catalogue says
        elif part.plural_forms != merged.plural_forms:
            raise ValueError(f"{path} declares {part.plural_forms!r}, but the other catalogues "
                             f"of {locale} declare {merged.plural_forms!r}")
        for message in part:
            if not _translated(message):
                continue
            if merged.get(message.id, message.context) is not None:
                merged.delete(message.id, message.context)
            merged[message.id] = message
    assert merged is not None
    return merged


@lru_cache(maxsize=len(LOCALES))
def translations(locale: str) -> Translations:
    """The locale's catalogue compiled (.mo) in memory: no build step, nothing generated kept."""
    compiled = BytesIO()
    write_mo(compiled, catalog(locale))
    compiled.seek(0)
    return Translations(compiled)


def gettext(message: str) -> str:
    return translations(current_locale.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current_locale.get()).ngettext(singular, plural, n)


def pgettext(context: str, message: str) -> str:
    return str(translations(current_locale.get()).pgettext(context, message))


def npgettext(context: str, singular: str, plural: str, n: int) -> str:
    return translations(current_locale.get()).npgettext(context, singular, plural, n)


def N_(message: str) -> str:  # noqa: N802  (the gettext convention for "mark only")
    return message


def negotiate(requested: str | None) -> str:
    if requested:
        normal = requested.replace("-", "_")
        for locale in LOCALES:
            if normal.lower() == locale.lower() or normal.lower() == locale[:2].lower():
                return locale
    return DEFAULT_LOCALE
