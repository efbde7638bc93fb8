"""Whether a socket comes from one of our own pages: the room's, the hosts' and the browser
ingest's sockets all ask it (pure: the caller passes the headers and the settings)."""

from __future__ import annotations

from urllib.parse import urlsplit


def origin_of(url: str) -> tuple[str, str, int | None]:
    """A URL's (scheme, host, port), ws/wss as http/https; nobody's origin if it is no URL."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL (`http://[::1`): an origin that is nobody's
        return "", "", -1
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def same_origin(origin: str | None, own: str, public_url: str) -> bool:
    """A browser names the page that opens a socket: only our own pages may, by scheme, host
    and port — KAIFANG_PUBLIC_URL's, or the address the request was made to (`own`, whose host
    the edge already limits to ours). A client that is not a browser sends no Origin and
    carries no one else's cookie: it may connect."""
    if origin is None:
        return True
    return origin_of(origin) in (origin_of(public_url), origin_of(own))
