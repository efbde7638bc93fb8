"""Every string a page shows has its zh_CN translation: Chinese is the default locale. Plural
forms follow each catalogue's Plural-Forms header, a context tells one English word's meanings
apart, and a message no catalogue translates shows as written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from frontend import i18n
from frontend.i18n import (
    catalog,
    current_locale,
    gettext,
    ngettext,
    npgettext,
    pgettext,
    translations,
)
from frontend.templating import env

ROOT = Path(__file__).resolve().parents[2]
METHOD_MAP = [("frontend/**.py", "python"), ("frontend/templates/**.html", "jinja2")]
OPTIONS = {"frontend/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None,
            "pgettext": ((1, "c"), 2), "npgettext": ((1, "c"), 2, 3)}
SEATS = ("%(num)s seat left", "%(num)s seats left")


def extracted_messages() -> dict[tuple[str | None, str], str]:
    """(context, msgid) of every marked string, and where it was found first."""
    found: dict[tuple[str | None, str], str] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), METHOD_MAP, options_map=OPTIONS, keywords=KEYWORDS
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault((context, msgid), f"{filename}:{lineno}")
    return found


@pytest.fixture
def locale() -> Iterator[object]:
    """locale("en") switches the language of gettext and the templates for this test."""
    tokens = []

    def switch(name: str) -> None:
        tokens.append(current_locale.set(name))

    yield switch
    for token in reversed(tokens):
        current_locale.reset(token)


def rendered(source: str, **values: object) -> str:
    return env.from_string(source).render(**values)


def test_every_page_string_has_a_chinese_translation() -> None:
    messages = extracted_messages()
    assert len(messages) > 25, "the extractor found too few strings: is it looking?"
    assert any(context for context, _msgid in messages), "no pgettext found: is it looking?"
    zh = catalog("zh_CN")
    missing = {key: where for key, where in messages.items()
               if zh.get(key[1], context=key[0]) is None}
    assert not missing, f"untranslated for zh_CN: {missing}"


def test_no_message_has_two_translations_in_one_locale() -> None:
    """A msgid translated two ways in two files of a locale needs a context (msgctxt, pgettext):
    otherwise one page silently shows the other page's word."""
    for name in i18n.LOCALES:
        seen: dict[tuple[str | None, str], tuple[str, object]] = {}
        for path in sorted((i18n.LOCALE_DIR / name / "LC_MESSAGES").glob("*.po")):
            with path.open("rb") as handle:
                for message in read_po(handle, locale=name):
                    if not message.id or not message.string:
                        continue
                    msgid = message.id if isinstance(message.id, str) else message.id[0]
                    key = (message.context, msgid)
                    first = seen.setdefault(key, (path.name, message.string))
                    assert first[1] == message.string, (
                        f"{name}: {key} is {first[1]!r} in {first[0]} but {message.string!r} "
                        f"in {path.name}")


def test_locale_switches_the_language(locale) -> None:
    locale("zh_CN")
    assert gettext("Open meeting") == "会议开放"
    locale("en")
    assert gettext("Open meeting") == "Open meeting"


def test_site_speaks_chinese_first_and_english_on_request(client) -> None:
    page = client.get("/", headers={"accept": "text/html"})
    assert "西城区政务开放" in page.text
    english = client.get("/?lang=en", headers={"accept": "text/html"})
    assert "Xicheng open government" in english.text
    assert client.cookies.get("lang") == "en"


def test_plural_forms_in_chinese_and_english(locale) -> None:
    template = '{{ ngettext("%(num)s seat left", "%(num)s seats left", n) }}'
    locale("zh_CN")  # one form: nplurals=1
    assert ngettext(*SEATS, 1) == ngettext(*SEATS, 5) == "剩余 %(num)s 个名额"
    assert [rendered(template, n=n) for n in (1, 5)] == ["剩余 1 个名额", "剩余 5 个名额"]
    locale("en")  # two: plural=(n != 1), 0 too takes the plural
    assert [ngettext(*SEATS, n) for n in (0, 1, 2)] == [SEATS[1], SEATS[0], SEATS[1]]
    assert [rendered(template, n=n) for n in (1, 5)] == ["1 seat left", "5 seats left"]


