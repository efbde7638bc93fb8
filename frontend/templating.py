"""The Jinja2 environment shared by the portal and the console."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from events.timeutil import local
from frontend import labels
from frontend.i18n import current_locale, gettext, ngettext, npgettext, pgettext

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    extensions=["jinja2.ext.i18n"],
)
templates = Jinja2Templates(env=env)
env.install_gettext_callables(  # type: ignore[attr-defined]
    gettext, ngettext, newstyle=True, pgettext=pgettext, npgettext=npgettext)
env.policies["ext.i18n.trimmed"] = True

WEEKDAYS_ZH = "一二三四五六日"


def format_datetime(value: datetime | str | None, style: str = "full") -> str:
    """Beijing time: '2027年3月10日（周三）09:30' in zh_CN, 'Wed 10 Mar 2027, 09:30' in en."""
    if value is None or value == "":
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    moment = local(moment)
    zh = current_locale.get() == "zh_CN"
    if style == "time":
        return moment.strftime("%H:%M")
    if style == "date":
        if zh:
            return f"{moment.year}年{moment.month}月{moment.day}日"
        return moment.strftime("%d %b %Y").lstrip("0")
    if zh:
        weekday = WEEKDAYS_ZH[moment.weekday()]
        return f"{moment.year}年{moment.month}月{moment.day}日（周{weekday}）{moment:%H:%M}"
    return moment.strftime("%a %d %b %Y, %H:%M").replace(" 0", " ")


def _label(table: dict[str, str]) -> Any:
    # pass_context: Jinja's optimizer folds a filter of a constant ('ended'|status_label) at
    # compile time, which would bake the language of the first page rendered into the template.
    @jinja2.pass_context
    def render(_context: Any, code: str | None) -> str:
        return gettext(table.get(code or "", code or ""))

    return render


env.filters["datetime"] = format_datetime
env.filters["kind_label"] = _label(labels.KINDS)
env.filters["status_label"] = _label(labels.STATUSES)
env.filters["mode_label"] = _label(labels.MODES)
env.filters["category_label"] = _label(labels.CATEGORIES)
env.filters["role_label"] = _label(labels.ROLES)
env.globals["labels"] = labels


@jinja2.pass_context
def url_for(context: dict[str, Any], name: str, /, **path_params: Any) -> str:
    """A path on this site (Starlette's would be absolute, built from the Host header)."""
    request: Request = context["request"]
    return request.scope.get("root_path", "") + str(request.app.url_path_for(name, **path_params))


@jinja2.pass_context
def this_page_with(context: dict[str, Any], **params: str) -> str:
    """This page's path and query with the given parameters set: a link relative to the site."""
    request: Request = context["request"]
    url = request.url.include_query_params(**params)
    return f"{url.path}?{url.query}" if url.query else url.path


@jinja2.pass_context
def webcal(context: dict[str, Any], path: str) -> str:
    """A calendar subscription (webcal://) at the public address (KAIFANG_PUBLIC_URL)."""
    request: Request = context["request"]
    public: str = request.app.state.settings.public_url
    return "webcal://" + public.split("://", 1)[-1] + path


def content_lang() -> Markup:
    """` lang="zh-CN"` on an English page, for what staff typed in Chinese (titles, venues)."""
    return Markup(' lang="zh-CN"') if current_locale.get() == "en" else Markup("")


env.globals["url_for"] = url_for
env.globals["webcal"] = webcal
env.globals["this_page_with"] = this_page_with
env.globals["content_lang"] = content_lang


def render(request: Request, template: str, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    """Renders a page with the locale, the signed-in staff member and the CSRF token."""
    context.setdefault("locale", current_locale.get())
    context.setdefault("csrf_token", getattr(request.state, "csrf_token", ""))
    context.setdefault("staff_user", getattr(request.state, "staff_user", None))
    # Pages promise a text message only when a gateway can send one.
    settings = getattr(request.app.state, "settings", None)
    context.setdefault("sms_enabled", bool(getattr(settings, "sms_configured", False)))
    return templates.TemplateResponse(request, template, context, status_code=status_code)