def test_a_context_tells_the_same_word_apart(locale) -> None:
    locale("zh_CN")
    # Deleting a quota rule's row, and taking a host off a session: one English word.
    assert pgettext("quota rule", "Remove") == "删除"
    assert pgettext("session host", "Remove") == "移除"
    assert rendered('{{ pgettext("quota rule", "Remove") }}') == "删除"
    locale("en")
    assert pgettext("quota rule", "Remove") == "Remove"


def test_the_pages_use_the_word_of_their_context(staff) -> None:
    admin = staff("admin")
    rules = admin.get("/console/compliance/rules?year=2030", headers={"accept": "text/html"})
    assert rules.status_code == 200
    assert 'aria-hidden="true">删除</span>' in rules.text and "移除" not in rules.text


def test_a_missing_translation_falls_back_to_the_message_id(locale) -> None:
    locale("zh_CN")
    assert gettext("A sentence no catalogue has") == "A sentence no catalogue has"
    # Another context's translation is not borrowed, and an unknown plural follows English.
    assert pgettext("no such context", "Remove") == "Remove"
    assert [ngettext("%(num)s owl", "%(num)s owls", n) for n in (1, 2)] == \
        ["%(num)s owl", "%(num)s owls"]
    assert npgettext("nest", "%(num)s owl", "%(num)s owls", 2) == "%(num)s owls"
    assert rendered('{{ _("An owl at %(time)s", time="09:30") }}') == "An owl at 09:30"


PO_HEADER = """msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"
"Language: {language}\\n"
"Plural-Forms: {plural_forms}\\n"
"""
THREE_FORMS = ("nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
               "(n%100<10 || n%100>=20) ? 1 : 2);")


@pytest.fixture
def locale_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Catalogues read from a folder of the test's own, the real ones again afterwards."""
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path)
    catalog.cache_clear()
    translations.cache_clear()
    yield tmp_path
    catalog.cache_clear()
    translations.cache_clear()


def write_po(folder: Path, language: str, name: str, plural_forms: str, body: str) -> None:
    messages = folder / language / "LC_MESSAGES"
    messages.mkdir(parents=True, exist_ok=True)
    header = PO_HEADER.format(language=language, plural_forms=plural_forms)
    (messages / name).write_text(header + "\n" + body, encoding="utf-8")


def test_plural_forms_follow_the_catalogues_header(locale_dir, locale) -> None:
    """Three forms where babel's own data for the language knows two: the header decides."""
    write_po(locale_dir, "en", "messages.po", THREE_FORMS, """
msgid "%(num)s seat"
msgid_plural "%(num)s seats"
msgstr[0] "one: %(num)s"
msgstr[1] "few: %(num)s"
msgstr[2] "many: %(num)s"

msgctxt "hall"
msgid "%(num)s seat"
msgid_plural "%(num)s seats"
msgstr[0] "hall one"
msgstr[1] "hall few"
msgstr[2] "hall many"

#, fuzzy
msgid "Draft"
msgstr "not checked yet"
""")
    locale("en")
    assert [ngettext("%(num)s seat", "%(num)s seats", n) for n in (1, 3, 5, 21)] == \
        ["one: %(num)s", "few: %(num)s", "many: %(num)s", "one: %(num)s"]
    assert npgettext("hall", "%(num)s seat", "%(num)s seats", 3) == "hall few"
    assert gettext("Draft") == "Draft"  # a fuzzy translation is not shown


def test_catalogues_of_one_locale_that_disagree_on_plural_forms_are_refused(locale_dir) -> None:
    write_po(locale_dir, "en", "a.po", "nplurals=2; plural=(n != 1);", "")
    write_po(locale_dir, "en", "b.po", THREE_FORMS, "")
    with pytest.raises(ValueError, match="b.po declares"):
        translations("en")
